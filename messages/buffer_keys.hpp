#pragma once

// The pure rules of Sentry's write buffer (sentry.buffer.redis.RedisBuffer):
// how a buffered row is named in Redis, the fields of its hash, and the
// type-tagged values of its filters and extra columns. The buffer backends
// (actors/backends/buffer_*) share them, so an operator who knows Sentry
// finds the same keys, and a Sentry process could read what vigil wrote.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace vigil {

/// A filter or extra-column value as RedisBuffer stores it: Python's type
/// tag ("i" int, "f" float, "s" str, "dt" datetime) and `str(value)`, a
/// datetime as "%s.%f" (Unix seconds with microseconds, UTC).
struct buffer_value {
  std::string type;
  std::string text;

  static buffer_value of(int64_t x) { return {"i", std::to_string(x)}; }
  static buffer_value of_text(std::string s) { return {"s", std::move(s)}; }
  /// A datetime, `unix_us` microseconds since the epoch.
  static buffer_value of_datetime(int64_t unix_us);

  friend bool operator==(const buffer_value&, const buffer_value&) = default;
};

/// Column name -> value, sorted by name (as Sentry sorts filters to hash
/// them).
using buffer_fields = std::map<std::string, buffer_value>;

/// The Redis key of a row: `b:k:{model}:{md5}`, the md5 taken over
/// "k1=b'v1'&k2=b'v2'" of the filters sorted by name (Sentry's _make_key;
/// `model` as Django's `_meta` names it, e.g. "sentry.group").
std::string buffer_row_key(std::string_view model, const buffer_fields& filters);

/// The pending set a row key belongs to: "b:p" with one partition, else
/// "b:p:{crc32(key) % partitions}".
std::string buffer_pending_key(std::string_view row_key, int partitions);

/// The pending set of partition `partition` ("b:p" when there is one).
std::string buffer_partition_key(int partition, int partitions);

/// The lock RedisBuffer takes on `name` (a row or a pending set): "l:" + name.
std::string buffer_lock_key(std::string_view name);

/// Seconds a row's hash lives after its last increment (RedisBuffer's
/// key_expire).
constexpr int64_t buffer_key_expire_secs = 3600;

/// The hash fields of a row: the model, the filters, one per counter
/// ("i+" + column) and extra column ("e+" + column), and "s" for a
/// signal-only row.
constexpr std::string_view buffer_model_field = "m";
constexpr std::string_view buffer_filters_field = "f";
constexpr std::string_view buffer_signal_only_field = "s";
std::string buffer_counter_field(std::string_view column);
std::string buffer_extra_field(std::string_view column);

/// A value as RedisBuffer's JSON dump writes it: `["i", "5"]`.
std::string encode_buffer_value(const buffer_value& v);
caf::expected<buffer_value> decode_buffer_value(std::string_view json);

/// The filters as RedisBuffer's JSON dump writes them:
/// `{"id": ["i", "5"]}`.
std::string encode_buffer_fields(const buffer_fields& fields);
caf::expected<buffer_fields> decode_buffer_fields(std::string_view json);

} // namespace vigil
