#pragma once

// The attachments of an ingest batch: their bytes put in the filestore,
// then their rows recorded in the event store, before the batch is
// answered. Keys depend only on the event and the attachment's place in
// its envelope, so a retried envelope rewrites the same files and adds no
// row (see docs/FILESTORE.md, "Attachments").

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/error.hpp>

#include "actors/backends/event_store.hpp"
#include "actors/backends/filestore.hpp"
#include "actors/ingest_queue.hpp"

namespace vigil {

/// One accepted attachment of a batch.
struct batch_attachment {
  /// The job it came in (its index in the batch).
  size_t job = 0;
  uint64_t project_id = 0;
  std::string event_id;
  /// Its place among the attachments of its envelope, from 0.
  size_t index = 0;
  ingest_attachment item;
};

/// The filestore key of an attachment:
/// "attachments/{project_id}/{event_id}/{index}-{sha1}".
std::string attachment_key(uint64_t project_id, const std::string& event_id,
                           size_t index, const std::string& sha1);

/// Puts every attachment's bytes in `files`, then records their rows in
/// `store` in one transaction (`now`: their date_added). The first failure
/// ends it: the caller answers the jobs 503 and their retry repeats it all,
/// harmlessly.
caf::error keep_attachments(filestore_backend& files, event_store& store,
                            const std::vector<batch_attachment>& xs,
                            double now);

} // namespace vigil
