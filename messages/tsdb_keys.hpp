#pragma once

// The pure rules of Sentry's time-series store (sentry.tsdb): the models
// it counts, the rollups, bucket arithmetic, the choice of rollup for a
// range, and RedisTSDB's key layout. The TSDB backends
// (actors/backends/tsdb_*) share them, so the memory and Redis backends
// bucket alike and the Redis keys are the ones Sentry writes.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

/// Sentry's TSDBModel numbers of the series vigil records.
enum class tsdb_model : int {
  project = 1,
  group = 4,
  release = 7,
  project_total_received = 100,
  project_total_rejected = 101,
  project_total_blacklisted = 104,
  organization_total_received = 200,
  organization_total_rejected = 201,
  organization_total_blacklisted = 202,
  users_affected_by_group = 300,
  users_affected_by_project = 301,
  key_total_received = 500,
  key_total_rejected = 501,
  key_total_blacklisted = 502,
  /// vigil's own (Sentry keeps outcomes in Snuba, not the TSDB): the
  /// quantity of an organization's items per data category and outcome,
  /// in the category's unit (attachments in bytes), keyed by the string
  /// "{organization_id}:{category}:{outcome}" with outcome `accepted`,
  /// `rate_limited` or `filtered`. Read by the organization stats endpoint.
  organization_outcomes = 1000,
};

/// One resolution: buckets of `seconds`, `samples` of them kept.
struct tsdb_rollup {
  int64_t seconds = 0;
  int64_t samples = 0;
};

/// Sentry's SENTRY_TSDB_ROLLUPS, finest first: an hour of 10 s buckets, a
/// week of hours, 90 days.
std::vector<tsdb_rollup> default_tsdb_rollups();

/// The start of the bucket holding `ts` (Unix seconds):
/// `ts - ts % rollup` (Sentry's normalize_to_epoch).
int64_t tsdb_bucket_start(int64_t ts, int64_t rollup);

/// The index of the bucket holding `ts`: `ts / rollup` (normalize_to_rollup),
/// the number in Redis key names.
int64_t tsdb_bucket_index(int64_t ts, int64_t rollup);

/// When the bucket holding `ts` may go: its start plus the rollup's whole
/// span (Sentry's calculate_expiry, the EXPIREAT of its keys).
int64_t tsdb_expiry(const tsdb_rollup& r, int64_t ts);

/// The finest rollup whose span (seconds x samples) covers `end - start`,
/// else the coarsest (Sentry's get_optimal_rollup). `rollups` is finest
/// first and not empty.
tsdb_rollup tsdb_optimal_rollup(const std::vector<tsdb_rollup>& rollups,
                                int64_t start, int64_t end);

/// The bucket starts of a range, ascending: from `end` back in steps of
/// `rollup` while not before `start` (get_optimal_rollup_series: `end`'s
/// bucket is always there, `start`'s may not be).
std::vector<int64_t> tsdb_series(int64_t start, int64_t end, int64_t rollup);

/// What a series counts: an integer id (project, group, key) or a string
/// (a user's identity, a release version).
struct tsdb_key {
  std::optional<int64_t> id;
  std::string text;

  static tsdb_key of(int64_t id) { return {id, {}}; }
  static tsdb_key of(std::string text) { return {std::nullopt, std::move(text)}; }
};

/// The key as Sentry names it in Redis: an integer as it is, a string as
/// md5(repr(its UTF-8 bytes)) in hex (get_model_key).
std::string tsdb_model_key(const tsdb_key& key);

/// The hash field or key suffix of one environment: "{model_key}" for all
/// environments, "{model_key}?e={environment_id}" for one.
std::string tsdb_environment_key(std::string model_key,
                                 std::optional<int64_t> environment_id);

/// Where RedisTSDB keeps a counter: hash `ts:{model}:{bucket index}:{vnode}`
/// (vnode = id % 64, or crc32 of the model key % 64 for strings), field
/// the model key with its environment.
struct tsdb_counter_key {
  std::string hash;
  std::string field;
};

tsdb_counter_key make_tsdb_counter_key(tsdb_model model, int64_t rollup,
                                       int64_t ts, const tsdb_key& key,
                                       std::optional<int64_t> environment_id);

/// The HyperLogLog key of a distinct-count series:
/// `ts:{model}:{bucket index}:{model key}[?e={environment}]`.
std::string make_tsdb_distinct_key(tsdb_model model, int64_t rollup,
                                   int64_t ts, const tsdb_key& key,
                                   std::optional<int64_t> environment_id);

/// RedisTSDB's virtual nodes and key prefix.
constexpr int64_t tsdb_vnodes = 64;
constexpr std::string_view tsdb_prefix = "ts:";

} // namespace vigil
