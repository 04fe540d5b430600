// The RabbitMQ broker's failed-delivery counts (raw_delivery's
// failed_deliveries, broker::count_delivery, broker::restore_unacked),
// kept in RabbitMQ itself: a message that aborts the whole process leaves
// nothing in memory to count it, and the Celery queues are classic queues
// (quorum queues' x-delivery-count would change the arguments Celery
// declares them with), which keep only the redelivered flag.
//
// The rules, the same counts the Redis broker keeps (broker_redis.cpp):
// - A message carries its count in the header `x-vigil-deliveries`
//   (absent: 0). A first delivery costs nothing more: reading the header.
// - A redelivered message (its holder gave it back, or its connection
//   died) counts at least 1: a holder that died with it in a batch may
//   have been running it. A count already carried is kept, since a
//   message held but not run when its holder died did not kill it.
// - A suspect (count > 0) runs alone. Before it runs, count_delivery
//   declares its run marker, a durable empty queue named after the queue,
//   the task id and the count. If the run kills the process, the message
//   comes back redelivered and its marker is still there: the delivery
//   that finds it publishes a copy with the count raised by one (same
//   body, every property and header, default exchange, routing key the
//   queue) with publisher confirms, and only then acknowledges the
//   original and deletes the marker. A crash in between leaves the
//   original too, counted again: a duplicate, never a loss.
// - An ack, a dead letter or a clean give-back (requeue) deletes the
//   marker; restore_unacked (the worker died, the process lives) keeps it,
//   so the redelivery counts the run.
// Markers expire after a day unused, should a crash leave one behind.
// Whoever republishes a copy moves it to the tail of its queue. The header
// is taken out of what the consumer sees (decoders, retries and dead
// letters never carry it: a replayed dead letter starts afresh); Celery
// workers ignore unknown headers.

#include "actors/backends/broker_amqp.hpp"

#include <algorithm>
#include <unordered_set>

#include "adapters/amqp_message.hpp"
#include "messages/md5.hpp"

namespace vigil {

namespace {

constexpr std::string_view deliveries_header = "x-vigil-deliveries";

/// RabbitMQ's own return count (quorum queues); a copy must not carry it.
constexpr std::string_view delivery_count_header = "x-delivery-count";

constexpr std::string_view marker_prefix = "vigil.running.";

/// A marker nobody used for a day is deleted by RabbitMQ (x-expires).
constexpr int64_t marker_expiry_ms = 24 * 3600 * 1000;

uint32_t to_count(const value& x) {
  if (!x.is_int())
    return 0;
  return static_cast<uint32_t>(std::clamp<int64_t>(x.as_int(), 0,
                                                   UINT32_MAX));
}

// The task id (Celery protocol v2's `id` header, else the correlation or
// message id); the body for a message that has none.
std::string task_key(const amqp_delivery& d) {
  if (d.properties.headers)
    for (auto& [k, v] : *d.properties.headers)
      if (k == "id" && v.is_text() && !v.as_text().empty())
        return v.as_text();
  if (d.properties.correlation_id && !d.properties.correlation_id->empty())
    return *d.properties.correlation_id;
  if (d.properties.message_id && !d.properties.message_id->empty())
    return *d.properties.message_id;
  return d.body;
}

std::string marker_name(std::string_view queue, std::string_view key,
                        uint32_t failed) {
  auto n = std::to_string(failed);
  return std::string{marker_prefix}
         + md5_hex({queue, std::string_view{"\n", 1}, key,
                    std::string_view{"\n", 1}, n});
}

/// Sets the count a copy carries (and drops RabbitMQ's own, which a copy
/// must not carry); 0 leaves it without.
void set_count(amqp_properties& props, uint32_t failed) {
  if (!props.headers && failed == 0)
    return;
  auto& h = props.headers ? *props.headers : props.headers.emplace();
  h.erase(std::remove_if(h.begin(), h.end(),
                         [](auto& kv) {
                           return kv.first == delivery_count_header
                                  || kv.first == deliveries_header;
                         }),
          h.end());
  if (failed > 0)
    h.emplace_back(std::string{deliveries_header}, value{int64_t{failed}});
}

} // namespace

bool rabbitmq_broker::read_count(amqp_delivery& d, pending_delivery& p) {
  uint32_t carried = 0;
  bool again = d.redelivered;
  if (d.properties.headers) {
    auto& h = *d.properties.headers;
    for (auto i = h.begin(); i != h.end(); ++i)
      if (i->first == deliveries_header) {
        carried = to_count(i->second);
        h.erase(i);
        break;
      }
  }
  p.failed = again ? std::max<uint32_t>(carried, 1) : carried;
  if (p.failed > 0)
    p.key = task_key(d);
  return again;
}

caf::error rabbitmq_broker::check_redelivered() {
  unchecked_waiting_ = false;
  // Indices stay valid while confirms are awaited: pump only appends.
  std::vector<size_t> died;
  std::vector<std::string> markers;
  for (size_t i = 0; i < pending_.size(); ++i) {
    auto& p = pending_[i];
    if (!p.unchecked)
      continue;
    auto marker = marker_name(p.queue, p.key, p.failed);
    auto n = conn_.message_count(marker);
    if (!n) {
      unchecked_waiting_ = true;
      return n.error();
    }
    if (!*n) {
      p.unchecked.reset(); // held, or run in a batch: keeps its count
      continue;
    }
    died.push_back(i);
    markers.push_back(std::move(marker));
  }
  if (died.empty())
    return {};
  unchecked_waiting_ = true; // until the copies are confirmed
  for (auto i : died) {
    auto& p = pending_[i];
    auto props = p.unchecked->properties;
    set_count(props, p.failed + 1);
    if (auto err = send(p.queue, props, p.unchecked->body))
      return err;
  }
  if (auto err = wait_confirms())
    return err;
  if (auto err = conn_.wait_writable(steady::now() + conn_.timeout()))
    return err;
  std::unordered_set<uint64_t> counted;
  for (auto i : died) {
    auto tag = pending_[i].tag;
    if (auto err = conn_.ack(amqp_connection::work_channel, tag))
      return err;
    outstanding_.erase(tag);
    counted.insert(tag);
  }
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                [&](const pending_delivery& p) {
                                  return counted.count(p.tag) != 0;
                                }),
                 pending_.end());
  unchecked_waiting_ = std::any_of(pending_.begin(), pending_.end(),
                                   [](auto& p) { return p.unchecked != nullptr; });
  return delete_markers(markers);
}

caf::error
rabbitmq_broker::hand_back(const std::unordered_set<std::string>& queues) {
  if (unchecked_waiting_)
    if (auto err = check_redelivered())
      return err;
  std::unordered_set<uint64_t> copied;
  for (auto& p : pending_) {
    if (queues.count(p.queue) == 0)
      continue;
    amqp_properties props;
    std::string body;
    if (p.unchecked) { // arrived while the check above waited
      props = p.unchecked->properties;
      body = p.unchecked->body;
    } else {
      kombu_envelope_to_amqp(p.envelope, props, body);
    }
    set_count(props, p.failed);
    if (auto err = send(p.queue, props, body))
      return err;
    copied.insert(p.tag);
  }
  if (copied.empty())
    return {};
  // Only confirmed copies let the originals go: a failure in between
  // leaves both (a duplicate, never a loss).
  if (auto err = wait_confirms())
    return err;
  if (auto err = conn_.wait_writable(steady::now() + conn_.timeout()))
    return err;
  for (auto tag : copied) {
    if (auto err = conn_.ack(amqp_connection::work_channel, tag))
      return err;
    outstanding_.erase(tag);
  }
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                [&](const pending_delivery& p) {
                                  return copied.count(p.tag) != 0;
                                }),
                 pending_.end());
  unchecked_waiting_ = std::any_of(pending_.begin(), pending_.end(),
                                   [](auto& p) { return p.unchecked != nullptr; });
  return {};
}

caf::expected<uint32_t>
rabbitmq_broker::count_delivery(const std::string& tag) {
  if (!conn_.ok())
    return conn_.broken_error();
  auto nums = held_tags({tag});
  if (nums.empty())
    return uint32_t{1};
  auto& h = held_[nums.front()];
  // Not a suspect: a death while it runs counts 1 anyway (redelivered).
  if (h.failed == 0)
    return uint32_t{1};
  if (h.marker.empty()) {
    auto name = marker_name(h.queue, h.key, h.failed);
    amqp_queue_options opts;
    opts.arguments.emplace_back("x-expires", value{marker_expiry_ms});
    auto declared = conn_.declare_queue(name, opts);
    if (!declared)
      return declared.error();
    h.marker = std::move(name);
  }
  return h.failed + 1;
}

caf::expected<size_t>
rabbitmq_broker::restore_unacked(const std::vector<std::string>& tags) {
  // The markers stay: whoever receives a message whose suspect run it
  // marks counts that run.
  return give_back(tags, false);
}

caf::error
rabbitmq_broker::delete_markers(const std::vector<std::string>& markers) {
  for (auto& m : markers)
    if (auto err = conn_.delete_queue(m))
      return err;
  return {};
}

} // namespace vigil
