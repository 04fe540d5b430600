#include "actors/backends/broker.hpp"

#include <simdjson.h>

#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/kombu_envelope.hpp"

namespace vigil {

broker::~broker() {
  // nop
}

caf::expected<delivery> broker::decode(const raw_delivery& raw) {
  auto d = decode_kombu_envelope(raw.envelope);
  if (!d)
    return d.error();
  d->tag = raw.tag;
  d->queue = raw.queue;
  return d;
}

std::string to_json(const dead_letter& x) {
  std::string out = "{\"id\": ";
  append_json_string(out, x.id);
  out += ", \"task\": ";
  append_json_string(out, x.task);
  out += ", \"task_id\": ";
  append_json_string(out, x.task_id);
  out += ", \"queue\": ";
  append_json_string(out, x.queue);
  out += ", \"reason\": ";
  append_json_string(out, x.reason);
  out += ", \"time\": ";
  append_json_string(out, format_iso8601(x.time_us));
  out += ", \"envelope\": ";
  append_json_string(out, x.envelope);
  out += '}';
  return out;
}

caf::expected<dead_letter> dead_letter_from_json(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(json.data(), json.size()).get(obj))
    return caf::make_error(errc::malformed, "dead letter is not a JSON object");
  dead_letter out;
  auto get = [&](std::string_view key, std::string& dst) {
    std::string_view sv;
    if (!obj[key].get(sv))
      dst.assign(sv.data(), sv.size());
  };
  get("id", out.id);
  get("task", out.task);
  get("task_id", out.task_id);
  get("queue", out.queue);
  get("reason", out.reason);
  get("envelope", out.envelope);
  std::string time;
  get("time", time);
  if (auto t = parse_iso8601(time))
    out.time_us = *t;
  return out;
}

caf::expected<std::unique_ptr<broker>>
connect_broker(std::string_view url, std::chrono::milliseconds timeout) {
  if (url.substr(0, 9) == "memory://")
    return make_memory_broker(url);
  if (url.substr(0, 8) == "redis://")
    return make_redis_broker(url, timeout);
  if (url.substr(0, 7) == "amqp://")
    return make_amqp_broker(url, timeout);
  return caf::make_error(errc::bad_config,
                         "broker.url: unknown scheme in '" + mask_url(url)
                           + "' (expected memory://, redis:// or amqp://)");
}

} // namespace vigil
