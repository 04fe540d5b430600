#include "messages/pidbox_messages.hpp"

#include "messages/base64.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/msgpack_codec.hpp"

namespace vigil {

namespace {

caf::error malformed(std::string text) {
  return caf::make_error(errc::malformed, std::move(text));
}

std::string text_of(const value* v) {
  return v != nullptr && v->is_text() ? v->as_text() : std::string{};
}

} // namespace

caf::expected<pidbox_request> decode_pidbox_envelope(std::string_view json) {
  auto env = decode_json(json);
  if (!env)
    return env.error();
  if (!env->is_map())
    return malformed("pidbox envelope is not an object");
  auto* body = env->find("body");
  if (body == nullptr || !body->is_text())
    return malformed("pidbox envelope has no body");
  std::string raw = body->as_text();
  auto* props = env->find("properties");
  if (props != nullptr && text_of(props->find("body_encoding")) == "base64") {
    auto decoded = base64_decode(raw);
    if (!decoded)
      return malformed("pidbox body is not base64");
    raw = std::move(*decoded);
  }
  int64_t clock = 0;
  if (auto* h = env->find("headers"); h != nullptr && h->is_map())
    if (auto* c = h->find("clock"); c != nullptr && c->is_int())
      clock = c->as_int();
  return decode_pidbox_body(text_of(env->find("content-type")), raw, clock);
}

caf::expected<pidbox_request> decode_pidbox_body(std::string_view ctype,
                                                 std::string_view raw,
                                                 int64_t clock) {
  bool msgpack = ctype == "application/x-msgpack";
  if (!ctype.empty() && ctype != "application/json" && !msgpack)
    return malformed("pidbox body content-type " + std::string{ctype}
                     + " unsupported");
  auto msg = msgpack ? decode_msgpack(raw) : decode_json(raw);
  if (!msg)
    return malformed(msgpack ? "pidbox body is not msgpack"
                             : "pidbox body is not JSON");
  if (!msg->is_map())
    return malformed("pidbox body is not an object");
  pidbox_request req;
  req.method = text_of(msg->find("method"));
  if (req.method.empty())
    return malformed("pidbox body has no method");
  if (auto* a = msg->find("arguments"); a != nullptr && a->is_map())
    req.arguments = *a;
  else if (a != nullptr && !a->is_nil())
    return malformed("pidbox arguments are not an object");
  if (auto* d = msg->find("destination"); d != nullptr && d->is_array()) {
    std::vector<std::string> names;
    for (auto& x : d->as_array())
      if (x.is_text())
        names.push_back(x.as_text());
    req.destination = std::move(names);
  }
  if (auto* r = msg->find("reply_to"); r != nullptr && r->is_map()) {
    req.reply_exchange = text_of(r->find("exchange"));
    req.reply_routing_key = text_of(r->find("routing_key"));
  }
  req.ticket = text_of(msg->find("ticket"));
  req.msgpack = msgpack;
  req.clock = clock;
  return req;
}

bool pidbox_addressed_to(const pidbox_request& req, std::string_view hostname) {
  if (!req.destination)
    return true;
  for (auto& d : *req.destination)
    if (d == hostname)
      return true;
  return false;
}

std::string encode_pidbox_reply(std::string_view hostname, const value& reply,
                                std::string_view exchange,
                                std::string_view routing_key,
                                std::string_view ticket, int64_t clock,
                                bool msgpack) {
  value_map headers;
  headers.emplace_back("ticket", std::string{ticket});
  headers.emplace_back("clock", clock);
  value_map delivery_info;
  delivery_info.emplace_back("exchange", std::string{exchange});
  delivery_info.emplace_back("routing_key", std::string{routing_key});
  value_map props;
  props.emplace_back("delivery_mode", 1);
  props.emplace_back("delivery_info", std::move(delivery_info));
  props.emplace_back("priority", 0);
  props.emplace_back("body_encoding", "base64");
  props.emplace_back("delivery_tag", new_uuid4());
  value_map env;
  env.emplace_back("body", base64_encode(
                             encode_pidbox_reply_body(hostname, reply, msgpack)));
  env.emplace_back("content-encoding", msgpack ? "binary" : "utf-8");
  env.emplace_back("content-type",
                   msgpack ? "application/x-msgpack" : "application/json");
  env.emplace_back("headers", std::move(headers));
  env.emplace_back("properties", std::move(props));
  return encode_json(value{std::move(env)});
}

std::string encode_pidbox_reply_body(std::string_view hostname,
                                     const value& reply, bool msgpack) {
  value_map body;
  body.emplace_back(std::string{hostname}, reply);
  value b{std::move(body)};
  return msgpack ? encode_msgpack(b) : encode_json(b);
}

std::string kombu_fanout_channel(int db, std::string_view exchange) {
  return "/" + std::to_string(db) + "." + std::string{exchange};
}

std::vector<std::string>
kombu_direct_targets(const std::vector<std::string>& members,
                     std::string_view key) {
  std::vector<std::string> out;
  for (auto& m : members) {
    auto a = m.find(kombu_priority_sep);
    if (a == std::string::npos)
      continue;
    auto b = m.find(kombu_priority_sep, a + kombu_priority_sep.size());
    if (b == std::string::npos)
      continue;
    if (std::string_view{m}.substr(0, a) == key)
      out.push_back(m.substr(b + kombu_priority_sep.size()));
  }
  return out;
}

} // namespace vigil
