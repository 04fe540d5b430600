#pragma once

// The cluster as the inspector and `vigil inspect` see it: the members in
// Redis (actors/node_membership.hpp), each one's snapshot fetched from its
// management endpoint. Blocking calls, bounded: run in a detached actor or
// a CLI.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "actors/inspector.hpp"
#include "messages/node_card.hpp"

namespace vigil {

/// What one management endpoint answered.
struct fetched_snapshot {
  /// True with a 200 and a JSON object in `body`.
  bool ok = false;
  /// The HTTP status (0: no answer at all).
  long status = 0;
  std::string body;
  /// Why not ok, for a person: unreachable, refused token, not JSON.
  std::string error;
};

/// GETs `path` ("/snapshot" or "/cluster") from `address` ("host:port")
/// with `token` as bearer (none when empty), within `timeout`.
fetched_snapshot fetch_inspect_path(const std::string& address,
                                    const std::string& path,
                                    const std::string& token,
                                    std::chrono::milliseconds timeout);

/// A member that could not be read: its card as "node", "reachable": false
/// and the "error".
nlohmann::json unreachable_node(const node_card& card, const std::string& error);

/// The snapshots of `members` (fetched in parallel, each within
/// `timeout`), in their order; those without an endpoint or that do not
/// answer are listed with unreachable_node.
std::vector<nlohmann::json> fetch_member_snapshots(
  const std::vector<node_card>& members, const std::string& token,
  std::chrono::milliseconds timeout);

/// The inspector's view of the other nodes: the members in `redis_url`,
/// fetched with `token` (inspect.token).
std::shared_ptr<cluster_source>
make_cluster_source(std::string redis_url, std::string token,
                    std::chrono::milliseconds timeout);

} // namespace vigil
