#pragma once

// The digests store (Sentry's sentry.digests backends): timelines of
// records waiting to be delivered together as one notification, and the
// schedule that says when each timeline is due. Backends: dummy (accepts
// and forgets, Sentry's DummyBackend), memory (one process) and redis
// (Sentry's RedisBackend layout under namespace `d`, its steps in one Lua
// script per call). See docs/DIGESTS.md.
//
// A timeline is "waiting" (scored by when it becomes due) or "ready"
// (scored by when it was scheduled). Its first record makes it ready at
// once; after a delivery it waits `minimum_delay`, each record added
// meanwhile pushing it back by `increment_delay`, never past
// `maximum_delay` after that delivery.
//
// Delivery is at least once: `open_digest` takes the timeline's lock and
// moves its records into the digest snapshot, where they stay until
// `close_digest` (called after the notification went out) removes them. A
// node that dies in between leaves the snapshot; the lock expires, the
// maintenance pass returns the timeline to waiting, and the next open
// returns the snapshot's records again (with any newer ones).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace vigil {

class config;

/// One record of a timeline (Sentry's Record): `id` names it within the
/// timeline (an event id; a record with the same id replaces it), `value`
/// is opaque bytes (the caller's encoding), `timestamp` Unix seconds.
struct digest_record {
  std::string id;
  std::string value;
  double timestamp = 0;
};

/// A record to add to timeline `key` with the delays to apply (a project's
/// own, or the store's defaults).
struct digest_add {
  std::string key;
  digest_record record;
  double increment_delay = 30;
  double maximum_delay = 1800;
};

/// A timeline that `schedule` moved to ready, and the time it was due
/// (Sentry's ScheduleEntry).
struct digest_schedule_entry {
  std::string key;
  double timestamp = 0;
};

/// An open digest: the timeline's lock is held by `lock_token` until
/// `close_digest` or `release_digest` (or until the lock's TTL runs out).
struct digest_lease {
  std::string key;
  std::string lock_token;
  /// The delay `close_digest` waits before the timeline is due again.
  double minimum_delay = 300;
  /// The records to deliver, newest first (Sentry's order); records whose
  /// value is gone (expired) are left out, as Sentry leaves them out.
  std::vector<digest_record> records;
  /// Every record id of the snapshot, those without a value included:
  /// what `close_digest` removes.
  std::vector<std::string> ids;
};

/// Figures of a digests store (this backend object's calls).
struct digest_backend_stats {
  /// Records given to `add`/`add_many`, and adds that made a timeline
  /// ready at once.
  uint64_t records_added = 0;
  uint64_t ready_at_once = 0;
  /// Timelines moved to ready by `schedule`.
  uint64_t scheduled = 0;
  /// Digests opened and closed, records closed (delivered).
  uint64_t opened = 0;
  uint64_t closed = 0;
  uint64_t records_delivered = 0;
  /// Opens refused: the lock was held, or the timeline was not ready.
  uint64_t locked = 0;
  uint64_t not_ready = 0;
};

/// A digests store. Calls block for at most the backend's timeout, so a
/// backend lives in a detached actor, one per thread. Times are Unix
/// seconds (fractions allowed, as Sentry's time.time()).
class digest_backend {
public:
  virtual ~digest_backend();

  /// A description for logs, without secrets.
  virtual std::string describe() const = 0;

  /// Adds one record (Sentry's `add`, one script call). Returns true when
  /// the timeline became ready now: the caller delivers it at once.
  virtual caf::expected<bool> add(const digest_add& x, double now) = 0;

  /// Adds many records, of any timelines, in one round trip; the answer
  /// per record is what `add` would have answered, given in order (the
  /// hot path: one call per batch of alerts).
  virtual caf::expected<std::vector<bool>>
  add_many(const std::vector<digest_add>& xs, double now) = 0;

  /// Moves every waiting timeline due by `deadline` to ready and returns
  /// them with their due times, earliest first.
  virtual caf::expected<std::vector<digest_schedule_entry>>
  schedule(double deadline, double now) = 0;

  /// Moves timelines ready since before `deadline` (their delivery was
  /// lost) back to waiting, keeping their scores, so `schedule` picks
  /// them up again.
  virtual caf::error maintenance(double deadline, double now) = 0;

  /// Opens the digest of a ready timeline: takes its lock, merges the
  /// timeline into the snapshot (truncated to the capacity) and returns
  /// the snapshot. Errors: errc::unavailable when another holder has the
  /// lock (`is_digest_locked`), errc::not_found when the timeline is not
  /// ready (`is_digest_not_ready`: Sentry's InvalidState).
  virtual caf::expected<digest_lease>
  open_digest(const std::string& key, double minimum_delay, double now) = 0;

  /// Closes an open digest once its records were delivered: removes
  /// `lease.ids` from the snapshot and releases the lock; the timeline
  /// waits `lease.minimum_delay` from `now` if it held records (delivered
  /// or new), else it leaves the schedule. errc::unavailable if another
  /// holder took the lock meanwhile (nothing changes).
  virtual caf::error close_digest(const digest_lease& lease, double now) = 0;

  /// Gives up an open digest without delivering it: releases the lock and
  /// changes nothing else (Sentry's digest block raising).
  virtual caf::error release_digest(const digest_lease& lease) = 0;

  /// Deletes a timeline, its snapshot, records and schedule entries
  /// (Sentry's `delete`); errc::unavailable while its digest is open.
  virtual caf::error delete_timeline(const std::string& key, double now) = 0;

  /// The store's figures.
  virtual digest_backend_stats stats() const = 0;
};

/// True when `err` means the timeline's lock is held by another opener.
bool is_digest_locked(const caf::error& err);

/// True when `err` means the timeline is not in the ready state.
bool is_digest_not_ready(const caf::error& err);

/// How to reach a digests store, with Sentry's defaults.
struct digest_backend_options {
  /// "dummy", "memory" or "redis".
  std::string backend = "memory";
  /// redis: the server; memory: a store name shared in this process.
  std::string url = "memory://digests";
  /// Key namespace (Sentry's `namespace`): keys `d:t:{key}`, `d:s:w`...
  std::string key_namespace = "d";
  /// Lifetime of records, timelines, snapshots and last-delivery times
  /// (redis; the memory store keeps them until they are removed).
  std::chrono::seconds ttl{3600};
  /// Defaults of the delays (digests.*-delay), seconds.
  double minimum_delay = 300;
  double maximum_delay = 1800;
  double increment_delay = 30;
  /// Records a timeline keeps, newest first (0 = no limit).
  size_t capacity = 0;
  /// Chance that an add truncates its timeline to the capacity (Sentry:
  /// 1/capacity; 1 makes the capacity a hard limit). Unset: Sentry's.
  std::optional<double> truncation_chance;
  /// How long an open digest holds the timeline's lock (Sentry: 30 s).
  std::chrono::seconds lock_ttl{30};
  /// redis: bound on every blocking call.
  std::chrono::milliseconds timeout{2000};

  /// The chance in effect: 0 without a capacity.
  double effective_truncation_chance() const;
};

/// The options from `digests.*` in `cfg` (digests.options' cluster resolved
/// in redis.clusters); errors name the key.
caf::expected<digest_backend_options> make_digest_backend_options(const config& cfg);

/// Sentry's DummyBackend: adds are forgotten, nothing is ever due.
std::unique_ptr<digest_backend>
make_dummy_digest_backend(const digest_backend_options& opts);

/// The in-process store; backends with the same `url` share timelines.
std::unique_ptr<digest_backend>
make_memory_digest_backend(const digest_backend_options& opts);

/// Sentry's RedisBackend on the server `opts.url`.
caf::expected<std::unique_ptr<digest_backend>>
make_redis_digest_backend(const digest_backend_options& opts);

/// Creates the backend `opts.backend` names.
caf::expected<std::unique_ptr<digest_backend>>
make_digest_backend(const digest_backend_options& opts);

} // namespace vigil
