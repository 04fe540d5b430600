// kombu's pidbox and Celery's events on RabbitMQ (see pidbox_transport.hpp):
// one connection of the node's own; the pidbox queue is consumed on the
// work channel, replies and events are published on it too (confirms are
// read and ignored: both are best effort, as kombu's are).

#include "actors/pidbox_transport.hpp"

#include <optional>
#include <set>
#include <variant>

#include <spdlog/spdlog.h>

#include "adapters/amqp.hpp"
#include "messages/celery_events.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

using steady = std::chrono::steady_clock;

constexpr std::string_view pidbox_exchange = "celery.pidbox";
constexpr std::string_view reply_exchange = "reply.celery.pidbox";
constexpr std::string_view event_exchange = "celeryev";
// Celery's control_queue_expires (10 s) and control_queue_ttl (300 s), as
// kombu turns them into queue arguments (milliseconds).
constexpr int64_t queue_expires_ms = 10000;
constexpr int64_t queue_ttl_ms = 300000;

// What a Celery worker's event messages carry: JSON, the sender's hostname
// header, transient.
amqp_properties event_properties(std::string_view hostname) {
  amqp_properties props;
  props.content_type = "application/json";
  props.content_encoding = "utf-8";
  value_map headers;
  headers.emplace_back("hostname", std::string{hostname});
  props.headers = std::move(headers);
  props.delivery_mode = 1;
  return props;
}

class rabbitmq_pidbox final : public pidbox_transport {
public:
  rabbitmq_pidbox(amqp_endpoint ep, std::string hostname,
              std::chrono::milliseconds io_timeout)
    : ep_(std::move(ep)),
      queue_(hostname + ".celery.pidbox"),
      io_timeout_(io_timeout) {
  }

  caf::error connect() override {
    if (conn_ && conn_->ok())
      return {};
    conn_.reset();
    declared_.clear();
    auto c = amqp_connection::connect(ep_, io_timeout_);
    if (!c)
      return c.error();
    conn_.emplace(std::move(*c));
    // The flags kombu declares them with: a declaration that differs is
    // refused (406) by a server where a Celery client declared them first.
    amqp_exchange_options transient;
    transient.durable = false;
    if (auto err = declare(pidbox_exchange, "fanout", transient))
      return fail(err);
    if (auto err = declare(reply_exchange, "direct", transient))
      return fail(err);
    if (auto err = declare(event_exchange, "topic", {}))
      return fail(err);
    amqp_queue_options q;
    q.durable = false;
    q.auto_delete = true;
    q.arguments.emplace_back("x-expires", queue_expires_ms);
    q.arguments.emplace_back("x-message-ttl", queue_ttl_ms);
    if (auto n = conn_->declare_queue(queue_, q); !n)
      return fail(n.error());
    if (auto err = conn_->bind_queue(queue_, pidbox_exchange, ""))
      return fail(err);
    auto tag = conn_->consume(queue_);
    if (!tag)
      return fail(tag.error());
    tag_ = std::move(*tag);
    spdlog::info("remote control: consuming {} ({})", queue_, to_string(ep_));
    return {};
  }

  void reset() override {
    conn_.reset();
    declared_.clear();
  }

  caf::error
  poll(std::chrono::milliseconds wait,
       const std::function<void(caf::expected<pidbox_request>)>& on_request)
    override {
    if (!conn_ || !conn_->ok())
      return caf::make_error(errc::connection_failed, "not connected");
    auto deadline = steady::now() + wait;
    // A bounded number per poll, so an exit message is not kept waiting.
    for (int i = 0; i < 64; ++i) {
      auto ev = conn_->next_event(i == 0 ? deadline : steady::now());
      if (!ev)
        return ev.error();
      if (!*ev)
        break;
      if (auto* c = std::get_if<amqp_cancelled>(&**ev);
          c != nullptr && c->consumer_tag == tag_)
        return caf::make_error(errc::connection_failed,
                               "the pidbox queue " + queue_ + " went away");
      auto* d = std::get_if<amqp_delivery>(&**ev);
      if (d == nullptr)
        continue; // confirms and returns of replies and events
      if (auto err = conn_->ack(d->channel, d->delivery_tag))
        return err;
      int64_t clock = 0;
      if (d->properties.headers)
        for (auto& [k, v] : *d->properties.headers)
          if (k == "clock" && v.is_int())
            clock = v.as_int();
      on_request(decode_pidbox_body(d->properties.content_type.value_or(""),
                                    d->body, clock));
    }
    return {};
  }

  caf::error reply(const pidbox_request& req, std::string_view hostname,
                   const value& reply, int64_t clock) override {
    if (!conn_ || !conn_->ok())
      return caf::make_error(errc::connection_failed, "not connected");
    // kombu declares the exchange it replies on; a client's own is
    // declared the same way once.
    amqp_exchange_options transient;
    transient.durable = false;
    if (auto err = declare(req.reply_exchange, "direct", transient))
      return err;
    amqp_properties props;
    props.content_type = req.msgpack ? "application/x-msgpack"
                                     : "application/json";
    props.content_encoding = req.msgpack ? "binary" : "utf-8";
    value_map headers;
    headers.emplace_back("ticket", req.ticket);
    headers.emplace_back("clock", clock);
    props.headers = std::move(headers);
    props.delivery_mode = 1;
    return publish(req.reply_exchange, req.reply_routing_key, props,
                   encode_pidbox_reply_body(hostname, reply, req.msgpack));
  }

  caf::error publish_event(std::string_view type, value_map fields,
                           std::string_view hostname, int64_t clock,
                           double timestamp) override {
    if (!conn_ || !conn_->ok())
      return caf::make_error(errc::connection_failed, "not connected");
    auto props = event_properties(hostname);
    return publish(event_exchange, celery_event_routing_key(type), props,
                   celery_event_body(type, std::move(fields), hostname, clock,
                                     timestamp));
  }

  caf::error publish_events(std::vector<task_event>& events,
                            std::string_view hostname,
                            int64_t& clock) override {
    if (!conn_ || !conn_->ok())
      return caf::make_error(errc::connection_failed, "not connected");
    auto props = event_properties(hostname);
    for (auto& body : celery_event_lists(events, hostname, clock))
      if (auto err = publish(event_exchange, task_event_batch_key, props, body))
        return err;
    return {};
  }

  value broker_info() const override {
    value_map broker;
    broker.emplace_back("transport", "amqp");
    broker.emplace_back("hostname", ep_.host);
    broker.emplace_back("port", static_cast<int64_t>(ep_.port));
    broker.emplace_back("virtual_host", ep_.vhost);
    broker.emplace_back("userid", ep_.username);
    return value{std::move(broker)};
  }

  std::string describe() const override {
    return to_string(ep_);
  }

private:
  caf::error fail(caf::error err) {
    conn_.reset();
    return err;
  }

  caf::error declare(std::string_view name, std::string_view type,
                     const amqp_exchange_options& opts) {
    if (name.empty() || declared_.count(std::string{name}) > 0)
      return {};
    if (auto err = conn_->declare_exchange(name, type, opts))
      return err;
    declared_.emplace(name);
    return {};
  }

  caf::error publish(std::string_view exchange, std::string_view key,
                     const amqp_properties& props, std::string_view body) {
    if (auto err = conn_->wait_writable(steady::now() + io_timeout_))
      return err;
    return conn_->publish(exchange, key, props, body, false);
  }

  amqp_endpoint ep_;
  std::string queue_;
  std::chrono::milliseconds io_timeout_;
  std::optional<amqp_connection> conn_;
  std::string tag_;
  std::set<std::string, std::less<>> declared_;
};

} // namespace

caf::expected<std::unique_ptr<pidbox_transport>>
make_amqp_pidbox(std::string_view broker_url, std::string_view hostname,
                 std::chrono::milliseconds io_timeout) {
  auto ep = parse_amqp_url(broker_url);
  if (!ep)
    return ep.error();
  return std::unique_ptr<pidbox_transport>{std::make_unique<rabbitmq_pidbox>(
    std::move(*ep), std::string{hostname}, io_timeout)};
}

} // namespace vigil
