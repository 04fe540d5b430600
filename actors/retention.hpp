#pragma once

// Retention (`vigil cleanup --days N`, Sentry's `sentry cleanup`): what is
// older than the cutoff leaves the nodestore, and attachments leave the
// filestore and the event store together.

#include <cstdint>

#include <caf/expected.hpp>

#include "actors/backends/event_store.hpp"
#include "actors/backends/filestore.hpp"

namespace vigil {

/// What one cleanup removed.
struct cleanup_figures {
  /// Nodestore entries (events) written before the cutoff.
  int64_t nodes = 0;
  /// Attachments stored before the cutoff: files and rows.
  int64_t attachments = 0;
};

/// Removes what was stored before `cutoff` (Unix seconds). An attachment's
/// file goes first, then its row, in batches: a cleanup that stops half-way
/// leaves rows whose files are gone (their download answers 404), which
/// the next cleanup removes. `files` null: attachments are left alone.
caf::expected<cleanup_figures> run_cleanup(event_store& store,
                                           filestore_backend* files,
                                           double cutoff);

} // namespace vigil
