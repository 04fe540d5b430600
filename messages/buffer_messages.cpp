#include "messages/buffer_messages.hpp"

namespace vigil {

void buffer_incr::merge(const buffer_incr& later) {
  for (const auto& [column, amount] : later.columns)
    columns[column] += amount;
  for (const auto& [column, value] : later.extra)
    extra[column] = value;
  signal_only = signal_only || later.signal_only;
}

size_t buffer_batch::row(std::string_view model,
                         const buffer_fields& filters) {
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i].model == model && rows[i].filters == filters)
      return i;
  auto& x = rows.emplace_back();
  x.model = std::string{model};
  x.filters = filters;
  return rows.size() - 1;
}

void buffer_batch::count(size_t index, const std::string& column,
                         int64_t amount) {
  auto& columns = rows[index].columns;
  if (auto it = columns.find(column); it != columns.end())
    it->second += amount;
  else
    columns.emplace(column, amount);
  ++increments;
}

void buffer_batch::set(size_t index, const std::string& column,
                       const buffer_value& v) {
  auto& extra = rows[index].extra;
  if (auto it = extra.find(column); it != extra.end()) {
    if (!(it->second == v))
      it->second = v;
  } else {
    extra.emplace(column, v);
  }
}

void buffer_batch::add(const buffer_incr& x) {
  auto i = row(x.model, x.filters);
  rows[i].merge(x);
  ++increments;
}

} // namespace vigil
