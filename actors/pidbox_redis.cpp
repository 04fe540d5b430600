// kombu's pidbox and Celery's events on a Redis broker (see
// pidbox_transport.hpp): a subscriber connection for the fanout channel and
// a second one for replies and events.

#include "actors/pidbox_transport.hpp"

#include <optional>

#include <spdlog/spdlog.h>

#include "adapters/redis.hpp"
#include "messages/celery_events.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

constexpr std::string_view pidbox_exchange = "celery.pidbox";

class redis_pidbox final : public pidbox_transport {
public:
  redis_pidbox(redis_endpoint ep, std::chrono::milliseconds io_timeout)
    : ep_(std::move(ep)), io_timeout_(io_timeout) {
  }

  caf::error connect() override {
    if (!sub_) {
      auto c = redis_connection::connect(ep_, io_timeout_);
      if (!c)
        return c.error();
      auto channel = kombu_fanout_channel(ep_.db, pidbox_exchange);
      c->append({"PSUBSCRIBE", channel});
      sub_.emplace(std::move(*c));
      spdlog::info("remote control: listening on {} ({})", channel,
                   to_string(ep_));
    }
    if (!pub_) {
      auto c = redis_connection::connect(ep_, io_timeout_);
      if (!c)
        return c.error();
      pub_.emplace(std::move(*c));
    }
    return {};
  }

  void reset() override {
    sub_.reset();
    pub_.reset();
  }

  caf::error
  poll(std::chrono::milliseconds wait,
       const std::function<void(caf::expected<pidbox_request>)>& on_request)
    override {
    if (!sub_)
      return caf::make_error(errc::connection_failed, "not connected");
    // A bounded number per poll, so an exit message is not kept waiting.
    for (int i = 0; i < 64; ++i) {
      auto r = sub_->next_push(i == 0 ? wait : std::chrono::milliseconds{0});
      if (!r)
        return r.error();
      if (r->is_nil())
        break;
      if (r->is_array() && r->size() == 4 && (*r)[0].as_string() == "pmessage")
        on_request(decode_pidbox_envelope((*r)[3].as_string()));
    }
    return {};
  }

  caf::error reply(const pidbox_request& req, std::string_view hostname,
                   const value& reply, int64_t clock) override {
    if (!pub_)
      return caf::make_error(errc::connection_failed, "not connected");
    auto members = pub_->command(
      {"SMEMBERS", "_kombu.binding." + req.reply_exchange});
    if (!members)
      return members.error();
    std::vector<std::string> table;
    for (auto m : members->elements())
      table.emplace_back(m.as_string());
    auto targets = kombu_direct_targets(table, req.reply_routing_key);
    if (targets.empty())
      return {}; // no one waits for it (kombu drops it too)
    auto env = encode_pidbox_reply(hostname, reply, req.reply_exchange,
                                   req.reply_routing_key, req.ticket, clock,
                                   req.msgpack);
    for (auto& q : targets)
      pub_->append({"LPUSH", q, env});
    auto r = pub_->flush();
    if (!r)
      return r.error();
    return check_replies(*r, "pidbox reply");
  }

  caf::error publish_event(std::string_view type, value_map fields,
                           std::string_view hostname, int64_t clock,
                           double timestamp) override {
    if (!pub_)
      return caf::make_error(errc::connection_failed, "not connected");
    auto env = encode_celery_event(type, std::move(fields), hostname, clock,
                                   timestamp);
    auto r = pub_->command({"PUBLISH", celery_event_channel(ep_.db, type), env});
    if (!r) {
      pub_.reset();
      return r.error();
    }
    return {};
  }

  caf::error publish_events(std::vector<task_event>& events,
                            std::string_view hostname,
                            int64_t& clock) override {
    if (!pub_)
      return caf::make_error(errc::connection_failed, "not connected");
    if (events.empty())
      return {};
    // Lists of events on task.multi, as a Celery worker batches them.
    auto channel = celery_event_channel(ep_.db, task_event_batch_key);
    for (auto& body : celery_event_lists(events, hostname, clock))
      pub_->append({"PUBLISH", channel,
                    encode_celery_event_envelope(task_event_batch_key, body,
                                                 hostname)});
    auto r = pub_->flush();
    if (!r) {
      pub_.reset();
      return r.error();
    }
    return {};
  }

  value broker_info() const override {
    value_map broker;
    broker.emplace_back("transport", "redis");
    broker.emplace_back("hostname", ep_.host);
    broker.emplace_back("port", static_cast<int64_t>(ep_.port));
    broker.emplace_back("virtual_host", std::to_string(ep_.db));
    return value{std::move(broker)};
  }

  std::string describe() const override {
    return to_string(ep_);
  }

private:
  redis_endpoint ep_;
  std::chrono::milliseconds io_timeout_;
  std::optional<redis_connection> sub_;
  std::optional<redis_connection> pub_;
};

} // namespace

caf::error publish_task_sent(std::string_view broker_url,
                             std::string_view hostname,
                             const task_message& msg, std::string_view queue,
                             std::chrono::milliseconds io_timeout) {
  auto transport = make_pidbox_transport(broker_url, hostname, io_timeout);
  if (!transport)
    return transport.error();
  if (auto err = (*transport)->connect())
    return err;
  std::vector<task_event> batch{task_sent_event(msg, queue)};
  int64_t clock = 0;
  return (*transport)->publish_events(batch, hostname, clock);
}

caf::expected<std::unique_ptr<pidbox_transport>>
make_redis_pidbox(std::string_view broker_url,
                  std::chrono::milliseconds io_timeout) {
  auto ep = parse_redis_url(broker_url);
  if (!ep)
    return ep.error();
  return std::unique_ptr<pidbox_transport>{
    std::make_unique<redis_pidbox>(std::move(*ep), io_timeout)};
}

caf::expected<std::unique_ptr<pidbox_transport>>
make_pidbox_transport(std::string_view broker_url, std::string_view hostname,
                      std::chrono::milliseconds io_timeout) {
  if (broker_url.starts_with("redis://"))
    return make_redis_pidbox(broker_url, io_timeout);
  if (broker_url.starts_with("amqp://"))
    return make_amqp_pidbox(broker_url, hostname, io_timeout);
  return caf::make_error(errc::bad_config,
                         "remote control needs a redis:// or amqp:// broker");
}

} // namespace vigil
