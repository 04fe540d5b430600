// The RabbitMQ broker: the connection, publishing, consuming and acks (see
// broker_amqp.hpp for the whole design; the topology and the dead letters
// have files of their own).

#include "actors/backends/broker_amqp.hpp"

#include <algorithm>
#include <charconv>

#include "adapters/amqp_message.hpp"
#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

constexpr std::chrono::milliseconds first_wait_after_consume{20};
constexpr std::chrono::milliseconds first_wait{1};
/// Events handled per non-blocking service call (bounds its time).
constexpr size_t max_service_events = 4096;

} // namespace

rabbitmq_broker::rabbitmq_broker(std::string url, amqp_connection conn)
  : url_(std::move(url)),
    conn_(std::move(conn)),
    id_(new_uuid4().substr(0, 8)) {
  // nop
}

std::string rabbitmq_broker::describe() const {
  return mask_url(url_);
}

caf::error rabbitmq_broker::publish(const std::vector<outgoing_task>& batch) {
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
    auto props = make_amqp_properties(out.msg, null_headers::drop);
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

caf::error rabbitmq_broker::push_raw(std::string_view queue,
                                     std::string_view envelope) {
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

caf::error rabbitmq_broker::fetch(const std::vector<std::string>& queues,
                                  size_t max, std::vector<raw_delivery>& out) {
  if (!conn_.ok())
    return conn_.broken_error();
  // Cancelled queues first, so that limit_prefetch counts what is left.
  if (auto err = stop_consuming_others(queues))
    return err;
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
  if (unchecked_waiting_)
    if (auto err = check_redelivered())
      return err;
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
    if (unchecked_waiting_)
      if (auto err = check_redelivered())
        return err;
    auto n = take_pending(queues, max - taken, out);
    if (n > 0 && taken == 0)
      deadline = steady::now();
    taken += n;
  }
  return {};
}

caf::error rabbitmq_broker::ack(const std::vector<std::string>& tags) {
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
  std::vector<std::string> markers;
  for (auto n : nums) {
    auto i = held_.find(n);
    if (!i->second.marker.empty())
      markers.push_back(std::move(i->second.marker));
    held_.erase(i);
    outstanding_.erase(n);
  }
  return delete_markers(markers);
}

caf::error rabbitmq_broker::requeue(const std::vector<std::string>& tags) {
  auto n = give_back(tags, true);
  return n ? caf::error{} : n.error();
}

caf::expected<size_t>
rabbitmq_broker::give_back(const std::vector<std::string>& tags, bool clean) {
  if (tags.empty())
    return size_t{0};
  if (!conn_.ok())
    return conn_.broken_error();
  auto nums = held_tags(tags);
  if (nums.empty())
    return size_t{0};
  std::unordered_set<std::string> queues;
  std::vector<std::string> markers;
  for (auto n : nums) {
    auto& h = held_[n];
    queues.insert(h.queue);
    if (clean && !h.marker.empty())
      markers.push_back(std::move(h.marker));
  }
  // A clean give-back: the marker goes first, so that the redelivery
  // keeps the count (a crash before the reject only counts one too many).
  if (auto err = delete_markers(markers))
    return err;
  // Stop consuming these queues (a fetch starts again), so that nothing
  // pushed to us is still on its way: everything received but not handed
  // out goes back too, and RabbitMQ requeues each message at its original
  // position, so the queue's order survives (the requeued ones come first
  // again, as on the other backends).
  if (auto err = cancel_consumers(queues))
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
  return nums.size();
}

caf::expected<size_t>
rabbitmq_broker::restore_expired(std::chrono::duration<double>) {
  // RabbitMQ redelivers what a closed connection held; nothing to sweep.
  // The consumer calls this periodically: read what arrived and send a
  // heartbeat if one is due, even while it is too busy to fetch.
  if (!conn_.ok())
    return conn_.broken_error();
  if (auto err = service())
    return err;
  return size_t{0};
}

caf::expected<size_t> rabbitmq_broker::queue_length(std::string_view queue) {
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

caf::expected<size_t> rabbitmq_broker::unacked_count() {
  if (!conn_.ok())
    return conn_.broken_error();
  return held_.size();
}

// -- connection ---------------------------------------------------------------

caf::error rabbitmq_broker::revive() {
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
  cancelled_.clear();
  prefetch_set_ = false;
  prefetch_global_ = false;
  outstanding_.clear();
  next_seq_ = 1;
  unconfirmed_.clear();
  nacked_ = 0;
  returned_ = 0;
  return {};
}

// -- consuming and publishing -------------------------------------------------

caf::error rabbitmq_broker::consume(const std::string& queue) {
  if (auto err = declare(queue))
    return err;
  auto tag = conn_.consume(queue);
  if (!tag)
    return tag.error();
  consumers_[std::move(*tag)] = queue;
  consuming_.insert(queue);
  return {};
}

caf::error rabbitmq_broker::cancel_consumers(
  const std::unordered_set<std::string>& queues) {
  for (auto i = consumers_.begin(); i != consumers_.end();) {
    if (queues.count(i->second) == 0) {
      ++i;
      continue;
    }
    cancelled_.emplace(i->first, i->second);
    if (auto err = conn_.cancel(i->first))
      return err;
    consuming_.erase(i->second);
    i = consumers_.erase(i);
  }
  // What arrived before the cancel-ok is already read and queued: each
  // pump returns one of those at once, then whatever else is there.
  for (;;) {
    auto got = pump(steady::now());
    if (!got)
      return got.error();
    if (!*got)
      break;
  }
  cancelled_.clear();
  return {};
}

caf::error
rabbitmq_broker::stop_consuming_others(const std::vector<std::string>& keep) {
  std::unordered_set<std::string> dropped;
  for (auto& q : consuming_)
    if (std::find(keep.begin(), keep.end(), q) == keep.end())
      dropped.insert(q);
  if (dropped.empty())
    return {};
  if (auto err = cancel_consumers(dropped))
    return err;
  return hand_back(dropped);
}

caf::error rabbitmq_broker::send(std::string_view queue,
                                 const amqp_properties& props,
                                 std::string_view body) {
  if (auto err = conn_.wait_writable(steady::now() + conn_.timeout()))
    return err;
  if (auto err = conn_.publish("", queue, props, body, true))
    return err;
  unconfirmed_.insert(next_seq_++);
  return {};
}

caf::error rabbitmq_broker::wait_confirms() {
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

void rabbitmq_broker::on_confirm(uint64_t tag, bool multiple, bool nack) {
  if (multiple) {
    auto end = unconfirmed_.upper_bound(tag);
    if (nack)
      nacked_ += static_cast<size_t>(std::distance(unconfirmed_.begin(), end));
    unconfirmed_.erase(unconfirmed_.begin(), end);
  } else if (unconfirmed_.erase(tag) > 0 && nack) {
    ++nacked_;
  }
}

// -- receiving ----------------------------------------------------------------

caf::expected<bool> rabbitmq_broker::pump(steady::time_point deadline) {
  auto ev = conn_.next_event(deadline);
  if (!ev)
    return ev.error();
  if (!*ev)
    return false;
  if (auto err = std::visit([this](auto& x) { return on_event(x); }, **ev))
    return err;
  return true;
}

caf::error rabbitmq_broker::service() {
  for (size_t i = 0; i < max_service_events; ++i) {
    auto got = pump(steady::now());
    if (!got)
      return got.error();
    if (!*got)
      break;
  }
  return {};
}

caf::error rabbitmq_broker::on_event(amqp_delivery& d) {
  pending_delivery p;
  p.tag = d.delivery_tag;
  p.queue = d.routing_key;
  if (auto i = consumers_.find(d.consumer_tag); i != consumers_.end())
    p.queue = i->second;
  else if (auto j = cancelled_.find(d.consumer_tag); j != cancelled_.end())
    p.queue = j->second;
  bool again = read_count(d, p);
  p.envelope = kombu_envelope_from_amqp(d.properties, d.body, d.exchange,
                                        d.routing_key, tag_text(p.tag),
                                        d.redelivered);
  if (again) {
    p.unchecked = std::make_unique<amqp_delivery>(std::move(d));
    unchecked_waiting_ = true;
  }
  outstanding_.insert(p.tag);
  pending_.push_back(std::move(p));
  return {};
}

caf::error rabbitmq_broker::on_event(const amqp_confirm& c) {
  on_confirm(c.delivery_tag, c.multiple, c.nack);
  return {};
}

caf::error rabbitmq_broker::on_event(const amqp_returned&) {
  // Unroutable (mandatory); the confirm comes after it. Declare every
  // queue again before the next publish.
  ++returned_;
  declared_.clear();
  return {};
}

caf::error rabbitmq_broker::on_event(const amqp_cancelled& c) {
  // The queue was deleted: consume (and declare) it again next time.
  auto i = consumers_.find(c.consumer_tag);
  if (i != consumers_.end()) {
    consuming_.erase(i->second);
    declared_.erase(i->second);
    consumers_.erase(i);
  }
  return {};
}

caf::error rabbitmq_broker::on_event(const amqp_closed&) {
  // The admin channel, reopened: the connection carries on.
  return {};
}

size_t rabbitmq_broker::take_pending(const std::vector<std::string>& queues,
                                     size_t max,
                                     std::vector<raw_delivery>& out) {
  size_t n = 0;
  for (auto i = pending_.begin(); i != pending_.end() && n < max;) {
    if (i->unchecked
        || std::find(queues.begin(), queues.end(), i->queue) == queues.end()) {
      ++i;
      continue;
    }
    held_.emplace(i->tag, held_delivery{i->queue, i->failed,
                                        std::move(i->key), {}});
    out.push_back(raw_delivery{i->queue, tag_text(i->tag),
                               std::move(i->envelope), i->failed});
    i = pending_.erase(i);
    ++n;
  }
  return n;
}

caf::error rabbitmq_broker::reject(uint64_t tag) {
  if (auto err = conn_.reject(amqp_connection::work_channel, tag, true))
    return err;
  outstanding_.erase(tag);
  return {};
}

// -- tags ---------------------------------------------------------------------

std::string rabbitmq_broker::tag_text(uint64_t tag) const {
  return std::to_string(tag) + "@" + id_;
}

std::vector<uint64_t>
rabbitmq_broker::held_tags(const std::vector<std::string>& tags) const {
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
