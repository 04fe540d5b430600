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
  /// The event reopened its resolved group (a 6th field, written only when
  /// true: records without it read as false).
  bool is_regression = false;
};

/// The tasks of one batch, all on one queue.
struct post_process_batch {
  std::string queue;
  std::vector<post_process_record> tasks;
};

/// Encodes a batch as msgpack (record version 2): the array
/// `[2, queue, [[task_id, event_id, project_id, group_id, is_new], ...]]`,
/// ~80 bytes per task, written in the batch's transaction; a regression's
/// task has a 6th field, is_regression (true).
std::string encode_post_process_batch(const post_process_batch& batch);

/// Decodes a record of either version, told apart by the first byte: 0x01
/// is version 1 (the varint format written before issue 14, which rows left
/// in an upgraded node's outbox still carry), anything else is read as
/// msgpack and must be version 2. An error for anything else (a truncated,
/// corrupt or newer record).
caf::expected<post_process_batch>
decode_post_process_batch(std::string_view bytes);

} // namespace vigil
