#pragma once

// The RabbitMQ (AMQP 0-9-1) broker behind make_amqp_broker, sharing queues
// with Python Celery 5.2 clients and workers (kombu's pyamqp transport): the
// same topology (a durable direct exchange, queue and binding per queue),
// publishes to the default exchange with Celery's properties and header
// table, manual acks and a global prefetch.
//
// One class in four files: broker_amqp.cpp (the connection, publishing,
// consuming, acks), broker_amqp_topology.cpp (exchanges, queues, bindings
// and the prefetch), broker_amqp_deliveries.cpp (the failed-delivery
// counts, kept in RabbitMQ itself: see there) and
// broker_amqp_dead_letters.cpp (the dead-letter queue and its records).
// Only those files include this header; everyone else reaches the broker
// through broker.hpp.
//
// One connection per broker object, on three channels (see
// amqp_connection): the work channel publishes with confirms, consumes and
// acks; declarations and the dead-letter reads have channels of their own.
// Deliveries arrive as RabbitMQ pushes them (up to the prefetch) and wait
// in `pending_` until a fetch asks for their queue; each is handed out as
// kombu's JSON envelope, so that the consumer, dead letters and replays see
// the same format on every backend. A delivery tag is only valid on the
// channel that received it: tags carry this connection's id, and tags of an
// earlier connection (the consumer reconnected; RabbitMQ has already
// requeued those messages) are ignored instead of acking someone else's
// message. RabbitMQ itself gives back what a dead connection held, so
// restore_expired has nothing to sweep; it keeps the connection serviced
// (heartbeats) while the consumer is too busy to fetch.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "actors/backends/broker.hpp"
#include "adapters/amqp.hpp"

namespace vigil {

/// Declares `queue` exactly as Celery 5.2 does: a durable direct exchange
/// named `queue`, a durable, non-exclusive, non-auto-delete queue without
/// arguments, and a binding with routing key `queue`. A queue (or exchange)
/// that exists with other arguments or flags (406) is used as it is, as
/// Celery's producers do.
caf::error declare_celery_queue(amqp_connection& conn, std::string_view queue);

/// The broker on one RabbitMQ connection (see the top of this file).
class rabbitmq_broker : public broker {
public:
  /// The queue the dead letters' JSON records go to (durable, no exchange
  /// of its own), the same name as the Redis broker's list.
  static constexpr std::string_view dead_letters_queue = "vigil.dead_letters";

  rabbitmq_broker(std::string url, amqp_connection conn);

  std::string describe() const override;
  caf::error publish(const std::vector<outgoing_task>& batch) override;
  caf::error push_raw(std::string_view queue,
                      std::string_view envelope) override;
  caf::error fetch(const std::vector<std::string>& queues, size_t max,
                   std::vector<raw_delivery>& out) override;
  caf::error ack(const std::vector<std::string>& tags) override;
  caf::error requeue(const std::vector<std::string>& tags) override;
  caf::expected<size_t>
  restore_expired(std::chrono::duration<double>) override;
  caf::expected<size_t> queue_length(std::string_view queue) override;
  caf::expected<size_t> unacked_count() override;

  // broker_amqp_deliveries.cpp
  caf::expected<size_t>
  restore_unacked(const std::vector<std::string>& tags) override;
  caf::expected<uint32_t> count_delivery(const std::string& tag) override;

  // broker_amqp_dead_letters.cpp
  caf::error dead_letter_batch(const std::vector<dead_letter>& letters,
                               const std::vector<std::string>& tags) override;
  caf::expected<std::vector<dead_letter>> list_dead_letters() override;
  caf::expected<size_t> replay_dead_letters(std::string_view id) override;

private:
  using steady = std::chrono::steady_clock;

  /// A delivery received and not yet handed out by fetch.
  struct pending_delivery {
    std::string queue;
    uint64_t tag = 0;
    std::string envelope;
    /// Its failed deliveries (see broker_amqp_deliveries.cpp).
    uint32_t failed = 0;
    /// What names its run marker (the task id); kept only when failed > 0.
    std::string key;
    /// A redelivered message not checked yet for a suspect run that died
    /// (its marker): kept whole for the copy that would count it.
    std::unique_ptr<amqp_delivery> unchecked;
  };

  /// A delivery handed out by fetch and not acknowledged.
  struct held_delivery {
    std::string queue;
    uint32_t failed = 0;
    std::string key;
    /// The run marker count_delivery declared for it, if any.
    std::string marker;
  };

  // -- connection -------------------------------------------------------------

  /// Reads what arrived (a close the server sent while we were idle, e.g.
  /// for missed heartbeats: the client library only services them when
  /// called). A connection that failed while it holds nothing (a
  /// publisher, a CLI command) is replaced transparently; one holding
  /// deliveries reports the error, and its owner reconnects (their tags die
  /// with it).
  caf::error revive();

  // -- topology (broker_amqp_topology.cpp) ------------------------------------

  /// Declares `queue` (Celery's way) once per connection.
  caf::error declare(const std::string& queue);

  /// kombu's prefetch is one limit for the whole channel (global=True).
  /// With a single consumer a per-consumer limit means the same and costs
  /// RabbitMQ a third less CPU per message; the channel-wide limit is set
  /// before a second queue is consumed.
  caf::error limit_prefetch(size_t consumers);

  // -- consuming and publishing -----------------------------------------------

  caf::error consume(const std::string& queue);

  /// Cancels (basic.cancel) the consumers of `queues` and reads what
  /// RabbitMQ pushed to them before its cancel-ok (rabbitmq-c keeps those
  /// frames while it waits for the reply), filed under their queue; after
  /// the cancel-ok nothing more of them arrives.
  caf::error cancel_consumers(const std::unordered_set<std::string>& queues);

  /// fetch: stops consuming every queue not in `keep` (cancel_consumer),
  /// as a Celery worker does, and hands back what it received of them
  /// (hand_back), so that other consumers get it at once.
  caf::error stop_consuming_others(const std::vector<std::string>& keep);

  /// Publishes one message to the default exchange, routed to `queue`.
  /// Mandatory: if the queue was deleted behind our back (we declare each
  /// queue once per connection), RabbitMQ returns the message instead of
  /// dropping it, and the publish fails. A server that stops reading fails
  /// it after the timeout.
  caf::error send(std::string_view queue, const amqp_properties& props,
                  std::string_view body);

  /// Waits until RabbitMQ confirmed everything published; fails when no
  /// confirm arrived for the timeout (large batches take longer than that).
  caf::error wait_confirms();

  void on_confirm(uint64_t tag, bool multiple, bool nack);

  // -- receiving --------------------------------------------------------------

  /// Handles one event if one arrives before `deadline`; false on timeout.
  caf::expected<bool> pump(steady::time_point deadline);

  /// Handles whatever already arrived, without waiting.
  caf::error service();

  caf::error on_event(amqp_delivery& d);
  caf::error on_event(const amqp_confirm& c);
  caf::error on_event(const amqp_returned& r);
  caf::error on_event(const amqp_cancelled& c);
  caf::error on_event(const amqp_closed& c);

  size_t take_pending(const std::vector<std::string>& queues, size_t max,
                      std::vector<raw_delivery>& out);

  caf::error reject(uint64_t tag);

  /// requeue and restore_unacked: gives `tags` back (nack with requeue),
  /// with everything received and not handed out of their queues. A clean
  /// give-back (`clean`) first deletes the run markers of suspects, so that
  /// their count stays as it was.
  caf::expected<size_t> give_back(const std::vector<std::string>& tags,
                                  bool clean);

  // -- failed deliveries (broker_amqp_deliveries.cpp) -------------------------

  /// Reads (and takes out of the headers, so that no decoder, retry or
  /// dead letter sees it) the count a delivery carries; sets `p.failed`,
  /// `p.key`; true when the message was redelivered (its holder gave it
  /// back or died), so that check_redelivered must look at it.
  bool read_count(amqp_delivery& d, pending_delivery& p);

  /// Checks each unchecked redelivered message for its run marker: a
  /// suspect that died while it ran is counted by a copy (count + 1)
  /// published to its queue with confirms, then the original is
  /// acknowledged and the marker deleted; the others keep their count.
  caf::error check_redelivered();

  /// Gives every delivery of `queues` received and not handed out back to
  /// its queue uncounted: a copy carrying the same count is published
  /// (with confirms), then the original acknowledged. A reject would come
  /// back redelivered, which counts as a failed delivery; the copy goes to
  /// the queue's tail. Redelivered ones are checked for their marker
  /// first (check_redelivered).
  caf::error hand_back(const std::unordered_set<std::string>& queues);

  /// Deletes run markers (after their deliveries left or went back cleanly).
  caf::error delete_markers(const std::vector<std::string>& markers);

  // -- tags -------------------------------------------------------------------

  std::string tag_text(uint64_t tag) const;

  /// The delivery tags of this connection among `tags` that it still
  /// holds, sorted; others (an earlier connection's, already acked) are
  /// skipped.
  std::vector<uint64_t> held_tags(const std::vector<std::string>& tags) const;

  // -- dead letters (broker_amqp_dead_letters.cpp) ----------------------------

  caf::error declare_dead_letters();

  /// Takes every record off the dead-letter queue (unacknowledged, on the
  /// get channel): (delivery tag, record), oldest first.
  caf::error
  get_dead_letters(std::vector<std::pair<uint64_t, std::string>>& out);

  /// Gives every record still held on the get channel back to its queue.
  caf::error return_gotten(size_t count);

  std::string url_;
  amqp_connection conn_;
  /// Distinguishes this connection's delivery tags from earlier ones.
  std::string id_;
  std::unordered_set<std::string> declared_;
  bool dead_letters_declared_ = false;
  /// Consumer tag -> queue, and the queues consumed.
  std::unordered_map<std::string, std::string> consumers_;
  std::unordered_set<std::string> consuming_;
  /// Consumer tag -> queue of consumers being cancelled (cancel_consumers).
  std::unordered_map<std::string, std::string> cancelled_;
  /// The basic.qos in force on the work channel.
  bool prefetch_set_ = false;
  bool prefetch_global_ = false;
  /// Received, not handed out yet (in arrival order).
  std::deque<pending_delivery> pending_;
  /// Set when a redelivered message arrived: check_redelivered has work.
  bool unchecked_waiting_ = false;
  /// Handed out by fetch and not acknowledged.
  std::map<uint64_t, held_delivery> held_;
  /// Every unacknowledged delivery on the work channel (held or pending).
  std::set<uint64_t> outstanding_;
  /// Publisher confirms: the next sequence number, those not confirmed yet,
  /// and how many the server refused.
  uint64_t next_seq_ = 1;
  std::set<uint64_t> unconfirmed_;
  size_t nacked_ = 0;
  /// Published messages RabbitMQ returned as unroutable.
  size_t returned_ = 0;
};

} // namespace vigil
