#pragma once

// What the TSDB's callers send: counter increments, distinct values and
// range queries, with the `inspect` overloads CAF needs to carry them (an
// environment travels as an id, 0 for none: Sentry's environment ids start
// at 1).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>

#include "messages/tsdb_keys.hpp"

namespace vigil {

/// `count` more of `key` in `model` at `timestamp` (Unix seconds), counted
/// for all environments and, when given, for `environment_id` too.
struct tsdb_incr {
  tsdb_model model = tsdb_model::project;
  tsdb_key key;
  int64_t timestamp = 0;
  int64_t count = 1;
  std::optional<int64_t> environment_id;
};

/// Distinct `values` (e.g. user identities) seen for `key` at `timestamp`.
struct tsdb_record {
  tsdb_model model = tsdb_model::users_affected_by_group;
  tsdb_key key;
  std::vector<std::string> values;
  int64_t timestamp = 0;
  std::optional<int64_t> environment_id;
};

/// One bucket of a series: its start (Unix seconds) and its figure.
using tsdb_point = std::pair<int64_t, int64_t>;

/// A range query: the buckets of `rollup` from `start` to `end` (see
/// tsdb_series), for all environments or one.
struct tsdb_range {
  int64_t start = 0;
  int64_t end = 0;
  int64_t rollup = 10;
  std::optional<int64_t> environment_id;
};

/// The buckets of a chart over the last `period` seconds: the finest of
/// `rollups` that keeps the whole period in at most `max_points` buckets
/// (else the coarsest), ending with now's bucket. `rollups` not empty.
tsdb_range tsdb_chart_range(const std::vector<tsdb_rollup>& rollups,
                            int64_t period, int64_t now, int64_t max_points);

/// What a query asks for.
enum class tsdb_query_kind : int {
  /// Counts per bucket (get_range).
  range = 0,
  /// Distinct counts per bucket (get_distinct_counts_series).
  distinct_series = 1,
  /// Distinct counts over the whole range (get_distinct_counts_totals).
  distinct_totals = 2,
};

/// One read of the TSDB.
struct tsdb_query {
  tsdb_query_kind kind = tsdb_query_kind::range;
  tsdb_model model = tsdb_model::project;
  std::vector<tsdb_key> keys;
  tsdb_range range;
};

/// Its answer: one series per key (range, distinct_series) or one total
/// per key (distinct_totals).
struct tsdb_answer {
  std::vector<std::vector<tsdb_point>> series;
  std::vector<int64_t> totals;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tsdb_key& x) {
  int64_t id = x.id.value_or(0);
  bool has_id = x.id.has_value();
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.id = has_id ? std::optional<int64_t>{id} : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("vigil.tsdb_key"), has_id, id, x.text, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tsdb_incr& x) {
  int64_t env = x.environment_id.value_or(0);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.environment_id = env != 0 ? std::optional<int64_t>{env} : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("vigil.tsdb_incr"), x.model, x.key,
           x.timestamp, x.count, env, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tsdb_record& x) {
  int64_t env = x.environment_id.value_or(0);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.environment_id = env != 0 ? std::optional<int64_t>{env} : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("vigil.tsdb_record"), x.model, x.key,
           x.values, x.timestamp, env, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tsdb_range& x) {
  int64_t env = x.environment_id.value_or(0);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.environment_id = env != 0 ? std::optional<int64_t>{env} : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("vigil.tsdb_range"), x.start, x.end,
           x.rollup, env, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tsdb_query& x) {
  return f(caf::meta::type_name("vigil.tsdb_query"), x.kind, x.model, x.keys,
           x.range);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tsdb_answer& x) {
  return f(caf::meta::type_name("vigil.tsdb_answer"), x.series, x.totals);
}

} // namespace vigil
