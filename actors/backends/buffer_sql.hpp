#pragma once

// Applying the write buffer's sums to SQL, as Sentry's Buffer.process does
// (create_or_update: UPDATE, else INSERT, else UPDATE again), with what
// Sentry lacks: each take is recorded in the same transaction
// (vigil_buffer_applied), so a flush retried after it committed counts
// nothing twice.

#include <cstdint>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actors/backends/buffer.hpp"
#include "adapters/sql.hpp"

namespace vigil {

/// A model the buffer may write, and the only columns a buffered row may
/// name (the row comes from Redis: its names are checked, never trusted).
struct buffer_model {
  /// Django's `_meta` name, as the row key carries it ("sentry.group").
  std::string_view name;
  /// `module.Class`, as RedisBuffer writes the hash's "m" field.
  std::string_view class_path;
  std::string_view table;
  std::vector<std::string_view> filter_columns;
  std::vector<std::string_view> counter_columns;
  /// Extra columns that only move forward (last_seen): set to the greater
  /// of the stored and the buffered value, so that flushes of several
  /// nodes in any order leave the latest.
  std::vector<std::string_view> latest_columns;
  /// False when a row cannot be created from the buffer alone (a group
  /// needs its title and hash): increments of a missing row are dropped
  /// and counted.
  bool insertable = true;
};

/// The model named `name`, or nullptr.
const buffer_model* find_buffer_model(std::string_view name);

/// What one apply did.
struct buffer_apply_result {
  /// Takes applied now, and takes an earlier apply had already applied.
  size_t applied = 0;
  size_t already_applied = 0;
  /// Takes whose row was missing and could not be created.
  size_t dropped = 0;
  /// SQL statements run.
  size_t statements = 0;
};

/// Creates vigil_buffer_applied when missing.
caf::error bootstrap_buffer_tables(sql_connection& db);

/// Applies `takes` in one transaction (or the caller's). A take of an
/// unknown model or column fails the whole apply (errc::malformed) and
/// changes nothing.
caf::expected<buffer_apply_result>
apply_buffer_takes(sql_connection& db, const std::vector<buffer_take>& takes,
                   int64_t now);

/// Forgets applied takes recorded before `older_than` (Unix seconds);
/// returns how many.
caf::expected<int64_t> forget_applied_takes(sql_connection& db,
                                            int64_t older_than);

} // namespace vigil
