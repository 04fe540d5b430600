#pragma once

// Cluster membership: every process announces its node card in Redis with
// a heartbeat, and anyone lists the live ones.
//
// Layout (hash-tagged, so that Redis Cluster keeps it in one slot):
// - `{vigil:nodes}:<id>`: the card as JSON, SET with EX ttl at every
//   heartbeat; a node that stops heartbeating is gone when it expires.
// - `{vigil:nodes}`: a sorted set of node ids scored by their last
//   heartbeat (Unix seconds), so that listing needs no SCAN; members older
//   than the TTL are dropped by every heartbeat and every listing.
// A clean stop deletes both at once.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/node_identity.hpp"
#include "actors/status.hpp"
#include "adapters/redis.hpp"
#include "messages/node_card.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

/// The sorted set of node ids.
inline constexpr const char* membership_index_key = "{vigil:nodes}";

/// The key of one node's card.
std::string membership_card_key(const std::string& id);

struct membership_options {
  /// The Redis server (redis.clusters.<inspect.cluster>'s first host).
  std::string redis_url;
  std::shared_ptr<node_identity> identity;
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds ttl{15000};
  /// Bound on every Redis call.
  std::chrono::milliseconds io_timeout{2000};
};

using node_membership_actor = caf::typed_actor<
  /// Self-sent every interval: announce the card again.
  caf::reacts_to<poll_atom>,
  /// Removes this node's entry (a clean stop); true when Redis took it.
  caf::replies_to<drain_atom>::with<bool>,
  caf::replies_to<status_atom>::with<actor_status>>;

/// State of the membership actor.
struct membership_state {
  static inline const char* name = "node.membership";
  membership_options opts;
  std::optional<redis_connection> conn;
  status_counters counters;
  bool failing = false;
  bool removed = false;
};

/// Spawn with `sys.spawn<caf::detached>(node_membership, options)`: it
/// announces at once, then every interval. Redis being down is logged (once
/// per outage) and retried at the next heartbeat.
node_membership_actor::behavior_type
node_membership(
  node_membership_actor::stateful_pointer<membership_state> self,
  membership_options opts);

/// The live members, oldest first (blocking, bounded by `timeout`).
caf::expected<std::vector<node_card>>
read_members(const std::string& redis_url, std::chrono::milliseconds timeout,
             std::chrono::milliseconds ttl = std::chrono::milliseconds{15000});

} // namespace vigil
