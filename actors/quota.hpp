#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/backends/quota.hpp"
#include "actors/mailbox_batch.hpp"
#include "actors/status.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

class config;

/// Reason code of checks rejected because the store failed (fail-open off).
inline constexpr const char* quota_unavailable_reason = "quota_unavailable";

/// What a decider of quotas keeps about failed checks: the quota actor, and
/// the ingest actor when it decides with an in-process store or gets no
/// answer from the quota actor. Both go through
/// `quota_unavailable_decisions`, so a failed check means the same, logs
/// the same line and counts the same figures wherever it failed.
struct quota_outage {
  /// When a failure was last logged: a dead store fails every batch, and
  /// is logged at most once a minute.
  std::chrono::steady_clock::time_point last_warning{};
  /// Checks answered without a decision from the store, accepted
  /// (fail-open) or rejected (the status figure `failed_open`).
  uint64_t failed_open = 0;
};

/// The decisions for `n` checks that could not be decided (`reason`, no
/// secrets): with `fail_open` (quotas.fail-open) each is accepted, else
/// each is rejected for `reject_all_secs` with reason code
/// `quota_unavailable_reason`. Counts the checks in `outage.failed_open`
/// and the failure in `counters`, and logs a warning unless one was logged
/// in the minute before `now`.
std::vector<quota_decision>
quota_unavailable_decisions(bool fail_open, size_t n, const std::string& reason,
                            quota_outage& outage, status_counters& counters,
                            std::chrono::steady_clock::time_point now);

/// How a quota actor reaches its store and what it does when it cannot.
struct quota_actor_options {
  quota_backend_options backend;
  /// quotas.fail-open: accept when the store fails (Relay's default), else
  /// reject with retry_after 60 and reason code "quota_unavailable".
  bool fail_open = true;
  /// Most checks decided in one backend call.
  size_t max_batch = 65536;
};

/// Decides quota checks against one store. Runs detached (its backend
/// blocks) and batches: every check waiting in its mailbox when it gets to
/// work goes into one backend call (one Redis round trip), answered in
/// arrival order, each exactly as if decided alone.
using quota_actor = caf::typed_actor<
  /// Decides one check.
  caf::replies_to<quota_check>::with<quota_decision>,
  /// Decides several checks in order (callers with many checks send them
  /// this way: one message, one promise).
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

  quota_actor_options opts;
  std::unique_ptr<quota_backend> backend;
  mailbox_batch<quota_check, quota_decision> batch;
  status_counters counters;
  uint64_t batches = 0;
  /// Checks answered by `fail_open` because the store failed.
  quota_outage outage;
  uint64_t rejected = 0;
  std::chrono::steady_clock::time_point last_attempt{};
};

/// Spawn with `spawn<caf::detached>(quota_service, opts)`.
quota_actor::behavior_type
quota_service(quota_actor::stateful_pointer<quota_state> self,
              quota_actor_options opts);

/// Options from config: quotas.backend, quotas.options.cluster (a name in
/// redis.clusters) and quotas.fail-open.
caf::expected<quota_actor_options> make_quota_actor_options(const config& cfg);

} // namespace vigil
