#include "actors/backends/tsdb.hpp"

#include "messages/errors.hpp"

namespace vigil {

tsdb_backend::~tsdb_backend() = default;

std::vector<int64_t> tsdb_sums(const std::vector<std::vector<tsdb_point>>& s) {
  std::vector<int64_t> out;
  out.reserve(s.size());
  for (const auto& series : s) {
    int64_t total = 0;
    for (const auto& [_, n] : series)
      total += n;
    out.push_back(total);
  }
  return out;
}

std::vector<std::optional<int64_t>>
tsdb_environments(std::optional<int64_t> environment_id) {
  if (environment_id)
    return {std::nullopt, environment_id};
  return {std::nullopt};
}

caf::error check_tsdb_rollup(const std::vector<tsdb_rollup>& rollups,
                             int64_t rollup) {
  for (const auto& r : rollups)
    if (r.seconds == rollup)
      return {};
  return caf::make_error(errc::malformed,
                         "tsdb: no rollup of " + std::to_string(rollup)
                           + " s (tsdb.rollups)");
}

namespace {

std::vector<std::vector<tsdb_point>>
zero_series(size_t keys, const tsdb_range& r) {
  std::vector<tsdb_point> zeros;
  for (auto ts : tsdb_series(r.start, r.end, r.rollup))
    zeros.emplace_back(ts, 0);
  return std::vector<std::vector<tsdb_point>>(keys, zeros);
}

class dummy_tsdb final : public tsdb_backend {
public:
  std::string describe() const override {
    return "dummy tsdb";
  }
  caf::error incr_multi(const std::vector<tsdb_incr>&) override {
    return {};
  }
  caf::expected<std::vector<std::vector<tsdb_point>>>
  get_range(tsdb_model, const std::vector<tsdb_key>& keys,
            const tsdb_range& r) override {
    return zero_series(keys.size(), r);
  }
  caf::error record_multi(const std::vector<tsdb_record>&) override {
    return {};
  }
  caf::expected<std::vector<std::vector<tsdb_point>>>
  get_distinct_counts_series(tsdb_model, const std::vector<tsdb_key>& keys,
                             const tsdb_range& r) override {
    return zero_series(keys.size(), r);
  }
  caf::expected<std::vector<int64_t>>
  get_distinct_counts_totals(tsdb_model, const std::vector<tsdb_key>& keys,
                             const tsdb_range&) override {
    return std::vector<int64_t>(keys.size(), 0);
  }
};

} // namespace

std::unique_ptr<tsdb_backend> make_dummy_tsdb(const tsdb_backend_options&) {
  return std::make_unique<dummy_tsdb>();
}

caf::expected<std::unique_ptr<tsdb_backend>>
make_tsdb_backend(const tsdb_backend_options& o) {
  if (o.rollups.empty())
    return caf::make_error(errc::bad_config,
                           "tsdb.rollups: expected at least one rollup");
  if (o.backend == "dummy")
    return make_dummy_tsdb(o);
  if (o.backend == "memory")
    return make_memory_tsdb(o);
  if (o.backend == "redis")
    return make_redis_tsdb(o);
  return caf::make_error(errc::bad_config,
                         "tsdb.backend: unknown backend '" + o.backend
                           + "' (expected dummy, memory or redis)");
}

} // namespace vigil
