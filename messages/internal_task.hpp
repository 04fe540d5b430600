#pragma once

// The task messages vigil sends itself (buffer flushes, digest
// deliveries): keyword arguments only, a msgpack body, no result kept.

#include <string>
#include <string_view>

#include "messages/task_message.hpp"
#include "messages/value.hpp"

namespace vigil {

/// A message of task `name` with `kwargs`, for `queue`, from `origin`
/// ("vigil@buffer").
outgoing_task make_internal_task(std::string_view name,
                                 const std::string& queue, value_map kwargs,
                                 std::string_view origin);

} // namespace vigil
