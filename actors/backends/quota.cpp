#include "actors/backends/quota.hpp"

#include "messages/errors.hpp"

namespace vigil {

int64_t quota_system_now() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

quota_backend::~quota_backend() {
  // nop
}

quota_backend_stats quota_backend::stats() const {
  return {};
}

caf::expected<std::unique_ptr<quota_backend>>
make_quota_backend(const quota_backend_options& opts) {
  if (opts.backend == "memory")
    return make_memory_quota_backend(opts);
  if (opts.backend == "redis")
    return make_redis_quota_backend(opts);
  return caf::make_error(errc::bad_config,
                         "unknown quota backend '" + opts.backend + "'");
}

} // namespace vigil
