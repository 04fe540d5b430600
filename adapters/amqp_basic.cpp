// amqp_connection's basic class: publishing, consuming, acknowledging, and
// reading what the server sends, all as vigil's own values
// (amqp_types.hpp).

#include "adapters/amqp.hpp"

#include <utility>
#include <variant>

#include <amqp.h>
#include <amqp_framing.h>

#include "adapters/amqp_properties.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

std::string_view to_view(amqp_bytes_t b) {
  return b.len == 0 ? std::string_view{}
                    : std::string_view{static_cast<const char*>(b.bytes), b.len};
}

amqp_bytes_t bytes_of(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

timeval to_timeval(std::chrono::microseconds t) {
  if (t.count() < 0)
    t = std::chrono::microseconds{0};
  timeval tv;
  tv.tv_sec = static_cast<time_t>(t.count() / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(t.count() % 1000000);
  return tv;
}

} // namespace

caf::error amqp_connection::publish(std::string_view exchange,
                                    std::string_view routing_key,
                                    const amqp_properties& props,
                                    std::string_view body, bool mandatory) {
  if (!ok())
    return broken_error();
  amqp_basic_properties_t native;
  to_native_properties(props, scratch(), native);
  auto rc = amqp_basic_publish(state_, work_channel, bytes_of(exchange),
                               bytes_of(routing_key), mandatory ? 1 : 0, 0,
                               &native, bytes_of(body));
  if (rc != AMQP_STATUS_OK)
    return fail(rc, "basic.publish");
  return {};
}

caf::expected<std::string> amqp_connection::consume(std::string_view queue) {
  if (!ok())
    return broken_error();
  auto* r = amqp_basic_consume(state_, work_channel, bytes_of(queue),
                               amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  if (auto err = check_rpc(work_channel, "basic.consume"))
    return err;
  std::string tag{to_view(r->consumer_tag)};
  amqp_maybe_release_buffers(state_);
  return tag;
}

caf::error amqp_connection::cancel(std::string_view consumer_tag) {
  if (!ok())
    return broken_error();
  amqp_basic_cancel(state_, work_channel, bytes_of(consumer_tag));
  return check_rpc(work_channel, "basic.cancel");
}

caf::error amqp_connection::ack(uint16_t channel, uint64_t delivery_tag,
                                bool multiple) {
  if (!ok())
    return broken_error();
  if (auto rc = amqp_basic_ack(state_, channel, delivery_tag,
                               multiple ? 1 : 0);
      rc != AMQP_STATUS_OK)
    return fail(rc, "basic.ack");
  return {};
}

caf::error amqp_connection::reject(uint16_t channel, uint64_t delivery_tag,
                                   bool requeue) {
  if (!ok())
    return broken_error();
  if (auto rc = amqp_basic_reject(state_, channel, delivery_tag,
                                  requeue ? 1 : 0);
      rc != AMQP_STATUS_OK)
    return fail(rc, "basic.reject");
  return {};
}

caf::error amqp_connection::nack(uint16_t channel, uint64_t delivery_tag,
                                 bool multiple, bool requeue) {
  if (!ok())
    return broken_error();
  if (auto rc = amqp_basic_nack(state_, channel, delivery_tag,
                                multiple ? 1 : 0, requeue ? 1 : 0);
      rc != AMQP_STATUS_OK)
    return fail(rc, "basic.nack");
  return {};
}

caf::expected<std::optional<amqp_delivery>>
amqp_connection::get(std::string_view queue) {
  if (!ok())
    return broken_error();
  auto r = amqp_basic_get(state_, get_channel, bytes_of(queue), 0);
  if (auto err = check_rpc(get_channel, "basic.get"))
    return err;
  if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) {
    amqp_maybe_release_buffers(state_);
    return std::optional<amqp_delivery>{}; // get-empty
  }
  auto* m = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
  amqp_delivery d;
  d.channel = get_channel;
  d.delivery_tag = m->delivery_tag;
  d.redelivered = m->redelivered != 0;
  d.exchange = std::string{to_view(m->exchange)};
  d.routing_key = std::string{to_view(m->routing_key)};
  if (auto err = read_content(get_channel, d))
    return err;
  amqp_maybe_release_buffers(state_);
  return std::optional<amqp_delivery>{std::move(d)};
}

caf::error amqp_connection::read_content(uint16_t channel,
                                         amqp_delivery& out) {
  if (!ok())
    return broken_error();
  amqp_message_t msg;
  auto r = amqp_read_message(state_, channel, &msg, 0);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) {
    out.properties = from_native_properties(msg.properties);
    out.body.assign(to_view(msg.body));
    amqp_destroy_message(&msg);
    return {};
  }
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
    return fail(r.library_error, "reading a message");
  return fail("unexpected frame while reading a message");
}

caf::expected<std::optional<amqp_event>>
amqp_connection::next_event(std::chrono::steady_clock::time_point deadline) {
  using result = std::optional<amqp_event>;
  for (;;) {
    if (!ok())
      return broken_error();
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
      deadline - std::chrono::steady_clock::now());
    auto tv = to_timeval(left);
    amqp_frame_t frame;
    auto rc = amqp_simple_wait_frame_noblock(state_, &frame, &tv);
    if (rc == AMQP_STATUS_TIMEOUT)
      return result{};
    if (rc != AMQP_STATUS_OK)
      return fail(rc, "reading from the server");
    if (frame.frame_type != AMQP_FRAME_METHOD) {
      amqp_maybe_release_buffers(state_);
      continue;
    }
    auto* decoded = frame.payload.method.decoded;
    result ev;
    switch (frame.payload.method.id) {
      case AMQP_BASIC_DELIVER_METHOD: {
        auto* m = static_cast<amqp_basic_deliver_t*>(decoded);
        // Built in place: a delivery is moved once, into the result.
        auto& d = std::get<amqp_delivery>(
          ev.emplace(std::in_place_type<amqp_delivery>));
        d.channel = frame.channel;
        d.consumer_tag = std::string{to_view(m->consumer_tag)};
        d.delivery_tag = m->delivery_tag;
        d.redelivered = m->redelivered != 0;
        d.exchange = std::string{to_view(m->exchange)};
        d.routing_key = std::string{to_view(m->routing_key)};
        if (auto err = read_content(frame.channel, d))
          return err;
        break;
      }
      case AMQP_BASIC_ACK_METHOD: {
        auto* m = static_cast<amqp_basic_ack_t*>(decoded);
        ev = amqp_confirm{m->delivery_tag, m->multiple != 0, false};
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        auto* m = static_cast<amqp_basic_nack_t*>(decoded);
        ev = amqp_confirm{m->delivery_tag, m->multiple != 0, true};
        break;
      }
      case AMQP_BASIC_RETURN_METHOD: {
        // The content follows; nobody needs it back.
        auto* m = static_cast<amqp_basic_return_t*>(decoded);
        amqp_returned ret{m->reply_code, std::string{to_view(m->reply_text)},
                          std::string{to_view(m->exchange)},
                          std::string{to_view(m->routing_key)}};
        amqp_delivery content;
        if (auto err = read_content(frame.channel, content))
          return err;
        ev = std::move(ret);
        break;
      }
      case AMQP_BASIC_CANCEL_METHOD: {
        auto* m = static_cast<amqp_basic_cancel_t*>(decoded);
        ev = amqp_cancelled{std::string{to_view(m->consumer_tag)}};
        break;
      }
      case AMQP_CHANNEL_CLOSE_METHOD: {
        auto* m = static_cast<amqp_channel_close_t*>(decoded);
        amqp_closed closed{frame.channel, m->reply_code,
                           std::string{to_view(m->reply_text)}};
        auto err = on_close(frame.channel, closed.reply_code,
                            closed.reply_text);
        if (!ok())
          return err;
        ev = std::move(closed);
        break;
      }
      case AMQP_CONNECTION_CLOSE_METHOD: {
        auto* m = static_cast<amqp_connection_close_t*>(decoded);
        return on_close(0, m->reply_code, to_view(m->reply_text));
      }
      default:
        break;
    }
    amqp_maybe_release_buffers(state_);
    if (ev)
      return ev;
  }
}

} // namespace vigil
