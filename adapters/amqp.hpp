#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "adapters/amqp_types.hpp"

// rabbitmq-c's connection state and memory pool, kept by pointer: includers
// never see <amqp.h>.
struct amqp_connection_state_t_;
struct amqp_pool_t_;

namespace vigil {

/// Where a RabbitMQ server is, parsed from
/// `amqp://[user[:password]@]host[:port][/vhost][?prefetch=N&heartbeat=S]`.
struct amqp_endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 5672;
  std::string username = "guest";
  std::string password = "guest";
  /// URL-decoded ("%2F" is "/"); an empty path means "/", as in kombu.
  std::string vhost = "/";
  /// basic.qos prefetch count of the consuming channel (global, as kombu).
  uint16_t prefetch = 256;
  /// Heartbeat interval in seconds (0 = none).
  uint16_t heartbeat = 30;
};

/// Parses an amqp:// URL; the error names what is wrong, never the password.
caf::expected<amqp_endpoint> parse_amqp_url(std::string_view url);

/// Renders an endpoint for logs: "amqp://guest@127.0.0.1:5672/%2F" (no
/// password).
std::string to_string(const amqp_endpoint& ep);

/// One rabbitmq-c connection with bounded timeouts, and its three channels:
/// `work_channel` (publisher confirms, prefetch, consumers, acks),
/// `admin_channel` (declarations) and `get_channel` (basic.get), so that a
/// channel error a declaration provokes (404 on a passive declare, 406 on a
/// queue declared with other arguments) never costs the other channels
/// their unacknowledged deliveries. Everything goes in and out as vigil's
/// own values (amqp_types.hpp). Not thread-safe: each thread owns its own.
/// After a connection-level error or a timeout the connection is broken
/// (`ok()` is false) and must be replaced; every call then fails with
/// errc::connection_failed.
class amqp_connection {
public:
  static constexpr uint16_t work_channel = 1;
  static constexpr uint16_t admin_channel = 2;
  static constexpr uint16_t get_channel = 3;

  amqp_connection(amqp_connection&&) noexcept;
  amqp_connection& operator=(amqp_connection&&) noexcept;
  ~amqp_connection();

  /// Opens the socket, logs in (heartbeats on), opens the channels and puts
  /// the work channel in confirm mode; each step is bounded by `timeout`,
  /// which also bounds every later RPC.
  static caf::expected<amqp_connection>
  connect(const amqp_endpoint& ep, std::chrono::milliseconds timeout);

  /// True while the connection is usable.
  bool ok() const { return state_ != nullptr && broken_.empty(); }

  const amqp_endpoint& endpoint() const { return ep_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  /// The error for a broken connection (connection_failed, with the reason).
  caf::error broken_error() const;

  /// Marks the connection broken with `reason` and returns the error.
  caf::error fail(std::string_view reason);

  /// Marks the connection broken because `what` took longer than the
  /// caller waits, and returns errc::timeout.
  caf::error fail_timeout(std::string_view what);

  // -- declarations, on the admin channel (amqp.cpp) -------------------------
  //
  // A declaration the server refuses (channel.close: 404, 406, ...) fails
  // with errc::command_failed and, when `refused` is given, its reply code
  // there; the admin channel is opened again and the connection stays
  // usable. Anything else breaks the connection.

  /// Sets the work channel's prefetch (basic.qos, the endpoint's count).
  /// `global` makes it one limit for every consumer on the channel, as
  /// kombu sets it; per consumer is the same for a single consumer and
  /// costs RabbitMQ much less.
  caf::error set_prefetch(bool global);

  /// exchange.declare of `name` with `type` ("direct", "topic", ...).
  caf::error declare_exchange(std::string_view name, std::string_view type,
                              const amqp_exchange_options& opts = {},
                              uint16_t* refused = nullptr);

  /// queue.declare; returns the ready messages the server counts in it.
  caf::expected<uint32_t> declare_queue(std::string_view name,
                                        const amqp_queue_options& opts = {},
                                        uint16_t* refused = nullptr);

  /// queue.bind of `queue` to `exchange` with `routing_key`.
  caf::error bind_queue(std::string_view queue, std::string_view exchange,
                        std::string_view routing_key,
                        const value_map& arguments = {},
                        uint16_t* refused = nullptr);

  /// Ready messages in `queue` (passive declare); nullopt if there is no
  /// such queue.
  caf::expected<std::optional<uint32_t>> message_count(std::string_view queue);

  /// Deletes `queue` (tests). Deleting a queue that does not exist is fine.
  caf::error delete_queue(std::string_view queue);

  // -- the basic class (amqp_basic.cpp) --------------------------------------

  /// basic.publish on the work channel (so confirmed: the n-th publish of
  /// the connection is confirm tag n). `mandatory` makes the server return
  /// an unroutable message (amqp_returned) instead of dropping it.
  caf::error publish(std::string_view exchange, std::string_view routing_key,
                     const amqp_properties& props, std::string_view body,
                     bool mandatory);

  /// basic.consume of `queue` on the work channel, with manual acks;
  /// returns the consumer tag the server chose.
  caf::expected<std::string> consume(std::string_view queue);

  /// basic.cancel of a consumer on the work channel (waits for cancel-ok;
  /// deliveries pushed before it may still be read).
  caf::error cancel(std::string_view consumer_tag);

  /// basic.ack of `delivery_tag` (and every earlier one if `multiple`).
  caf::error ack(uint16_t channel, uint64_t delivery_tag,
                 bool multiple = false);

  /// basic.reject of one delivery, back to its queue if `requeue`.
  caf::error reject(uint16_t channel, uint64_t delivery_tag, bool requeue);

  /// basic.nack; `delivery_tag` 0 with `multiple` covers every delivery
  /// the channel holds.
  caf::error nack(uint16_t channel, uint64_t delivery_tag, bool multiple,
                  bool requeue);

  /// basic.get of one message from `queue` on the get channel, with manual
  /// ack; nullopt when the queue is empty.
  caf::expected<std::optional<amqp_delivery>> get(std::string_view queue);

  /// The next thing the server sent, waiting until `deadline` at most (a
  /// past deadline polls); nullopt on timeout. Deliveries come with their
  /// content. Heartbeats are sent and checked here. A close that breaks
  /// the connection (connection.close, or a close of the work or get
  /// channel) is answered and comes back as the error; a closed admin
  /// channel is reopened and comes back as amqp_closed.
  caf::expected<std::optional<amqp_event>>
  next_event(std::chrono::steady_clock::time_point deadline);

  // -- the socket (amqp.cpp) -------------------------------------------------

  /// Holds back partial TCP segments (TCP_CORK) while `on`, so that a
  /// batch of small publishes leaves in full segments: RabbitMQ then reads
  /// a batch in a few large chunks instead of one per message, which costs
  /// it about a tenth less CPU per message. Turning it off sends what is
  /// held at once; do so before waiting for an answer.
  void cork(bool on);

  /// Waits until the socket takes more data, so that a publish never blocks
  /// past `deadline` on a server that stopped reading.
  caf::error wait_writable(std::chrono::steady_clock::time_point deadline);

private:
  amqp_connection() = default;
  caf::error open_admin_channel();
  void close();

  /// Marks the connection broken because of `status` (a rabbitmq-c status
  /// code) during `what`, and returns the error.
  caf::error fail(int status, std::string_view what);

  /// Checks the reply of the last RPC on `channel`. A channel exception on
  /// the admin channel is answered and the channel reopened; its reply code
  /// goes to `*server_code` if given. Anything else breaks the connection.
  caf::error check_rpc(uint16_t channel, std::string_view what,
                       uint16_t* server_code = nullptr);

  /// Answers a channel.close (`channel` > 0) or connection.close the
  /// server sent, and returns the error it means; on the admin channel the
  /// channel is reopened and the connection stays usable.
  caf::error on_close(uint16_t channel, uint16_t reply_code,
                      std::string_view reply_text);

  /// Reads the content that follows a basic.deliver, basic.get-ok or
  /// basic.return on `channel` into `out` (properties and body).
  caf::error read_content(uint16_t channel, amqp_delivery& out);

  /// Memory for the rabbitmq-c structures of one call (a publish's
  /// header table), emptied at the start of the next.
  amqp_pool_t_& scratch();

  amqp_connection_state_t_* state_ = nullptr;
  amqp_pool_t_* pool_ = nullptr;
  amqp_endpoint ep_;
  std::chrono::milliseconds timeout_{5000};
  std::string broken_;
};

} // namespace vigil
