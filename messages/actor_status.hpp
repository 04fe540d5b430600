#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <caf/meta/type_name.hpp>

namespace vigil {

/// What every long-lived actor answers to a status request: the figures the
/// inspector and console show.
struct actor_status {
  uint64_t id = 0;
  /// The actor's `state::name`, e.g. "tasks.consumer".
  std::string name;
  uint64_t mailbox_size = 0;
  /// Messages (or items, for batch actors) handled.
  uint64_t processed = 0;
  uint64_t errors = 0;
  uint64_t restarts = 0;
  std::string last_error;
  /// The actor's own figures, by name.
  std::map<std::string, std::string> extra;
};

/// @relates actor_status
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_status& x) {
  return f(caf::meta::type_name("vigil.actor_status"), x.id, x.name,
           x.mailbox_size, x.processed, x.errors, x.restarts, x.last_error,
           x.extra);
}

} // namespace vigil
