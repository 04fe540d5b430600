#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "messages/canvas.hpp"

namespace vigil {

/// A task result to store: the task id and its serialized document.
struct stored_result {
  std::string task_id;
  std::string doc;
};

/// Where task results go so that a Celery client's AsyncResult.get() finds
/// them. One connection; used from one thread.
class result_backend {
public:
  virtual ~result_backend();

  /// Stores a batch of result documents.
  virtual caf::error store(const std::vector<stored_result>& results) = 0;

  /// Reads the stored document of `task_id` (empty if none).
  virtual caf::expected<std::string> fetch(std::string_view task_id) = 0;

  /// Returns finished chord header parts as Celery's Redis backend does
  /// (on_chord_part_return): each part's entry is added to its group's
  /// `.j` sorted set (score group_index) and compared, atomically, with the
  /// chord size the client set (`.s`, plus `.t`). Answers, per part, the
  /// group's entries in order when that part completed the chord (exactly
  /// one part sees it complete), else nothing.
  virtual caf::expected<std::vector<std::vector<std::string>>>
  return_chord_parts(const std::vector<chord_part>& parts) = 0;

  /// Sets the size (`.s`, with the result expiry) of chords a worker
  /// applies, as Celery's set_chord_size does before the header is sent:
  /// (group id, number of parts).
  virtual caf::error
  set_chord_sizes(const std::vector<std::pair<std::string, int64_t>>& sizes)
    = 0;

  /// Deletes the `.j`, `.t` and `.s` keys of chords whose body was sent.
  virtual caf::error forget_chords(const std::vector<std::string>& groups) = 0;
};

/// Connects to the result backend at `url` (redis://...): results live
/// under `celery-task-meta-<id>` for `expires` seconds and are published on
/// the channel of the same name, as Celery's Redis backend does.
caf::expected<std::unique_ptr<result_backend>>
connect_result_backend(std::string_view url, std::chrono::seconds expires,
                       std::chrono::milliseconds timeout);

} // namespace vigil
