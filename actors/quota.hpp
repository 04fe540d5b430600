#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/backends/quota.hpp"
#include "actors/status.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

/// How a quota actor reaches its store and what it does when it cannot.
struct quota_actor_options {
  quota_backend_options backend;
  /// Accept when the store fails (Relay's default), else reject with
  /// retry_after 60 and reason code "quota_unavailable".
  bool fail_open = true;
  /// Most checks decided in one backend call.
  size_t max_batch = 16384;
};

/// Decides quota checks against one store. Runs detached (its backend
/// blocks) and batches: every check waiting in its mailbox when it gets to
/// work goes into one backend call (one Redis round trip), answered in
/// arrival order, each exactly as if decided alone.
using quota_actor = caf::typed_actor<
  /// Decides one check.
  caf::replies_to<quota_check>::with<quota_decision>,
  /// Decides several checks in order.
  caf::replies_to<std::vector<quota_check>>::with<std::vector<quota_decision>>,
  /// Gives `quantity` back to the matching quotas; answers true.
  caf::replies_to<refund_atom, quota_scoping, std::vector<quota_config>,
                  int64_t>::with<bool>,
  /// Answers a quota's usage in its current window.
  caf::replies_to<usage_atom, quota_scoping, quota_config>::with<quota_usage>,
  /// Self-sent: decide what is queued.
  caf::reacts_to<batch_atom>,
  /// Answers the actor's status and figures.
  caf::replies_to<status_atom>::with<actor_status>>;

/// State of a quota actor.
struct quota_state {
  static inline const char* name = "quotas.actor";

  /// A check waiting for the next batch, with where its answer goes.
  struct pending {
    size_t first = 0; // index of its first check in `checks`
    size_t count = 0;
    bool single = true;
    caf::typed_response_promise<quota_decision> one;
    caf::typed_response_promise<std::vector<quota_decision>> many;
  };

  quota_actor_options opts;
  std::unique_ptr<quota_backend> backend;
  std::vector<quota_check> checks;
  std::vector<pending> waiting;
  bool batch_scheduled = false;
  status_counters counters;
  uint64_t batches = 0;
  uint64_t failed_open = 0;
  uint64_t rejected = 0;
};

/// Spawn with `spawn<caf::detached>(quota_service, opts)`.
quota_actor::behavior_type
quota_service(quota_actor::stateful_pointer<quota_state> self,
              quota_actor_options opts);

} // namespace vigil
