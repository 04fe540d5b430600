#pragma once

// The hand-over between the HTTP threads and the ingest actor: a request
// becomes an `ingest_job` (its items, its quotas, the callback that answers
// it) and waits in a bounded `ingest_queue` until the actor takes it in a
// batch. The queue is the only state the two sides share.

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/actor_addr.hpp>

#include "messages/quota_messages.hpp"
#include "messages/sentry_event.hpp"
#include "messages/sentry_rate_limits.hpp"

namespace vigil {

/// An envelope attachment to keep: its bytes go to the filestore, what it
/// is to the event store (attachment_row), under the job's event id.
struct ingest_attachment {
  std::string name;
  std::string content_type;
  std::string type;
  std::string bytes;
};

/// One envelope item (or the one event of a store request).
struct ingest_item {
  /// Relay's data category, e.g. "error", "transaction", "attachment"; for
  /// an item no quota applies to, the name it is counted under
  /// ("client_report").
  std::string category;
  /// What the item consumes of its category's quotas, in the category's
  /// unit: 1 per event or session, one per span of a span container, the
  /// payload's bytes for an attachment (Relay's Item::quantities).
  int64_t quantity = 1;
  /// False for items no quota applies to (Relay gives client reports no
  /// data category): always accepted, only counted.
  bool limited = true;
  /// Events and transactions: the document to store.
  std::optional<normalized_event> event;
  /// The event as the nodestore keeps it (compressed on the HTTP thread,
  /// so that the single database writer does not).
  std::string encoded;
  /// The inbound filter that dropped the event ("" = none): the item is
  /// counted as filtered, checks no quota and is not stored.
  std::string filtered;
  /// Attachments: what to keep once the item is accepted.
  std::optional<ingest_attachment> attachment;
};

/// What the pipeline answers for one request.
struct ingest_result {
  enum class outcome {
    /// Every item was accepted (some may have been rate limited).
    accepted,
    /// Every counted item was rejected by a quota.
    rate_limited,
    /// The store or broker failed; nothing was kept. Answer 503.
    unavailable,
  };
  outcome status = outcome::accepted;
  /// The id to answer with.
  std::string event_id;
  /// Seconds until the longest rejecting window ends.
  int64_t retry_after = 0;
  /// The rejections, for X-Sentry-Rate-Limits.
  std::vector<rate_limit_entry> limits;
  /// What went wrong, for an unavailable answer.
  std::string detail;
};

/// The answer channel of one job: called once with the pipeline's answer.
/// A job dropped unanswered — its ingest actor died holding it — answers
/// 503 from the destructor, so that no client waits on a lost job.
class ingest_reply {
public:
  ingest_reply() = default;

  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, ingest_reply>
             && std::is_invocable_v<F&, ingest_result>)
  ingest_reply(F fn) : fn_(std::move(fn)) {
    // nop
  }

  ingest_reply(ingest_reply&& other) noexcept : fn_(std::move(other.fn_)) {
    other.fn_ = nullptr;
  }

  ingest_reply& operator=(ingest_reply&& other) noexcept;

  ingest_reply(const ingest_reply&) = delete;
  ingest_reply& operator=(const ingest_reply&) = delete;

  ~ingest_reply();

  /// Delivers the answer; later calls do nothing.
  void operator()(ingest_result res);

  /// Lets go without answering: the caller answers by other means (a job
  /// the queue refused).
  void cancel() {
    fn_ = nullptr;
  }

private:
  std::function<void(ingest_result)> fn_;
};

/// One request waiting for the pipeline.
struct ingest_job {
  quota_scoping scoping; // organization, project, key; category per item
  std::vector<quota_config> quotas;
  std::vector<ingest_item> items;
  std::string event_id;
  /// Called once with the answer, from the ingest actor's thread.
  ingest_reply done;
};

/// The memory a queued job holds, as the queue's byte bound counts it: the
/// events' JSON and their encoded form, and the bookkeeping around them.
size_t job_bytes(const ingest_job& job);

/// A hand-over from HTTP threads to the ingest actor, bounded by jobs and by
/// bytes (ingest.queue-size, ingest.queue-bytes).
class ingest_queue {
public:
  explicit ingest_queue(size_t capacity,
                        size_t byte_capacity = default_byte_capacity)
    : capacity_(capacity), byte_capacity_(byte_capacity) {
    // nop
  }

  /// ingest.queue-bytes' default (128 MiB).
  static constexpr size_t default_byte_capacity = 128 * 1024 * 1024;

  /// Wakes `actor` with a poll when work arrives while it is idle.
  void attach(caf::actor_addr actor);

  /// Queues a job; false when the queue holds `capacity` jobs or the job's
  /// bytes would take it past `byte_capacity` (answer 503). A job larger
  /// than the whole byte bound still enters an empty queue, so that one
  /// request within the size limits is never refused forever.
  bool push(ingest_job&& job);

  /// Takes up to `max` jobs in arrival order.
  std::vector<ingest_job> take(size_t max);

  size_t size() const;
  size_t bytes() const;
  size_t capacity() const {
    return capacity_;
  }
  size_t byte_capacity() const {
    return byte_capacity_;
  }

private:
  mutable std::mutex mtx_;
  /// Each job with its bytes as counted when it entered.
  std::deque<std::pair<ingest_job, size_t>> jobs_;
  size_t bytes_ = 0;
  size_t capacity_;
  size_t byte_capacity_;
  bool signaled_ = false;
  caf::actor_addr actor_;
};

} // namespace vigil
