// The digests store's factory, its options from the configuration, and
// the dummy backend (Sentry's default SENTRY_DIGESTS: nothing is kept).

#include "actors/backends/digests.hpp"

#include "config/config.hpp"
#include "config/organizations.hpp"
#include "config/service_options.hpp"
#include "messages/errors.hpp"

namespace vigil {

digest_backend::~digest_backend() = default;

bool is_digest_locked(const caf::error& err) {
  return err == errc::unavailable;
}

bool is_digest_not_ready(const caf::error& err) {
  return err == errc::not_found;
}

double digest_backend_options::effective_truncation_chance() const {
  if (capacity == 0)
    return 0.0;
  return truncation_chance ? *truncation_chance
                           : 1.0 / static_cast<double>(capacity);
}

namespace {

// Accepts every record and forgets it; no timeline is ever due, and a
// digest opened anyway is empty (Sentry's DummyBackend yields []).
class dummy_digests final : public digest_backend {
public:
  std::string describe() const override {
    return "dummy digests";
  }

  caf::expected<bool> add(const digest_add&, double) override {
    ++stats_.records_added;
    return false;
  }

  caf::expected<std::vector<bool>>
  add_many(const std::vector<digest_add>& xs, double) override {
    stats_.records_added += xs.size();
    return std::vector<bool>(xs.size(), false);
  }

  caf::expected<std::vector<digest_schedule_entry>>
  schedule(double, double) override {
    return std::vector<digest_schedule_entry>{};
  }

  caf::error maintenance(double, double) override {
    return {};
  }

  caf::expected<digest_lease>
  open_digest(const std::string& key, double minimum_delay, double) override {
    digest_lease out;
    out.key = key;
    out.minimum_delay = minimum_delay;
    return out;
  }

  caf::error close_digest(const digest_lease&, double) override {
    return {};
  }

  caf::error release_digest(const digest_lease&) override {
    return {};
  }

  caf::error delete_timeline(const std::string&, double) override {
    return {};
  }

  digest_backend_stats stats() const override {
    return stats_;
  }

private:
  digest_backend_stats stats_;
};

caf::error bad(std::string text) {
  return caf::make_error(errc::bad_config, std::move(text));
}

} // namespace

std::unique_ptr<digest_backend>
make_dummy_digest_backend(const digest_backend_options&) {
  return std::make_unique<dummy_digests>();
}

caf::expected<std::unique_ptr<digest_backend>>
make_digest_backend(const digest_backend_options& opts) {
  if (opts.truncation_chance
      && (*opts.truncation_chance < 0 || *opts.truncation_chance > 1))
    return bad("digests: truncation chance must be in [0, 1]");
  if (opts.backend == "dummy")
    return make_dummy_digest_backend(opts);
  if (opts.backend == "memory")
    return make_memory_digest_backend(opts);
  if (opts.backend == "redis")
    return make_redis_digest_backend(opts);
  return bad("digests.backend: unknown backend '" + opts.backend
             + "' (expected dummy, memory or redis)");
}

caf::expected<digest_backend_options>
make_digest_backend_options(const config& cfg) {
  digest_backend_options out;
  out.backend = cfg.get_string("digests.backend");
  auto opts = read_service_options(cfg, "digests.options",
                                   digests_option_fields());
  if (!opts)
    return opts.error();
  out.ttl = std::chrono::seconds{opts->integer("ttl")};
  out.minimum_delay = static_cast<double>(cfg.get_int("digests.minimum-delay"));
  out.maximum_delay = static_cast<double>(cfg.get_int("digests.maximum-delay"));
  out.increment_delay =
    static_cast<double>(cfg.get_int("digests.increment-delay"));
  auto capacity = cfg.get_int("digests.capacity");
  if (capacity < 0)
    return bad("digests.capacity: expected 0 (no limit) or a positive "
               "number of records, got "
               + std::to_string(capacity));
  out.capacity = static_cast<size_t>(capacity);
  if (out.backend == "redis") {
    auto url = redis_cluster_url(cfg, "digests.options");
    if (!url)
      return url.error();
    out.url = *url;
  }
  return out;
}

} // namespace vigil
