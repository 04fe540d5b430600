#include "messages/buffer_messages.hpp"

namespace vigil {

void buffer_incr::merge(const buffer_incr& later) {
  for (const auto& [column, amount] : later.columns)
    columns[column] += amount;
  for (const auto& [column, value] : later.extra)
    extra[column] = value;
  signal_only = signal_only || later.signal_only;
}

} // namespace vigil
