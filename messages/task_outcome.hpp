#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

#include "messages/canvas.hpp"
#include "messages/task_message.hpp"

namespace vigil {

/// What became of one delivery, as a worker reports it to its consumer.
enum class outcome_kind : uint8_t {
  /// The function returned: acknowledge (and store the result).
  success,
  /// Run again later: republish with retries + 1, then acknowledge.
  retry,
  /// Give up: keep it with the reason in the dead letters.
  dead_letter,
  /// Expired before it ran: acknowledge and count (REVOKED result).
  expired,
};

/// Returns "success", "retry", "dead_letter" or "expired".
const char* to_string(outcome_kind k);

/// The result of running (or refusing) one delivery.
struct task_outcome {
  delivery d;
  /// An `outcome_kind`, kept as its integer for a stable wire form.
  uint8_t kind = 0;
  /// The result document to store, serialized as the message's content
  /// type; empty if none is to be stored.
  std::string result_doc;
  /// Why it is retried or dead-lettered.
  std::string reason;
  /// Seconds until the retry runs.
  double retry_delay = 0;
  /// Canvas follow-ups (callbacks, chain, errbacks), results to store for
  /// other tasks, and the chord part to return.
  canvas_effects canvas;

  outcome_kind what() const { return static_cast<outcome_kind>(kind); }
};

/// @relates task_outcome
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_outcome& x) {
  return f(caf::meta::type_name("vigil.task_outcome"), x.d, x.kind,
           x.result_doc, x.reason, x.retry_delay, x.canvas);
}

} // namespace vigil
