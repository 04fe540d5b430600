#pragma once

// The task consumer's steps that stand on their own (actors/
// task_consumer.cpp is the actor: fetching, dispatching, outcomes, acks).
// Internal to the consumer's files.

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/task_consumer.hpp"

namespace vigil::consumer_steps {

using self_ptr = task_consumer_actor::stateful_pointer<task_consumer_state>;

// --- The result backend (task_consumer_results.cpp) ---

/// Connects the result backend if needed; false if it is unreachable.
bool ensure_results(self_ptr self);

/// Stores pending results; a failing result backend never holds up acks.
void store_results(self_ptr self);

/// Returns pending chord parts (Celery's on_chord_part_return); the part
/// that completes its chord queues the body. False (held, with the acks
/// behind it) while the result backend fails: acking first would lose the
/// chord.
bool return_chord_parts(self_ptr self);

/// Sets the size of chords the pending publishes start before their header
/// is published; false while the result backend fails.
bool set_chord_sizes(self_ptr self);

// --- Due, held and revoked deliveries (task_consumer_holding.cpp) ---

/// A delivery not run because it was revoked: REVOKED stored (and returned
/// to its chord), task-revoked told, acknowledged.
void revoke_delivery(task_consumer_state& st, delivery d);

/// Over its task's rate limit, a due delivery waits for its token, held as
/// an ETA message is (once: at its time it is due). True if it was held.
bool hold_for_rate_limit(task_consumer_state& st, delivery& d, bool suspect);

/// A due delivery goes to the suspects or the ready ones, unless it was
/// revoked (then REVOKED is stored, as Celery's worker does, and it is
/// acked) or is over its rate limit.
void make_due(task_consumer_state& st, delivery d, bool suspect);

} // namespace vigil::consumer_steps
