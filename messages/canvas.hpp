#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>

#include "messages/task_message.hpp"
#include "messages/value.hpp"

namespace vigil {

// Celery's canvas as a worker sees it: protocol v2's `embed`
// (`callbacks`, `errbacks`, `chain`, `chord`) and the messages a finished
// task sends on. Pure data: the runner decides when, the consumer sends.

/// The canvas part of a task body, as Celery 5.2 writes it. Each list holds
/// signatures in Celery's dict form ({task, args, kwargs, options,
/// subtask_type, immutable}); `chain` is in reverse order (the next task is
/// the last element: Celery pops from the end).
struct task_embed {
  value_array callbacks;
  value_array errbacks;
  value_array chain;
  /// The chord body (a signature) when this task is a chord header part.
  value chord;

  bool empty() const {
    return callbacks.empty() && errbacks.empty() && chain.empty()
           && chord.is_nil();
  }
};

/// Reads `embed` (nil, or a map with any of the four keys; a single
/// signature where a list is expected is taken as a list of one). Fails
/// with errc::malformed on anything else.
caf::expected<task_embed> parse_embed(const value& embed);

/// What a follow-up message inherits from the task that sends it.
struct send_context {
  /// The sending task's id (the follow-up's parent_id).
  std::string parent_id;
  /// The workflow's root id (the sender's root_id, else its id).
  std::string root_id;
  /// Body serializer for the follow-up (the sender's content type).
  std::string content_type = "application/x-msgpack";
  std::string origin;
  /// Queue when the signature names none ("" leaves it to the consumer,
  /// which uses tasks.default-queue).
  std::string default_queue;
  /// The sender's priority, used when the signature sets none.
  int32_t priority = 0;
};

/// Builds the messages that apply `sig` as Celery's Signature.apply_async
/// does: `partial_args` prepended to the signature's args unless it is
/// immutable; options honoured (task_id, queue, routing_key, countdown,
/// eta, expires, priority, time_limit, soft_time_limit, group_id,
/// group_index, chord, link, link_error, shadow, ignore_result, headers,
/// reply_to); `chain` (reverse order, as in embed) carried in the embed;
/// root_id and parent_id from `ctx`. A "chain" signature sends its first
/// task with the rest as its chain; a "group" sends each member with the
/// group's id; a "chord" sends its header members as parts of the chord
/// (the body, with the rest of the chain, in their embed; the first part
/// carries the chord size to set first: outgoing_task::chord_size), or the
/// body with `([],)` when the header is empty. Fails with errc::malformed
/// for a signature that is not a map with a task name, and
/// errc::unsupported for a group or chord inside a chord header.
caf::expected<std::vector<outgoing_task>>
apply_signature(const value& sig, const value_array& partial_args,
                const send_context& ctx, const value_array& chain = {});

/// What a chord header part leaves for the consumer: Celery's Redis backend
/// entry for the group's `.j` sorted set, and what the body needs.
struct chord_part {
  std::string group_id;
  /// The part's group_index (the sorted-set score); -1 = none (+inf).
  int32_t group_index = -1;
  /// `[1, task_id, state, result]` serialized as the result serializer.
  std::string entry;
  /// The chord body signature, as msgpack.
  std::string body;
  /// The finishing part's id and root, for the body's parent_id / root_id.
  std::string task_id;
  std::string root_id;
  std::string content_type;
  int32_t priority = 0;
};

/// @relates chord_part
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, chord_part& x) {
  return f(caf::meta::type_name("vigil.chord_part"), x.group_id,
           x.group_index, x.entry, x.body, x.task_id, x.root_id,
           x.content_type, x.priority);
}

/// A result document to store for another task than the one that ran (a
/// chain member failed with its predecessor, a chord body failed by
/// ChordError).
struct extra_result {
  std::string task_id;
  std::string doc;
};

/// @relates extra_result
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, extra_result& x) {
  return f(caf::meta::type_name("vigil.extra_result"), x.task_id, x.doc);
}

/// What a finished task sends on and stores besides its own result.
struct canvas_effects {
  /// Callbacks, the next chain link, errbacks, a chord body.
  std::vector<outgoing_task> follow_ups;
  std::vector<extra_result> extra_results;
  /// Set (group_id non-empty) when the task was a chord header part.
  chord_part chord;
};

/// @relates canvas_effects
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, canvas_effects& x) {
  return f(caf::meta::type_name("vigil.canvas_effects"), x.follow_ups,
           x.extra_results, x.chord);
}

/// After success, as Celery's tracer does: each callback applied with
/// `(result,)`, then the next chain link (popped from the end) with
/// `(result,)` and the rest of the chain.
caf::expected<std::vector<outgoing_task>>
success_follow_ups(const task_embed& embed, const value& result,
                   const send_context& ctx);

/// After a final failure, as Celery 5.2's backend does for errbacks it
/// cannot call in-process: each errback applied with `(failed task id,)`,
/// parent_id = that id.
caf::expected<std::vector<outgoing_task>>
failure_follow_ups(const task_embed& embed, const send_context& ctx);

/// The ids of the chain members still to run (their options.task_id),
/// which Celery marks FAILURE with the exception that stopped the chain.
std::vector<std::string> pending_chain_ids(const task_embed& embed);

/// Celery's `.j` entry: [1, task_id, state, result] as `content_type`.
std::string encode_chord_entry(const std::string& task_id,
                               const std::string& state, const value& result,
                               std::string_view content_type);

/// What completes a chord once every part returned.
struct chord_completion {
  /// The body message (args: the ordered results), or none on ChordError.
  std::vector<outgoing_task> messages;
  /// FAILURE (ChordError) for the body when a part failed.
  std::vector<extra_result> results;
};

/// Decodes the `.j` entries (msgpack or JSON, in group_index order) and
/// builds the body message with their results as its first argument, as
/// Celery's `callback.delay(results)`; when a part failed or was revoked,
/// instead the body's FAILURE (ChordError "Dependency <id> raised ...",
/// serialized as `result_content_type`) and its errbacks.
caf::expected<chord_completion>
complete_chord(const chord_part& last, const std::vector<std::string>& entries,
               std::string_view result_content_type);

} // namespace vigil
