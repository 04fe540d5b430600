// The RabbitMQ broker's dead letters: JSON records (broker.hpp's to_json)
// on a durable queue of their own, published with confirms before the
// deliveries they replace are acknowledged. Listing and replaying take
// every record off the queue on the get channel and give back, in their
// original places, those that stay.

#include "actors/backends/broker_amqp.hpp"

#include <algorithm>

#include "adapters/amqp_message.hpp"

namespace vigil {

namespace {

// Dead-letter records are JSON text, persistent.
amqp_properties record_properties() {
  amqp_properties props;
  props.content_type = "application/json";
  props.content_encoding = "utf-8";
  props.delivery_mode = 2;
  return props;
}

} // namespace

caf::error
rabbitmq_broker::dead_letter_batch(const std::vector<dead_letter>& letters,
                                   const std::vector<std::string>& tags) {
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

caf::expected<std::vector<dead_letter>> rabbitmq_broker::list_dead_letters() {
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

caf::expected<size_t>
rabbitmq_broker::replay_dead_letters(std::string_view id) {
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

caf::error rabbitmq_broker::declare_dead_letters() {
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

caf::error rabbitmq_broker::get_dead_letters(
  std::vector<std::pair<uint64_t, std::string>>& out) {
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

caf::error rabbitmq_broker::return_gotten(size_t count) {
  if (count == 0)
    return {};
  return conn_.nack(amqp_connection::get_channel, 0, true, true);
}

} // namespace vigil
