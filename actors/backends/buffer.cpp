#include "actors/backends/buffer.hpp"

#include "messages/errors.hpp"

namespace vigil {

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
