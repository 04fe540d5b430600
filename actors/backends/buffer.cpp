#include "actors/backends/buffer.hpp"

#include "messages/errors.hpp"

namespace vigil {

void buffer_incr::merge(const buffer_incr& later) {
  for (const auto& [column, amount] : later.columns)
    columns[column] += amount;
  for (const auto& [column, value] : later.extra)
    extra[column] = value;
  signal_only = signal_only || later.signal_only;
}

buffer_backend::~buffer_backend() = default;

caf::expected<std::unique_ptr<buffer_backend>>
make_buffer_backend(const buffer_backend_options& opts) {
  if (opts.backend == "memory")
    return make_memory_buffer_backend(opts);
  if (opts.backend == "redis")
    return make_redis_buffer_backend(opts);
  return caf::make_error(errc::bad_config,
                         "buffer.backend: unknown backend '" + opts.backend
                           + "' (expected memory or redis)");
}

} // namespace vigil
