#pragma once

// What the write buffer's callers send: counter increments of SQL rows, as
// Sentry's `Buffer.incr(model, columns, filters, extra, signal_only)` takes
// them, with the `inspect` overloads CAF needs to carry them.

#include <cstdint>
#include <map>
#include <string>

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, buffer_value& x) {
  return f(caf::meta::type_name("vigil.buffer_value"), x.type, x.text);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, buffer_incr& x) {
  return f(caf::meta::type_name("vigil.buffer_incr"), x.model, x.columns, x.filters, x.extra, x.signal_only);
}

} // namespace vigil
