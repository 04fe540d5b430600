// The RabbitMQ broker's topology: Celery's exchange, queue and binding per
// queue, declared once per connection, and the work channel's prefetch.

#include "actors/backends/broker_amqp.hpp"

namespace vigil {

caf::error declare_celery_queue(amqp_connection& conn, std::string_view queue) {
  uint16_t code = 0;
  if (auto err = conn.declare_exchange(queue, "direct", {}, &code);
      err && (code != 406 || !conn.ok()))
    return err;
  code = 0;
  if (auto n = conn.declare_queue(queue, {}, &code);
      !n && (code != 406 || !conn.ok()))
    return n.error();
  return conn.bind_queue(queue, queue, queue);
}

caf::error rabbitmq_broker::declare(const std::string& queue) {
  if (declared_.count(queue) != 0)
    return {};
  if (auto err = declare_celery_queue(conn_, queue))
    return err;
  declared_.insert(queue);
  return {};
}

caf::error rabbitmq_broker::limit_prefetch(size_t consumers) {
  bool global = consumers > 1;
  if (prefetch_set_ && (prefetch_global_ || !global))
    return {};
  if (auto err = conn_.set_prefetch(global))
    return err;
  prefetch_set_ = true;
  prefetch_global_ = global;
  return {};
}

} // namespace vigil
