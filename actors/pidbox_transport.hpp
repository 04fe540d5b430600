#pragma once

// How the remote-control actor meets its broker: where kombu's pidbox
// requests arrive, where replies and Celery's events go. One implementation
// per broker (pidbox_redis.cpp, pidbox_amqp.cpp); every call blocks, bounded
// by the io timeout, so only a detached actor uses them.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "messages/pidbox_messages.hpp"
#include "messages/task_events.hpp"
#include "messages/value.hpp"

namespace vigil {

/// One broker's side of the pidbox and the event stream for one node.
class pidbox_transport {
public:
  virtual ~pidbox_transport() = default;

  /// Connects and starts listening on the node's pidbox if not yet done;
  /// a no-op while connected.
  virtual caf::error connect() = 0;

  /// Drops the connection(s); the next `connect` makes new ones.
  virtual void reset() = 0;

  /// Waits at most `wait` for requests and hands each one (or the reason it
  /// could not be decoded) to `on_request`, a bounded number per call. An
  /// error means the connection is lost (call reset).
  virtual caf::error
  poll(std::chrono::milliseconds wait,
       const std::function<void(caf::expected<pidbox_request>)>& on_request)
    = 0;

  /// Routes `reply` for `req` (`{hostname: reply}`) to the client's reply
  /// queue through `req.reply_exchange` and `req.reply_routing_key`.
  virtual caf::error reply(const pidbox_request& req,
                           std::string_view hostname, const value& reply,
                           int64_t clock)
    = 0;

  /// Publishes one Celery event of `type` (fields complete but for the
  /// ones celery_event_body adds) on the `celeryev` exchange.
  virtual caf::error publish_event(std::string_view type, value_map fields,
                                   std::string_view hostname, int64_t clock,
                                   double timestamp)
    = 0;

  /// Publishes a batch of task events (each with the next `clock`) on the
  /// `celeryev` exchange as a Celery worker does: lists of up to 24 events
  /// with the routing key task.multi.
  virtual caf::error publish_events(std::vector<task_event>& events,
                                    std::string_view hostname,
                                    int64_t& clock)
    = 0;

  /// `stats`' broker section: transport, hostname, port, virtual_host.
  virtual value broker_info() const = 0;

  /// For logs (no password).
  virtual std::string describe() const = 0;
};

/// The transport for `broker_url` (redis:// or amqp://), or an error naming
/// what is wrong with the URL. `hostname` names the AMQP pidbox queue.
caf::expected<std::unique_ptr<pidbox_transport>>
make_pidbox_transport(std::string_view broker_url, std::string_view hostname,
                      std::chrono::milliseconds io_timeout);

/// Publishes Celery's task-sent event for `msg`, sent to `queue`, on
/// `broker_url`'s `celeryev` exchange as producer `hostname` (what a Celery
/// client does with task_send_sent_event). Connects for it, bounded by
/// `io_timeout`.
caf::error publish_task_sent(std::string_view broker_url,
                             std::string_view hostname,
                             const task_message& msg, std::string_view queue,
                             std::chrono::milliseconds io_timeout);

/// kombu's pidbox on Redis: PSUBSCRIBE to the `celery.pidbox` fanout
/// channel, replies LPUSHed to the queues bound to the reply exchange.
caf::expected<std::unique_ptr<pidbox_transport>>
make_redis_pidbox(std::string_view broker_url,
                  std::chrono::milliseconds io_timeout);

/// kombu's pidbox on RabbitMQ: the `celery.pidbox` fanout exchange and the
/// node's `<hostname>.celery.pidbox` queue (auto-delete, Celery's
/// x-expires and x-message-ttl), replies published on the
/// `reply.celery.pidbox` direct exchange, events on the `celeryev` topic
/// exchange.
caf::expected<std::unique_ptr<pidbox_transport>>
make_amqp_pidbox(std::string_view broker_url, std::string_view hostname,
                 std::chrono::milliseconds io_timeout);

} // namespace vigil
