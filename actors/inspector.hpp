#pragma once

// The per-node inspector: the status of every long-lived actor of the node
// (actors/actor_directory.hpp), the service figures (queue depths, quotas,
// buffer, digests, cron), and the other nodes' snapshots, as JSON (the
// format is in docs/INSPECT.md).

#include <chrono>
#include <memory>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/actor_directory.hpp"
#include "actors/node_identity.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

using inspector_actor = caf::typed_actor<
  /// This node's snapshot, JSON (format below). Never fails: actors that do
  /// not answer within the inspector's timeout are listed "answering": false.
  caf::replies_to<snapshot_atom>::with<std::string>,
  /// Every node's snapshot: this one, and each member found in Redis
  /// (fetched from its management endpoint with inspect.token), JSON
  /// {"nodes": [...]}. A member that does not answer is listed with
  /// "reachable": false and an "error".
  caf::replies_to<snapshot_atom, cluster_atom>::with<std::string>>;

/// Where a node's service figures come from: blocking calls (Redis, AMQP)
/// with bounded timeouts. The inspector calls it from one detached helper
/// actor of its own, one call at a time, so an implementation may keep
/// connections without locking.
class service_figures {
public:
  virtual ~service_figures();

  /// A JSON object whose members are snapshot sections ("queues",
  /// "dead_letters", "quotas", "rate_limits", "buffer", "digests",
  /// "cron"); a section that could not be read carries an "error".
  virtual std::string collect() = 0;
};

/// Where the other nodes' snapshots come from (membership in Redis, each
/// member's management endpoint). Blocking, bounded: called from a
/// detached actor spawned for each cluster request.
class cluster_source {
public:
  virtual ~cluster_source();

  /// A JSON array of the other members' snapshots (not `self_id`'s), each
  /// with "reachable" and, when not reachable, "error" and the member's
  /// card as "node".
  virtual std::string peers(const std::string& self_id) = 0;
};

/// What an inspector is spawned with.
struct inspector_options {
  /// The actors it asks (read again for every snapshot).
  actor_directory_ptr directory;
  /// This node's card.
  std::shared_ptr<node_identity> identity;
  /// How long each actor (and the figures helper) has to answer
  /// (inspect.timeout).
  std::chrono::milliseconds timeout{1000};
  /// The service figures; none: the snapshot has no service sections.
  std::shared_ptr<service_figures> figures;
  /// The other nodes; none: a cluster snapshot lists this node alone.
  std::shared_ptr<cluster_source> cluster;
  /// How long a cluster request may take for the other nodes.
  std::chrono::milliseconds cluster_timeout{5000};
};

/// Spawn with `sys.spawn(inspector, options)` (not detached: it only sends
/// requests and waits for none).
inspector_actor make_inspector(caf::actor_system& sys, inspector_options opts);

} // namespace vigil
