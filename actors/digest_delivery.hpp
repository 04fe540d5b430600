#pragma once

// Notification digests, from fired rules to mail (Sentry's
// sentry.digests.notifications and tasks.digests):
// - the alert sink of `vigil.events.post_process` adds each record to its
//   project's timeline (`mail:p:{project}`); a timeline that becomes ready
//   at once gets a `vigil.digests.deliver` task;
// - cron's `schedule-digests` (every 30 s, once per cluster) sends
//   `vigil.digests.schedule`, which returns stuck timelines to waiting and
//   sends a `vigil.digests.deliver` for each one now due;
// - `vigil.digests.deliver(key)` opens the digest, builds the mail (issues
//   grouped by rule, ordered by events in the window, with user counts and
//   a chart each), sends it to the project's members, and closes the
//   digest only once the mail is sent (and only when the project's
//   notification rate limit lets it: else it waits for the next window):
//   a failed send (the SMTP server
//   down) releases the digest and retries the task with backoff, so the
//   records are delivered at least once.
// Tasks run on worker threads and may block: each thread keeps its own
// connections (store, database, TSDB, broker, mail).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/backends/digests.hpp"
#include "actors/backends/mailer.hpp"
#include "actors/backends/rate_limiter.hpp"
#include "actors/backends/tsdb.hpp"
#include "adapters/sql.hpp"
#include "config/cron_schedule.hpp"
#include "config/organizations.hpp"
#include "messages/alert_record.hpp"
#include "messages/digest_mail.hpp"
#include "tasks/alert_sink.hpp"
#include "tasks/task_registry.hpp"

namespace vigil {

class config;

/// The task that delivers one digest.
inline constexpr std::string_view deliver_digest_task = "vigil.digests.deliver";
/// The task that schedules the due digests.
inline constexpr std::string_view schedule_digests_task
  = "vigil.digests.schedule";

/// What digest delivery reads, writes and sends with.
struct digest_delivery_options {
  digest_backend_options store;
  /// The event store's database (groups, events), db.url resolved.
  std::string db_url;
  sql_options db_options;
  /// The TSDB: counts and charts of the window.
  tsdb_backend_options tsdb;
  /// Where deliver tasks are sent (broker.url).
  std::string broker_url;
  std::string delivery_queue = "digests.delivery";
  std::string scheduling_queue = "digests.scheduling";
  /// Projects, their rules, organizations and their members.
  std::shared_ptr<const quota_catalog> catalog;
  /// mail.* (backend, SMTP settings, subject prefix).
  mail_options mail;
  /// system.url-prefix (issue links), mail.list-namespace.
  std::string url_prefix;
  std::string list_namespace = "localhost";
  /// mail.enable-replies, system.secret-key and the reply host
  /// (mail.reply-hostname, else the domain of mail.from).
  bool replies = false;
  std::string secret_key;
  std::string reply_hostname;
  /// Timelines ready for longer than this are returned to waiting
  /// (Sentry's schedule_digests: 300 s).
  double maintenance_after = 300;
  /// The notification rate limiter (ratelimiter.*): at most
  /// `rate_limit` mails per project per `rate_limit_window` seconds (0 =
  /// none); a limited digest waits for the next window.
  rate_limiter_options limiter;
  int64_t rate_limit = 0;
  int64_t rate_limit_window = 3600;
  /// Whether the HTML part carries a chart per issue.
  bool charts = true;
};

/// The options from the configuration; errors name the key.
caf::expected<digest_delivery_options>
make_digest_delivery_options(const config& cfg);

/// The queues digest tasks are sent to (a node consumes them unless told
/// otherwise).
std::vector<std::string> digest_task_queues();

/// Cron's `schedule-digests` entry (Sentry's beat: every 30 s, expiring
/// after 30 s).
cron_entry schedule_digests_entry(double every = 30);

/// Registers `vigil.digests.schedule` and `vigil.digests.deliver`.
void register_digest_tasks(task_registry& reg,
                           std::shared_ptr<const digest_delivery_options> opts);

/// The sink that adds fired records to the digests store.
std::shared_ptr<alert_sink>
make_digest_alert_sink(std::shared_ptr<const digest_delivery_options> opts);

/// The project id of a digest key ("mail:p:{id}"), nullopt for another key.
std::optional<uint64_t> digest_project(const std::string& key);

} // namespace vigil
