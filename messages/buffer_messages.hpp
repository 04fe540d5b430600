#pragma once

// What the write buffer's callers send: counter increments of SQL rows, as
// Sentry's `Buffer.incr(model, columns, filters, extra, signal_only)` takes
// them, with the `inspect` overloads CAF needs to carry them.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/buffer_keys.hpp"

namespace vigil {

/// One increment of a row. `model` is Django's `_meta` name
/// ("sentry.group").
struct buffer_incr {
  std::string model;
  /// Counter column -> amount added.
  std::map<std::string, int64_t> columns;
  /// Which row: column -> value (the row key hashes these).
  buffer_fields filters;
  /// Columns set to a value rather than incremented (the last one wins).
  buffer_fields extra;
  /// Sentry's signal_only: the flush only signals, it writes nothing.
  bool signal_only = false;

  /// Adds `later` (an increment of the same row) into this one: counters
  /// summed, extra values replaced, signal_only kept once set (as the
  /// row's hash keeps its "s" field).
  void merge(const buffer_incr& later);

  /// The Redis key of the row (buffer_row_key of model and filters).
  std::string row_key() const {
    return buffer_row_key(model, filters);
  }
};

/// Increments summed per row by their sender (the compact way in: the
/// buffer merges one row where it would merge one increment per event).
/// Each row appears once, its `columns` the sums of the increments
/// counted into it; `increments` is how many increments the rows sum,
/// for the buffer's figures.
struct buffer_batch {
  std::vector<buffer_incr> rows;
  uint64_t increments = 0;

  /// The index of the row of `model` and `filters`, added with nothing
  /// counted when new. Linear in the rows: a caller counting many
  /// increments of one row keeps the index.
  size_t row(std::string_view model, const buffer_fields& filters);
  /// One increment: `amount` added to `column` of row `index`.
  void count(size_t index, const std::string& column, int64_t amount = 1);
  /// Sets an extra column of row `index` (the last value wins).
  void set(size_t index, const std::string& column, const buffer_value& v);
  /// One whole increment, summed into its row.
  void add(const buffer_incr& x);
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, buffer_value& x) {
  return f(caf::meta::type_name("vigil.buffer_value"), x.type, x.text);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, buffer_incr& x) {
  return f(caf::meta::type_name("vigil.buffer_incr"), x.model, x.columns, x.filters, x.extra, x.signal_only);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, buffer_batch& x) {
  return f(caf::meta::type_name("vigil.buffer_batch"), x.rows, x.increments);
}

} // namespace vigil
