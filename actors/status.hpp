#pragma once

#include <cstdint>
#include <string>

#include "messages/actor_status.hpp"

namespace vigil {

/// The counters every long-lived actor keeps for its status answer.
struct status_counters {
  uint64_t processed = 0;
  uint64_t errors = 0;
  uint64_t restarts = 0;
  std::string last_error;

  /// Records an error (its text must hold no secret).
  void fail(std::string text) {
    ++errors;
    last_error = std::move(text);
  }
};

/// Fills an actor_status from inside the actor (the mailbox size may only be
/// read by the actor itself).
template <class Self>
actor_status make_status(Self* self, const status_counters& c) {
  actor_status st;
  st.id = self->id();
  st.name = self->name();
  st.mailbox_size = self->mailbox().size();
  st.processed = c.processed;
  st.errors = c.errors;
  st.restarts = c.restarts;
  st.last_error = c.last_error;
  return st;
}

} // namespace vigil
