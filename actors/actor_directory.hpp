#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>

namespace vigil {

/// How an actor in the directory answers a `status_atom` request.
enum class status_reply {
  /// One `actor_status`.
  single,
  /// A `std::vector<actor_status>`: the actor and the children it
  /// supervises (the task supervisor).
  list,
};

/// One long-lived actor of this node.
struct directory_entry {
  /// The service it belongs to, e.g. "web", "tasks", "buffer".
  std::string service;
  /// The actor; untyped, so that one directory holds every interface (each
  /// answers `status_atom`, see messages/actor_status.hpp).
  caf::actor handle;
  status_reply reply = status_reply::single;
};

/// The node's long-lived actors, for the inspector and the metrics gauges.
/// Services add their actors when they start; readers take a copy. Safe to
/// use from any thread.
class actor_directory {
public:
  /// Adds an actor (an invalid handle is ignored).
  void add(std::string service, caf::actor handle,
           status_reply reply = status_reply::single);

  /// Adds a typed actor.
  template <class Handle>
  void add_typed(std::string service, const Handle& handle,
                 status_reply reply = status_reply::single) {
    add(std::move(service), caf::actor_cast<caf::actor>(handle), reply);
  }

  /// A copy of the entries, in the order they were added.
  std::vector<directory_entry> entries() const;

private:
  mutable std::mutex mtx_;
  std::vector<directory_entry> entries_;
};

/// The directory shared by a node's services.
using actor_directory_ptr = std::shared_ptr<actor_directory>;

} // namespace vigil
