#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <yaml-cpp/yaml.h>

#include "messages/crontab.hpp"
#include "messages/task_message.hpp"
#include "messages/value.hpp"

namespace vigil {

class config;

/// When a schedule entry is due: either every `every_ms` milliseconds, at
/// the multiples of `every_ms` since the Unix epoch (so every node agrees on
/// the ticks), or at the minutes a crontab expression matches (UTC).
struct cron_timing {
  /// > 0 for an interval schedule.
  int64_t every_ms = 0;
  /// Set for a crontab schedule.
  std::optional<crontab> cron;

  /// The latest tick at or before `t_ms`; nullopt if none (a crontab with no
  /// match in the 30 years before).
  std::optional<int64_t> tick_at_or_before(int64_t t_ms) const;

  /// The first tick strictly after `t_ms`; nullopt if none.
  std::optional<int64_t> tick_after(int64_t t_ms) const;

  /// "every 10 s" or "crontab '*/5 * * * *' (UTC)".
  std::string describe() const;
};

/// One entry of `cron.schedule`.
struct cron_entry {
  /// Unique within the schedule; names the entry in logs, status and the
  /// Redis hash of fired ticks.
  std::string name;
  /// The task to send, e.g. "vigil.ping".
  std::string task;
  cron_timing timing;
  /// options.queue; "" = tasks.default-queue.
  std::string queue;
  /// options.expires in seconds after sending; 0 = never.
  double expires = 0;
  value_array args;
  value_map kwargs;
};

/// Reads a `cron.schedule` value: a list of maps with the keys name, task,
/// every (seconds, > 0) or crontab (exactly one of the two), options
/// (queue, expires), kwargs (a map) and args (a list). On any problem fails
/// with errc::bad_config whose text lists every problem, separated by "; ",
/// each naming the entry and the key, e.g. "entry 2 ('flush'): missing
/// 'task'"; unknown keys get a "did you mean" hint. A null node is an empty
/// schedule. Never throws.
caf::expected<std::vector<cron_entry>>
parse_cron_schedule(const YAML::Node& node);

/// The entries of `cron.schedule` in `cfg` (validated when `cfg` loaded).
caf::expected<std::vector<cron_entry>> cron_schedule_from_config(const config& cfg);

/// What the scheduler does for one entry at one moment.
struct cron_decision {
  /// The tick to send now, if any.
  std::optional<int64_t> fire;
  /// Due ticks older than `fire` that are not sent (no burst after a
  /// downtime); counted for logs. Capped at 10000.
  uint64_t skipped = 0;
  /// The first tick after `now_ms` (when to look again).
  std::optional<int64_t> next;
};

/// The no-burst policy, as a pure function. `last_ms` is the tick fired last
/// (by any node), or, when the entry never fired, the time the scheduler
/// started watching it, so that a new entry first fires at its next tick.
/// If the latest tick at or before `now_ms` is newer than `last_ms`, it (and
/// only it) fires: after a downtime the missed ticks collapse into one send,
/// made at once; otherwise nothing fires.
cron_decision decide_fire(const cron_timing& timing, int64_t last_ms,
                          int64_t now_ms);

/// The task message for one firing of `entry` at `tick_ms`, sent at
/// `now_us`: a new task id, origin `origin`, kwargs and args as configured,
/// expires `entry.expires` after `now_us`, and the headers
/// `vigil_cron_entry` (the entry's name) and `vigil_cron_tick` (the tick in
/// Unix milliseconds), which tell duplicates apart from separate ticks.
outgoing_task make_cron_task(const cron_entry& entry, int64_t tick_ms,
                             int64_t now_us, std::string_view default_queue,
                             std::string_view origin);

} // namespace vigil
