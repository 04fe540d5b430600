#pragma once

// The outbox record of one ingest batch: the post_process tasks its events
// queue, as the event store keeps them until the broker has them (see
// docs/STORAGE.md, "The task outbox").

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

namespace vigil {

/// The arguments of one `vigil.events.post_process` task, and the task id it
/// was (or will be) published with, so that a republished task keeps it.
struct post_process_record {
  std::string task_id;
  std::string event_id;
  uint64_t project_id = 0;
  int64_t group_id = 0;
  bool is_new = false;
};

/// The tasks of one batch, all on one queue.
struct post_process_batch {
  std::string queue;
  std::vector<post_process_record> tasks;
};

/// Encodes a batch compactly (a version byte, then length-prefixed fields
/// and varints): ~60 bytes per task, written in the batch's transaction.
std::string encode_post_process_batch(const post_process_batch& batch);

/// Decodes what encode_post_process_batch wrote; an error for anything
/// else (a truncated, corrupt or newer record).
caf::expected<post_process_batch>
decode_post_process_batch(std::string_view bytes);

} // namespace vigil
