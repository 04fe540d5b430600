#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "messages/task_message.hpp"

namespace vigil {

/// A message taken off a queue, still in its transport encoding.
struct raw_delivery {
  /// The queue (routing key) it was taken from.
  std::string queue;
  /// The handle to acknowledge it with.
  std::string tag;
  /// The envelope as the broker holds it (kombu JSON on Redis and memory).
  std::string envelope;
  /// Earlier deliveries of this message that ended with its holder dead
  /// (see `restore_unacked` and `count_delivery`); always 0 on a broker
  /// that does not count them.
  uint32_t failed_deliveries = 0;
};

/// A message the workers gave up on, kept with the reason.
struct dead_letter {
  /// Identifies the record for `replay_dead_letters`.
  std::string id;
  std::string task;
  std::string task_id;
  std::string queue;
  std::string reason;
  /// When it was dead-lettered, Unix microseconds.
  int64_t time_us = 0;
  /// The message as it would be requeued (any bytes).
  std::string envelope;
  /// Set when the stored record itself could not be read: why. `id` is then
  /// "unreadable-<hash>", `envelope` the raw record, and it is not replayed.
  std::string unreadable;
};

/// Renders a dead letter as one JSON object, always valid JSON: text fields
/// with invalid UTF-8 get U+FFFD, an envelope that is not valid UTF-8 is
/// written as `envelope_base64` so that replay gives back its exact bytes.
std::string to_json(const dead_letter& x);

/// Parses what `to_json` wrote (also records of older versions whose
/// envelope held invalid UTF-8 raw).
caf::expected<dead_letter> dead_letter_from_json(std::string_view json);

/// Reads a stored record; one that cannot be parsed comes back as an
/// `unreadable` dead letter rather than being skipped.
dead_letter read_dead_letter_record(std::string_view record);

/// One connection to a task broker. Calls block for at most the timeout the
/// connection was made with, so a broker lives inside a detached actor (or a
/// CLI command), one per thread. Backends: memory (in-process), redis
/// (kombu's layout, shared with Python Celery clients and workers).
class broker {
public:
  virtual ~broker();

  /// The broker's URL with any password masked, for logs.
  virtual std::string describe() const = 0;

  /// Publishes a batch; returns once the broker holds every message.
  virtual caf::error publish(const std::vector<outgoing_task>& batch) = 0;

  /// Pushes an envelope exactly as given onto `queue` (priority 0): replays
  /// and tests use it; `publish` is the way to send a task.
  virtual caf::error push_raw(std::string_view queue, std::string_view envelope) = 0;

  /// Takes up to `max` messages from `queues` (kombu's order: priority
  /// bucket first, then queue order) and records them as unacknowledged in
  /// the same atomic step, so a crash cannot lose one. Returns at once with
  /// nothing when the queues are empty. `queues` is also what the caller
  /// consumes now: a broker that subscribes (AMQP) stops consuming a queue
  /// no longer listed and gives back what it received of it and had not
  /// handed out (uncounted); an empty list with `max` 0 just does that.
  /// Deliveries already handed out are acknowledged as usual.
  virtual caf::error fetch(const std::vector<std::string>& queues, size_t max,
                           std::vector<raw_delivery>& out) = 0;

  /// Decodes a fetched message into a delivery (tag and queue set). The
  /// default reads kombu's JSON envelope, as the memory and Redis backends
  /// hold it.
  virtual caf::expected<delivery> decode(const raw_delivery& raw);

  /// Acknowledges deliveries: they are done and leave the broker (with
  /// their failed-delivery counts).
  virtual caf::error ack(const std::vector<std::string>& tags) = 0;

  /// Gives unacknowledged deliveries back to the head of their queues.
  virtual caf::error requeue(const std::vector<std::string>& tags) = 0;

  /// Gives back every delivery unacknowledged for longer than
  /// `visibility_timeout` (its consumer is presumed dead, so each counts as
  /// `restore_unacked` counts it); returns how many.
  virtual caf::expected<size_t>
  restore_expired(std::chrono::duration<double> visibility_timeout) = 0;

  /// Gives back at once, like `requeue`, deliveries whose holder died (a
  /// worker that crashed while it held them, or a consumer that died
  /// holding them), and records the crash: which of the messages a holder
  /// held killed it is not known, so each one that has no failed delivery
  /// recorded gets one; one counted by `count_delivery` for this delivery
  /// keeps that count. Tags no longer unacknowledged are skipped; returns
  /// how many were given back. The default requeues and counts nothing
  /// (memory, Redis and AMQP each override it; AMQP: a nack with requeue
  /// gives the message back at once, and its redelivery is counted).
  virtual caf::expected<size_t>
  restore_unacked(const std::vector<std::string>& tags);

  /// Counts the delivery `tag` as failed before it runs (a redelivered
  /// message about to run alone): until it is acknowledged it counts as
  /// one whose worker died, so that a message that takes the whole process
  /// down is counted although nothing survives to restore it. Returns the
  /// count of failed deliveries now recorded; the default counts nothing
  /// and answers 0. AMQP records the run (a marker in RabbitMQ) and
  /// counts it when the message comes back.
  virtual caf::expected<uint32_t> count_delivery(const std::string& tag);

  /// Stores dead letters and acknowledges `tags` (their deliveries).
  virtual caf::error dead_letter_batch(const std::vector<dead_letter>& letters,
                                       const std::vector<std::string>& tags)
    = 0;

  /// Lists dead letters, newest first.
  virtual caf::expected<std::vector<dead_letter>> list_dead_letters() = 0;

  /// Requeues the dead letter `id` (every one if `id` is empty) and removes
  /// it from the dead letters; returns how many were requeued.
  virtual caf::expected<size_t> replay_dead_letters(std::string_view id) = 0;

  /// Messages waiting in `queue`, all priority buckets together.
  virtual caf::expected<size_t> queue_length(std::string_view queue) = 0;

  /// Deliveries taken but not yet acknowledged.
  virtual caf::expected<size_t> unacked_count() = 0;

  /// True when what the broker holds outlives this process (Redis,
  /// RabbitMQ): a publish that returned is kept. False for memory://,
  /// whose queues die with the process: a producer that must not lose a
  /// task keeps its own copy until the task settled (see watch_settled).
  virtual bool durable() const {
    return true;
  }

  /// Called with the task ids (`task_message::id`) of messages that left
  /// the broker for good: acknowledged or dead-lettered, and no other
  /// message with that id (a retry) still held.
  using settled_listener = std::function<void(std::vector<std::string>)>;

  /// A broker that is not durable calls `fn` (from the thread that
  /// settled the messages) for messages published while it is registered,
  /// until the last reference to it is dropped; returns false when the
  /// broker does not report settlements (durable ones need not).
  virtual bool watch_settled(std::shared_ptr<settled_listener> fn) {
    (void) fn;
    return false;
  }
};

/// Connects to the broker at `url` (memory://, redis://...). Every call on
/// the result is bounded by `timeout`.
caf::expected<std::unique_ptr<broker>>
connect_broker(std::string_view url, std::chrono::milliseconds timeout);

/// Creates the in-process broker named by a memory:// URL,
/// `memory://[name][?max-messages=N]`; every broker of the same URL in this
/// process shares its queues. At most `max-messages` (default
/// `memory_broker_default_max`) wait in them: a publish beyond that fails
/// (too_large) and stores nothing, so producers without consumers (`run
/// web` on memory://) get an error to pass on instead of filling memory.
/// A batch larger than `max-messages` never fits: keep it above
/// `ingest.batch-size`. Requeued and restored deliveries are always taken
/// back. Fails for a malformed or unknown query parameter.
caf::expected<std::unique_ptr<broker>> make_memory_broker(std::string_view url);

/// Messages a memory:// broker holds waiting unless its URL says otherwise.
constexpr size_t memory_broker_default_max = 100000;

/// Connects to a Redis broker (kombu layout).
caf::expected<std::unique_ptr<broker>>
make_redis_broker(std::string_view url, std::chrono::milliseconds timeout);

/// Connects to a RabbitMQ broker (Celery's AMQP topology):
/// amqp://user:password@host:port/vhost[?prefetch=N&heartbeat=S].
caf::expected<std::unique_ptr<broker>>
make_amqp_broker(std::string_view url, std::chrono::milliseconds timeout);

} // namespace vigil
