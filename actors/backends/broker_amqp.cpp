// The RabbitMQ (AMQP 0-9-1) broker, sharing queues with Python Celery 5.2
// clients and workers (kombu's pyamqp transport): the same topology (a
// durable direct exchange, queue and binding per queue), publishes to the
// default exchange with Celery's properties and header table, manual acks
// and a global prefetch.
//
// One connection per broker object, on three channels (see
// amqp_connection): the work channel publishes with confirms, consumes and
// acks; declarations and the dead-letter reads have channels of their own.
// Deliveries arrive as RabbitMQ pushes them (up to the prefetch) and wait
// in `pending_` until a fetch asks for their queue; each is handed out as
// kombu's JSON envelope, so that the consumer, dead letters and replays see
// the same format on every backend. A delivery tag is only valid on the channel
// that received it: tags carry this connection's id, and tags of an
// earlier connection (the consumer reconnected; RabbitMQ has already
// requeued those messages) are ignored instead of acking someone else's
// message. RabbitMQ itself gives back what a dead connection held, so
// restore_expired has nothing to sweep; it keeps the connection serviced
// (heartbeats) while the consumer is too busy to fetch.

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "actors/backends/broker.hpp"
#include "adapters/amqp.hpp"
#include "adapters/amqp_message.hpp"
#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

using steady = std::chrono::steady_clock;

constexpr std::string_view dead_letters_queue = "vigil.dead_letters";
constexpr std::chrono::milliseconds first_wait_after_consume{20};
constexpr std::chrono::milliseconds first_wait{1};
/// Events handled per non-blocking service call (bounds its time).
constexpr size_t max_service_frames = 4096;

// Declares `queue` exactly as Celery 5.2 does: a durable direct exchange
// named `queue`, a durable, non-exclusive, non-auto-delete queue without
// arguments, and a binding with routing key `queue`. A queue (or exchange)
// that exists with other arguments (406) is used as it is, as Celery's
// producers do.
caf::error declare_celery_queue(amqp_connection& conn, std::string_view queue) {
  uint16_t code = 0;
  if (auto err = conn.declare_exchange(queue, "direct", {}, &code);
      err && (code != 406 || !conn.ok()))
    return err;
  code = 0;
  if (auto n = conn.declare_queue(queue, {}, &code);
      !n && (code != 406 || !conn.ok()))
    return n.error();
  return conn.bind_queue(queue, queue, queue);
}

/// A delivery received and not yet handed out by fetch.
struct pending_delivery {
  std::string queue;
  uint64_t tag = 0;
  std::string envelope;
};

class rabbitmq_broker : public broker {
public:
  rabbitmq_broker(std::string url, amqp_connection conn)
    : url_(std::move(url)),
      conn_(std::move(conn)),
      id_(new_uuid4().substr(0, 8)) {
    // nop
  }

  std::string describe() const override {
    return mask_url(url_);
  }

  caf::error publish(const std::vector<outgoing_task>& batch) override {
    if (batch.empty())
      return {};
    if (auto err = revive())
      return err;
    for (auto& out : batch)
      if (auto err = declare(out.queue))
        return err;
    // The batch leaves in full TCP segments; uncorked before any wait.
    conn_.cork(true);
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& out = batch[i];
      auto props = make_amqp_properties(out.msg);
      drop_null_headers(props);
      if (auto err = send(out.queue, props, out.msg.body)) {
        conn_.cork(false);
        return err;
      }
      // Read confirms and deliveries as we go: a server whose writes to us
      // back up stops reading our publishes.
      if (i % 64 == 63)
        if (auto err = service()) {
          conn_.cork(false);
          return err;
        }
    }
    conn_.cork(false);
    return wait_confirms();
  }

  caf::error push_raw(std::string_view queue,
                      std::string_view envelope) override {
    if (auto err = revive())
      return err;
    std::string q{queue};
    if (auto err = declare(q))
      return err;
    amqp_properties props;
    std::string body;
    kombu_envelope_to_amqp(envelope, props, body);
    if (auto err = send(q, props, body))
      return err;
    return wait_confirms();
  }

  caf::error fetch(const std::vector<std::string>& queues, size_t max,
                   std::vector<raw_delivery>& out) override {
    if (!conn_.ok())
      return conn_.broken_error();
    if (max == 0 || queues.empty())
      return {};
    bool started = false;
    for (auto& q : queues) {
      if (consuming_.count(q) != 0)
        continue;
      if (auto err = limit_prefetch(consuming_.size() + 1))
        return err;
      if (auto err = consume(q))
        return err;
      started = true;
    }
    auto taken = take_pending(queues, max, out);
    // Wait briefly for the first delivery (longer right after basic.consume,
    // while RabbitMQ starts pushing), then take only what already arrived.
    auto deadline = steady::now();
    if (taken == 0)
      deadline += started ? first_wait_after_consume : first_wait;
    while (taken < max) {
      auto got = pump(deadline);
      if (!got)
        return got.error();
      if (!*got)
        break;
      auto n = take_pending(queues, max - taken, out);
      if (n > 0 && taken == 0)
        deadline = steady::now();
      taken += n;
    }
    return {};
  }

  caf::error ack(const std::vector<std::string>& tags) override {
    if (tags.empty())
      return {};
    if (!conn_.ok())
      return conn_.broken_error();
    auto nums = held_tags(tags);
    if (nums.empty())
      return {};
    if (auto err = conn_.wait_writable(steady::now() + conn_.timeout()))
      return err;
    // One multiple-ack covers the longest run of the oldest outstanding
    // deliveries; it must not reach a delivery we still hold.
    size_t k = 0;
    for (auto i = outstanding_.begin();
         k < nums.size() && i != outstanding_.end() && *i == nums[k]; ++i)
      ++k;
    if (k > 0)
      if (auto err = conn_.ack(amqp_connection::work_channel, nums[k - 1],
                               k > 1))
        return err;
    for (size_t i = k; i < nums.size(); ++i)
      if (auto err = conn_.ack(amqp_connection::work_channel, nums[i]))
        return err;
    for (auto n : nums) {
      held_.erase(n);
      outstanding_.erase(n);
    }
    return {};
  }

  caf::error requeue(const std::vector<std::string>& tags) override {
    if (tags.empty())
      return {};
    if (!conn_.ok())
      return conn_.broken_error();
    auto nums = held_tags(tags);
    if (nums.empty())
      return {};
    std::unordered_set<std::string> queues;
    for (auto n : nums)
      queues.insert(held_[n]);
    // Stop consuming these queues (a fetch starts again), so that nothing
    // pushed to us is still on its way: everything received but not handed
    // out goes back too, and RabbitMQ requeues each message at its original
    // position, so the queue's order survives (the requeued ones come first
    // again, as on the other backends).
    for (auto i = consumers_.begin(); i != consumers_.end();) {
      if (queues.count(i->second) == 0) {
        ++i;
        continue;
      }
      if (auto err = conn_.cancel(i->first))
        return err;
      consuming_.erase(i->second);
      i = consumers_.erase(i);
    }
    if (auto err = service())
      return err;
    if (auto err = conn_.wait_writable(steady::now() + conn_.timeout()))
      return err;
    for (auto n : nums) {
      if (auto err = reject(n))
        return err;
      held_.erase(n);
    }
    for (auto i = pending_.begin(); i != pending_.end();) {
      if (queues.count(i->queue) == 0) {
        ++i;
        continue;
      }
      if (auto err = reject(i->tag))
        return err;
      i = pending_.erase(i);
    }
    return {};
  }

  caf::expected<size_t>
  restore_expired(std::chrono::duration<double>) override {
    // RabbitMQ redelivers what a closed connection held; nothing to sweep.
    // The consumer calls this periodically: read what arrived and send a
    // heartbeat if one is due, even while it is too busy to fetch.
    if (!conn_.ok())
      return conn_.broken_error();
    if (auto err = service())
      return err;
    return size_t{0};
  }

  caf::error dead_letter_batch(const std::vector<dead_letter>& letters,
                               const std::vector<std::string>& tags) override {
    if (!conn_.ok())
      return conn_.broken_error();
    if (!letters.empty()) {
      if (auto err = declare_dead_letters())
        return err;
      for (auto& x : letters) {
        auto props = record_properties();
        if (auto err = send(dead_letters_queue, props, to_json(x)))
          return err;
      }
      // The records are durable before the deliveries are acknowledged.
      if (auto err = wait_confirms())
        return err;
    }
    return ack(tags);
  }

  caf::expected<std::vector<dead_letter>> list_dead_letters() override {
    std::vector<std::pair<uint64_t, std::string>> records;
    if (auto err = get_dead_letters(records))
      return err;
    // Everything goes back, in its original place.
    if (auto err = return_gotten(records.size()))
      return err;
    std::vector<dead_letter> out;
    out.reserve(records.size());
    for (auto i = records.rbegin(); i != records.rend(); ++i)
      out.push_back(read_dead_letter_record(i->second));
    std::stable_sort(out.begin(), out.end(),
                     [](const dead_letter& x, const dead_letter& y) {
                       return x.time_us > y.time_us;
                     });
    return out;
  }

  caf::expected<size_t> replay_dead_letters(std::string_view id) override {
    std::vector<std::pair<uint64_t, std::string>> records;
    if (auto err = get_dead_letters(records))
      return err;
    std::vector<uint64_t> replayed;
    auto give_back = [&](caf::error err) {
      if (conn_.ok())
        return_gotten(records.size());
      return err;
    };
    for (auto& [tag, record] : records) {
      // An unreadable record has no message to requeue: it stays listed.
      auto x = dead_letter_from_json(record);
      if (!x || !x->unreadable.empty() || (!id.empty() && x->id != id))
        continue;
      std::string queue = x->queue.empty() ? "celery" : x->queue;
      if (auto err = declare(queue))
        return give_back(err);
      amqp_properties props;
      std::string body;
      kombu_envelope_to_amqp(x->envelope, props, body);
      if (auto err = send(queue, props, body))
        return give_back(err);
      replayed.push_back(tag);
    }
    if (!replayed.empty()) {
      if (auto err = wait_confirms())
        return give_back(err);
      // Requeued and confirmed: now drop the records.
      for (auto tag : replayed)
        if (auto err = conn_.ack(amqp_connection::get_channel, tag))
          return err;
    }
    if (auto err = return_gotten(records.size() - replayed.size()))
      return err;
    return replayed.size();
  }

  caf::expected<size_t> queue_length(std::string_view queue) override {
    if (auto err = revive())
      return err;
    auto n = conn_.message_count(queue);
    if (!n)
      return n.error();
    // Deliveries pushed to this connection and not handed out yet are
    // still waiting, as far as callers are concerned.
    size_t total = n->value_or(0);
    for (auto& p : pending_)
      if (p.queue == queue)
        ++total;
    return total;
  }

  caf::expected<size_t> unacked_count() override {
    if (!conn_.ok())
      return conn_.broken_error();
    return held_.size();
  }

private:
  // -- connection -------------------------------------------------------------

  // Reads what arrived (a close the server sent while we were idle, e.g.
  // for missed heartbeats: rabbitmq-c only services them when called). A
  // connection that failed while it holds nothing (a publisher, a CLI
  // command) is replaced transparently; one holding deliveries reports
  // the error, and its owner reconnects (their tags die with it).
  caf::error revive() {
    if (conn_.ok() && !service())
      return {};
    if (!held_.empty() || !pending_.empty() || !consumers_.empty())
      return conn_.broken_error();
    auto fresh = amqp_connection::connect(conn_.endpoint(), conn_.timeout());
    if (!fresh)
      return fresh.error();
    conn_ = std::move(*fresh);
    id_ = new_uuid4().substr(0, 8);
    declared_.clear();
    dead_letters_declared_ = false;
    consuming_.clear();
    prefetch_set_ = false;
    prefetch_global_ = false;
    outstanding_.clear();
    next_seq_ = 1;
    unconfirmed_.clear();
    nacked_ = 0;
    returned_ = 0;
    return {};
  }

  // -- topology ---------------------------------------------------------------

  caf::error declare(const std::string& queue) {
    if (declared_.count(queue) != 0)
      return {};
    if (auto err = declare_celery_queue(conn_, queue))
      return err;
    declared_.insert(queue);
    return {};
  }

  caf::error declare_dead_letters() {
    if (dead_letters_declared_)
      return {};
    uint16_t code = 0;
    // 406: it exists with other arguments; use it as it is.
    if (auto n = conn_.declare_queue(dead_letters_queue, {}, &code);
        !n && (code != 406 || !conn_.ok()))
      return n.error();
    dead_letters_declared_ = true;
    return {};
  }

  // kombu's prefetch is one limit for the whole channel (global=True).
  // With a single consumer a per-consumer limit means the same and costs
  // RabbitMQ a third less CPU per message; the channel-wide limit is set
  // before a second queue is consumed.
  caf::error limit_prefetch(size_t consumers) {
    bool global = consumers > 1;
    if (prefetch_set_ && (prefetch_global_ || !global))
      return {};
    if (auto err = conn_.set_prefetch(global))
      return err;
    prefetch_set_ = true;
    prefetch_global_ = global;
    return {};
  }

  caf::error consume(const std::string& queue) {
    if (auto err = declare(queue))
      return err;
    auto tag = conn_.consume(queue);
    if (!tag)
      return tag.error();
    consumers_[std::move(*tag)] = queue;
    consuming_.insert(queue);
    return {};
  }

  // -- publishing -------------------------------------------------------------

  static amqp_properties record_properties() {
    amqp_properties props;
    props.content_type = "application/json";
    props.content_encoding = "utf-8";
    props.delivery_mode = 2;
    return props;
  }

  // Publishes one message to the default exchange, routed to `queue`.
  // Mandatory: if the queue was deleted behind our back (we declare each
  // queue once per connection), RabbitMQ returns the message instead of
  // dropping it, and the publish fails. A server that stops reading fails
  // it after the timeout.
  caf::error send(std::string_view queue, const amqp_properties& props,
                  std::string_view body) {
    if (auto err = conn_.wait_writable(steady::now() + conn_.timeout()))
      return err;
    if (auto err = conn_.publish("", queue, props, body, true))
      return err;
    unconfirmed_.insert(next_seq_++);
    return {};
  }

  // Waits until RabbitMQ confirmed everything published; fails when no
  // confirm arrived for the timeout (large batches take longer than that).
  caf::error wait_confirms() {
    auto deadline = steady::now() + conn_.timeout();
    while (!unconfirmed_.empty()) {
      auto before = unconfirmed_.size();
      auto got = pump(deadline);
      if (!got)
        return got.error();
      if (unconfirmed_.size() < before)
        deadline = steady::now() + conn_.timeout();
      if (!*got) {
        auto n = unconfirmed_.size();
        unconfirmed_.clear();
        return conn_.fail_timeout("waiting for publisher confirms of "
                                  + std::to_string(n) + " message(s)");
      }
    }
    if (nacked_ > 0) {
      auto n = nacked_;
      nacked_ = 0;
      returned_ = 0;
      return caf::make_error(errc::command_failed,
                             "RabbitMQ refused (nacked) " + std::to_string(n)
                               + " published message(s)");
    }
    if (returned_ > 0) {
      auto n = returned_;
      returned_ = 0;
      return caf::make_error(errc::command_failed,
                             "RabbitMQ could not route " + std::to_string(n)
                               + " published message(s): a queue was "
                                 "deleted? (it is declared again next time)");
    }
    return {};
  }

  void on_confirm(uint64_t tag, bool multiple, bool nack) {
    if (multiple) {
      auto end = unconfirmed_.upper_bound(tag);
      if (nack)
        nacked_ += static_cast<size_t>(std::distance(unconfirmed_.begin(), end));
      unconfirmed_.erase(unconfirmed_.begin(), end);
    } else if (unconfirmed_.erase(tag) > 0 && nack) {
      ++nacked_;
    }
  }

  // -- receiving --------------------------------------------------------------

  // Handles one event if one arrives before `deadline`; false on timeout.
  caf::expected<bool> pump(steady::time_point deadline) {
    auto ev = conn_.next_event(deadline);
    if (!ev)
      return ev.error();
    if (!*ev)
      return false;
    if (auto err = std::visit([this](auto& x) { return on_event(x); }, **ev))
      return err;
    return true;
  }

  // Handles whatever already arrived, without waiting.
  caf::error service() {
    for (size_t i = 0; i < max_service_frames; ++i) {
      auto got = pump(steady::now());
      if (!got)
        return got.error();
      if (!*got)
        break;
    }
    return {};
  }

  caf::error on_event(amqp_delivery& d) {
    auto tag = d.delivery_tag;
    std::string queue = d.routing_key;
    if (auto i = consumers_.find(d.consumer_tag); i != consumers_.end())
      queue = i->second;
    auto envelope = kombu_envelope_from_amqp(d.properties, d.body, d.exchange,
                                             d.routing_key, tag_text(tag),
                                             d.redelivered);
    outstanding_.insert(tag);
    pending_.push_back(pending_delivery{std::move(queue), tag,
                                        std::move(envelope)});
    return {};
  }

  caf::error on_event(const amqp_confirm& c) {
    on_confirm(c.delivery_tag, c.multiple, c.nack);
    return {};
  }

  caf::error on_event(const amqp_returned&) {
    // Unroutable (mandatory); the confirm comes after it. Declare every
    // queue again before the next publish.
    ++returned_;
    declared_.clear();
    return {};
  }

  caf::error on_event(const amqp_cancelled& c) {
    // The queue was deleted: consume (and declare) it again next time.
    auto i = consumers_.find(c.consumer_tag);
    if (i != consumers_.end()) {
      consuming_.erase(i->second);
      declared_.erase(i->second);
      consumers_.erase(i);
    }
    return {};
  }

  caf::error on_event(const amqp_closed&) {
    // The admin channel, reopened: the connection carries on.
    return {};
  }

  size_t take_pending(const std::vector<std::string>& queues, size_t max,
                      std::vector<raw_delivery>& out) {
    size_t n = 0;
    for (auto i = pending_.begin(); i != pending_.end() && n < max;) {
      if (std::find(queues.begin(), queues.end(), i->queue) == queues.end()) {
        ++i;
        continue;
      }
      held_.emplace(i->tag, i->queue);
      out.push_back(raw_delivery{i->queue, tag_text(i->tag),
                                 std::move(i->envelope)});
      i = pending_.erase(i);
      ++n;
    }
    return n;
  }

  caf::error reject(uint64_t tag) {
    if (auto err = conn_.reject(amqp_connection::work_channel, tag, true))
      return err;
    outstanding_.erase(tag);
    return {};
  }

  // -- tags -------------------------------------------------------------------

  std::string tag_text(uint64_t tag) const {
    return std::to_string(tag) + "@" + id_;
  }

  // The delivery tags of this connection among `tags` that it still holds,
  // sorted; others (an earlier connection's, already acked) are skipped.
  std::vector<uint64_t> held_tags(const std::vector<std::string>& tags) const {
    std::vector<uint64_t> out;
    out.reserve(tags.size());
    for (auto& t : tags) {
      auto at = t.find('@');
      if (at == std::string::npos
          || std::string_view{t}.substr(at + 1) != id_)
        continue;
      uint64_t n = 0;
      auto res = std::from_chars(t.data(), t.data() + at, n);
      if (res.ec != std::errc{} || res.ptr != t.data() + at)
        continue;
      if (held_.count(n) != 0)
        out.push_back(n);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  // -- dead letters -------------------------------------------------------------

  // Takes every record off the dead-letter queue (unacknowledged, on the
  // get channel): (delivery tag, record), oldest first.
  caf::error
  get_dead_letters(std::vector<std::pair<uint64_t, std::string>>& out) {
    if (auto err = revive())
      return err;
    if (auto err = declare_dead_letters())
      return err;
    for (;;) {
      auto d = conn_.get(dead_letters_queue);
      if (!d)
        return d.error();
      if (!*d)
        break; // get-empty
      out.emplace_back((*d)->delivery_tag, std::move((*d)->body));
    }
    return {};
  }

  // Gives every record still held on the get channel back to its queue.
  caf::error return_gotten(size_t count) {
    if (count == 0)
      return {};
    return conn_.nack(amqp_connection::get_channel, 0, true, true);
  }

  std::string url_;
  amqp_connection conn_;
  /// Distinguishes this connection's delivery tags from earlier ones.
  std::string id_;
  std::unordered_set<std::string> declared_;
  bool dead_letters_declared_ = false;
  /// Consumer tag -> queue, and the queues consumed.
  std::unordered_map<std::string, std::string> consumers_;
  std::unordered_set<std::string> consuming_;
  /// The basic.qos in force on the work channel.
  bool prefetch_set_ = false;
  bool prefetch_global_ = false;
  /// Received, not handed out yet (in arrival order).
  std::deque<pending_delivery> pending_;
  /// Handed out by fetch and not acknowledged: tag -> queue.
  std::map<uint64_t, std::string> held_;
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

} // namespace

caf::expected<std::unique_ptr<broker>>
make_amqp_broker(std::string_view url, std::chrono::milliseconds timeout) {
  auto ep = parse_amqp_url(url);
  if (!ep)
    return ep.error();
  auto conn = amqp_connection::connect(*ep, timeout);
  if (!conn)
    return conn.error();
  return std::unique_ptr<broker>{
    std::make_unique<rabbitmq_broker>(std::string{url}, std::move(*conn))};
}

} // namespace vigil
