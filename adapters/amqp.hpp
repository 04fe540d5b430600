#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <amqp.h>
#include <amqp_framing.h>

#include <caf/error.hpp>
#include <caf/expected.hpp>

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

/// Removes the null entries (and arrays of nulls only, such as an unset
/// `timelimit`) from `props.headers`, in place. Celery 5 workers read every
/// optional header with a default (`shadow` only if present), so a missing
/// null means the same as a present one; RabbitMQ decodes and copies every
/// header of every message between its processes, and six to seven nulls
/// of Celery's seventeen headers cost it about a sixth of its CPU per task.
void drop_null_headers(amqp_basic_properties_t& props);

/// One rabbitmq-c connection with bounded timeouts, and its three channels:
/// `work_channel` (publisher confirms, prefetch, consumers, acks),
/// `admin_channel` (declarations) and `get_channel` (basic.get), so that a
/// channel error a declaration provokes (404 on a passive declare, 406 on a
/// queue declared with other arguments) never costs the other channels
/// their unacknowledged deliveries. Not
/// thread-safe: each thread owns its own. After a connection-level error or
/// a timeout the connection is broken (`ok()` is false) and must be
/// replaced; every call then fails with errc::connection_failed.
class amqp_connection {
public:
  static constexpr amqp_channel_t work_channel = 1;
  static constexpr amqp_channel_t admin_channel = 2;
  static constexpr amqp_channel_t get_channel = 3;

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

  /// The rabbitmq-c handle, for the calls this class does not wrap.
  amqp_connection_state_t native() const { return state_; }

  const amqp_endpoint& endpoint() const { return ep_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  /// The error for a broken connection (connection_failed, with the reason).
  caf::error broken_error() const;

  /// Marks the connection broken because of `status` (a rabbitmq-c status
  /// code) during `what`, and returns the error.
  caf::error fail(int status, std::string_view what);

  /// Marks the connection broken with `reason` and returns the error.
  caf::error fail(std::string_view reason);

  /// Checks the reply of the last RPC on `channel`. A channel exception on
  /// the admin channel is answered and the channel reopened; its reply code
  /// goes to `*server_code` if given. Anything else breaks the connection.
  caf::error check_rpc(amqp_channel_t channel, std::string_view what,
                       int* server_code = nullptr);

  /// Answers a channel.close or connection.close the server sent outside
  /// an RPC, and returns the error it means; on the admin channel the
  /// channel is reopened and the connection stays usable.
  caf::error on_close_method(const amqp_frame_t& frame);

  /// Sets the work channel's prefetch (basic.qos, the endpoint's count).
  /// `global` makes it one limit for every consumer on the channel, as
  /// kombu sets it; per consumer is the same for a single consumer and
  /// costs RabbitMQ much less.
  caf::error set_prefetch(bool global);

  /// Declares `queue` exactly as Celery 5.2 does: a durable direct
  /// exchange named `queue`, a durable, non-exclusive, non-auto-delete
  /// queue without arguments, and a binding with routing key `queue`. A
  /// queue (or exchange) that exists with other arguments is used as it is.
  caf::error declare_celery_queue(std::string_view queue);

  /// Declares a durable queue without an exchange of its own.
  caf::error declare_plain_queue(std::string_view queue);

  /// Ready messages in `queue` (passive declare); nullopt if there is no
  /// such queue.
  caf::expected<std::optional<uint32_t>> message_count(std::string_view queue);

  /// Deletes `queue` (tests). Deleting a queue that does not exist is fine.
  caf::error delete_queue(std::string_view queue);

  /// Reads the next frame, waiting until `deadline` at most (a past
  /// deadline polls); false on timeout. Heartbeats are sent and checked
  /// here.
  caf::expected<bool> next_frame(amqp_frame_t& frame,
                                 std::chrono::steady_clock::time_point deadline);

  /// Reads the content (properties and body) that follows a basic.deliver
  /// or basic.get-ok on `channel`.
  caf::error read_content(amqp_channel_t channel, amqp_message_t& msg);

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

  amqp_connection_state_t state_ = nullptr;
  amqp_endpoint ep_;
  std::chrono::milliseconds timeout_{5000};
  std::string broken_;
};

} // namespace vigil
