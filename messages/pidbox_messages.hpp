#pragma once

// The wire shapes of kombu's pidbox (Celery's remote control): a request
// broadcast on the `celery.pidbox` fanout and a reply routed to the client's
// `reply.celery.pidbox` queue, as the Redis transport wraps them (a kombu
// envelope) and as AMQP carries them (the bare body).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "messages/value.hpp"

namespace vigil {

/// One remote-control request, as kombu's Mailbox._publish sends it.
struct pidbox_request {
  std::string method;
  /// The command's keyword arguments (a map; empty when none were sent).
  value arguments = value_map{};
  /// Hostnames the request is for; none means every worker.
  std::optional<std::vector<std::string>> destination;
  /// Where the reply goes; empty exchange means a cast (no reply).
  std::string reply_exchange;
  std::string reply_routing_key;
  std::string ticket;
  /// The body was msgpack (the client's task_serializer); replies follow.
  bool msgpack = false;
  /// The sender's Lamport clock (headers.clock), 0 if none.
  int64_t clock = 0;
};

/// Decodes a kombu Redis envelope carrying a pidbox request (JSON body,
/// base64 or plain). Fails with errc::malformed, naming the field.
caf::expected<pidbox_request> decode_pidbox_envelope(std::string_view json);

/// Decodes a pidbox request body as an AMQP message carries it (raw bytes,
/// `content_type` JSON or msgpack; empty means JSON); `clock` is the
/// message's `clock` header (0 if none). Fails with errc::malformed.
caf::expected<pidbox_request> decode_pidbox_body(std::string_view content_type,
                                                 std::string_view raw,
                                                 int64_t clock);

/// The body of the reply `{hostname: reply}`, JSON or msgpack as the
/// request was (an AMQP reply carries it as is).
std::string encode_pidbox_reply_body(std::string_view hostname,
                                     const value& reply, bool msgpack);

/// True when `req` is for `hostname` (no destination, or listed in it).
bool pidbox_addressed_to(const pidbox_request& req, std::string_view hostname);

/// Encodes the reply `{hostname: reply}` as the kombu Redis envelope a
/// Celery client's collector reads (JSON or msgpack body, base64, `ticket`
/// header).
std::string encode_pidbox_reply(std::string_view hostname, const value& reply,
                                std::string_view exchange,
                                std::string_view routing_key,
                                std::string_view ticket, int64_t clock,
                                bool msgpack);

/// The Redis channel kombu publishes a fanout exchange's messages on:
/// `/{db}.{exchange}` (fanout_prefix on, no routing key).
std::string kombu_fanout_channel(int db, std::string_view exchange);

/// The queues a direct exchange's binding table (`_kombu.binding.<x>`
/// members, "routing_key\x06\x16pattern\x06\x16queue") routes `key` to.
std::vector<std::string>
kombu_direct_targets(const std::vector<std::string>& members,
                     std::string_view key);

} // namespace vigil
