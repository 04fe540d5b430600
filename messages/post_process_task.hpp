#pragma once

// The wire form of `vigil.events.post_process(event_id, project_id,
// group_id, is_new, is_regression=False)`, the task the ingest pipeline queues for every stored
// error event (and the outbox republishes with its original id): a Celery
// protocol v2 message with a msgpack body and Python-style kwargsrepr.

#include <cstdint>
#include <string>
#include <string_view>

#include "messages/task_message.hpp"

namespace vigil {

/// The registered name of the task.
inline constexpr std::string_view post_process_task_name
  = "vigil.events.post_process";

/// The task for a stored event, to publish on `queue`; `task_id` empty: a
/// new one (a UUID4), else kept (a republished task keeps its id).
outgoing_task make_post_process_task(const std::string& queue,
                                     const std::string& event_id,
                                     uint64_t project_id, int64_t group_id,
                                     bool is_new,
                                     const std::string& task_id = {},
                                     bool is_regression = false);

/// The task's body, `[[], {event_id, project_id, group_id, is_new},
/// {callbacks, errbacks, chain, chord: nil}]` in msgpack, keys in that
/// order: the bytes encode_task_body writes for the same kwargs (each
/// integer and string header in its smallest form). `is_regression` is a
/// 5th kwarg written only when true: the usual task keeps its bytes, and a
/// consumer that predates it takes the default (false).
std::string encode_post_process_body(std::string_view event_id,
                                     uint64_t project_id, int64_t group_id,
                                     bool is_new, bool is_regression = false);

/// The task's kwargsrepr, as to_repr writes the kwargs map.
std::string post_process_kwargsrepr(std::string_view event_id,
                                    uint64_t project_id, int64_t group_id,
                                    bool is_new, bool is_regression = false);

} // namespace vigil
