#pragma once

// The service figures of a node's inspection snapshot, read where each
// service keeps them: the broker's queue depths (Redis LLEN over kombu's
// priority lists and the `unacked` hash, RabbitMQ's message counts by a
// passive queue.declare), the dead letters, the write buffer's pending
// rows, the digests' schedules, the cron lock and next ticks. Blocking and
// bounded: the inspector calls it from its detached figures helper.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/backends/buffer.hpp"
#include "actors/backends/quota.hpp"
#include "messages/quota_messages.hpp"
#include "config/organizations.hpp"
#include "actors/inspector.hpp"
#include "config/cron_schedule.hpp"

namespace vigil {

/// Where a node's services keep their state; an empty field leaves its
/// section out of the snapshot.
struct figures_options {
  /// broker.url: "queues" and "dead_letters".
  std::string broker_url;
  /// The queues to show.
  std::vector<std::string> queues;
  /// Where the dead letters are listed: the web console's list, on the
  /// web bind, behind api.token (web/console.cpp).
  std::string dead_letters_path = "/console/api/dead-letters";
  /// The write buffer's store: "buffer".
  std::optional<buffer_backend_options> buffer;
  /// The digests' Redis and key namespace: "digests".
  std::string digests_url;
  std::string digests_namespace = "d";
  /// The quota store and what quotas apply (organizations, projects,
  /// keys): "quotas", each tracked quota's usage in its current window.
  std::optional<quota_backend_options> quotas;
  quota_catalog catalog;
  /// The Redis rate limiter and the limits whose use to show:
  /// "rate_limits" (the memory limiter's counters cannot be read without
  /// counting, so it has none).
  std::string rate_limiter_url;
  std::vector<rate_limit_check> rate_limits;
  /// The cron entries this node schedules and their lock: "cron".
  std::vector<cron_entry> cron_entries;
  std::string cron_lock_url;
  std::string cron_lock_key;
  /// Bound on each blocking call.
  std::chrono::milliseconds timeout{1000};
};

/// The figures of `opts`; connections are opened on first use and kept
/// (opened again after a failure).
std::shared_ptr<service_figures> make_service_figures(figures_options opts);

} // namespace vigil
