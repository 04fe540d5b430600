#pragma once

// The typed values the AMQP adapter hands out and takes: message
// properties, declaration options, and what the server sends on its own
// (deliveries, publisher confirms, returns, cancels, closed channels).
// Nothing here is rabbitmq-c's: the adapter maps these to and from its
// structures (amqp_properties.cpp), so that code above adapters/ never sees
// <amqp.h>.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "messages/value.hpp"

namespace vigil {

/// The properties of an AMQP 0-9-1 basic message, each present or absent on
/// the wire (absent ones are left out of the content header).
struct amqp_properties {
  std::optional<std::string> content_type;
  std::optional<std::string> content_encoding;
  /// The application headers in wire order. Written with the field types
  /// py-amqp reads back as the same type (see amqp_properties.hpp).
  std::optional<value_map> headers;
  /// 2: persistent.
  std::optional<uint8_t> delivery_mode;
  std::optional<uint8_t> priority;
  std::optional<std::string> correlation_id;
  std::optional<std::string> reply_to;
  std::optional<std::string> expiration;
  std::optional<std::string> message_id;
  /// Seconds since the Unix epoch.
  std::optional<uint64_t> timestamp;
  std::optional<std::string> type;
  std::optional<std::string> user_id;
  std::optional<std::string> app_id;
  std::optional<std::string> cluster_id;
};

/// A message the server handed to us: pushed to a consumer (basic.deliver)
/// or fetched (basic.get-ok), with its content.
struct amqp_delivery {
  /// The channel it arrived on; its tag is valid on that channel only.
  uint16_t channel = 0;
  /// The consumer it was pushed to ("" for basic.get).
  std::string consumer_tag;
  uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
  amqp_properties properties;
  std::string body;
};

/// A publisher confirm on a channel in confirm mode: basic.ack, or
/// basic.nack when the server refused the message(s).
struct amqp_confirm {
  /// The publish sequence number (1 for the first publish on the channel).
  uint64_t delivery_tag = 0;
  /// Covers every publish up to and including `delivery_tag`.
  bool multiple = false;
  bool nack = false;
};

/// basic.return: a mandatory publish the server could not route (its
/// content is read and dropped). Its confirm still follows.
struct amqp_returned {
  uint16_t reply_code = 0;
  std::string reply_text;
  std::string exchange;
  std::string routing_key;
};

/// basic.cancel from the server: the consumer's queue went away.
struct amqp_cancelled {
  std::string consumer_tag;
};

/// channel.close from the server on the admin channel, answered; the
/// adapter has opened the channel again and the connection carries on.
/// (Every other close, connection.close included, breaks the connection
/// and comes back as the reader's error instead.)
struct amqp_closed {
  uint16_t channel = 0;
  uint16_t reply_code = 0;
  std::string reply_text;
};

/// Anything the server sent that a reader acts on.
using amqp_event = std::variant<amqp_delivery, amqp_confirm, amqp_returned,
                                amqp_cancelled, amqp_closed>;

/// How to declare a queue (queue.declare); `arguments` are the x-arguments
/// (x-max-priority, x-message-ttl, ...), written like header values.
struct amqp_queue_options {
  /// Only checks that the queue exists (404 if not); nothing is created.
  bool passive = false;
  bool durable = true;
  bool exclusive = false;
  bool auto_delete = false;
  value_map arguments;
};

/// How to declare an exchange (exchange.declare).
struct amqp_exchange_options {
  bool passive = false;
  bool durable = true;
  bool auto_delete = false;
  bool internal = false;
  value_map arguments;
};

} // namespace vigil
