#pragma once

#include <cstddef>
#include <string>

#include "config/config.hpp"

namespace vigil {

/// Options of `vigil bench amqp-ceiling`.
struct bench_amqp_ceiling_options {
  /// RabbitMQ to measure ("" = broker.url, which must be amqp://).
  std::string broker_url;
  size_t messages = 100000;
  /// Bytes per message (properties + body); 0 = the size of one of
  /// `vigil bench tasks`' task messages.
  size_t size = 0;
  /// Messages published between two waits for confirms.
  size_t confirm_batch = 500;
  /// Confirms a wait leaves outstanding: 0 waits for every confirm, as
  /// vigil's publish does; a batch keeps one batch in flight meanwhile.
  size_t confirm_window = 0;
  /// basic.qos prefetch of the consumer.
  size_t prefetch = 2000;
  /// Deliveries acknowledged by one multiple ack at most.
  size_t ack_batch = 500;
  /// Publish each batch in full TCP segments (TCP_CORK), as vigil does.
  bool cork = true;
  /// Send vigil's own properties and Celery header table instead of a bare
  /// delivery mode (the body is padded to the same total size either way).
  bool task_headers = false;
  bool json = false;
};

/// `vigil bench amqp-ceiling`: the broker's own ceiling for vigil's traffic.
/// One rabbitmq-c connection publishes persistent messages to a fresh
/// durable queue with publisher confirms (waiting per batch); another
/// consumes them with basic.qos prefetch and manual multiple acks, doing no
/// task work. Both sides use what vigil's broker uses to go fast (corked
/// batches, multiple acks), so the ceiling is the broker's, not a slow
/// client's. Prints msgs/s from the first publish to the last ack, and
/// latency percentiles (publish to delivery), as text or one JSON object
/// with the field names of `vigil bench tasks`.
int bench_amqp_ceiling_command(const config& cfg,
                               const bench_amqp_ceiling_options& opts);

} // namespace vigil
