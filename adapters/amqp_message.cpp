#include "adapters/amqp_message.hpp"

#include <algorithm>
#include <tuple>
#include <utility>

#include "messages/base64.hpp"
#include "messages/clock.hpp"
#include "messages/json_codec.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

bool is_null_header(const value& v);

// Builds one header table in wire order; with `keep_nulls` false, null
// headers (see drop_null_headers) are never added.
class table_builder {
public:
  table_builder(size_t capacity, bool keep_nulls) : keep_nulls_(keep_nulls) {
    map_.reserve(capacity);
  }

  void text(std::string_view key, std::string_view s) {
    map_.emplace_back(std::piecewise_construct, std::forward_as_tuple(key),
                      std::forward_as_tuple(s));
  }

  void text_or_null(std::string_view key, std::string_view s) {
    if (!s.empty())
      text(key, s);
    else
      null(key);
  }

  void time_or_null(std::string_view key, int64_t us) {
    if (us != 0)
      text(key, format_iso8601(us));
    else
      null(key);
  }

  void null(std::string_view key) {
    if (keep_nulls_)
      map_.emplace_back(std::piecewise_construct, std::forward_as_tuple(key),
                        std::forward_as_tuple());
  }

  void add(std::string_view key, value x) {
    if (keep_nulls_ || !is_null_header(x))
      map_.emplace_back(std::piecewise_construct, std::forward_as_tuple(key),
                        std::forward_as_tuple(std::move(x)));
  }

  value_map take() {
    return std::move(map_);
  }

private:
  bool keep_nulls_;
  value_map map_;
};

// A time limit of 0 (none) travels as null.
value limit_value(double x) {
  return x <= 0 ? value{} : value{x};
}

bool is_null_header(const value& v) {
  if (v.is_nil())
    return true;
  if (!v.is_array() || v.as_array().empty())
    return false;
  auto& xs = v.as_array();
  return std::all_of(xs.begin(), xs.end(),
                     [](const value& x) { return x.is_nil(); });
}


void append_value_json(std::string& out, const value& x);

void append_table_json(std::string& out, const value_map& t) {
  out += '{';
  for (size_t i = 0; i < t.size(); ++i) {
    if (i > 0)
      out += ", ";
    append_json_string(out, t[i].first);
    out += ": ";
    append_value_json(out, t[i].second);
  }
  out += '}';
}

// Header values as the adapter reads them off the wire (integers of every
// width as int, float32 and decimals as double, timestamps as ISO-8601
// text, byte arrays as bytes).
void append_value_json(std::string& out, const value& x) {
  switch (x.kind()) {
    case value_kind::boolean:
      out += x.as_bool() ? "true" : "false";
      return;
    case value_kind::integer:
      out += std::to_string(x.as_int());
      return;
    case value_kind::uinteger:
    case value_kind::real:
      return append_json_number(out, x.as_double());
    case value_kind::text:
      return append_json_string(out, x.as_text());
    case value_kind::bytes:
      return append_json_string(out, x.as_bytes().bytes);
    case value_kind::map:
      return append_table_json(out, x.as_map());
    case value_kind::array: {
      auto& xs = x.as_array();
      out += '[';
      for (size_t i = 0; i < xs.size(); ++i) {
        if (i > 0)
          out += ", ";
        append_value_json(out, xs[i]);
      }
      out += ']';
      return;
    }
    case value_kind::nil:
      break;
  }
  out += "null";
}

const std::string* text_of(const value_map& m, std::string_view key) {
  for (auto& [k, v] : m)
    if (k == key)
      return v.is_text() ? &v.as_text() : nullptr;
  return nullptr;
}

const value* find_in(const value_map& m, std::string_view key) {
  for (auto& [k, v] : m)
    if (k == key)
      return &v;
  return nullptr;
}

void set_text(std::optional<std::string>& field, const std::string* s) {
  if (s != nullptr)
    field = *s;
}

} // namespace

// -- task_message -> properties ------------------------------------------------

amqp_properties make_amqp_properties(const task_message& msg,
                                     null_headers nulls) {
  amqp_properties out;
  out.content_type = msg.content_type;
  out.content_encoding = msg.content_encoding;
  out.delivery_mode = 2;
  out.priority = static_cast<uint8_t>(std::clamp(msg.priority, 0, 255));
  out.correlation_id = msg.correlation_id.empty() ? msg.id
                                                  : msg.correlation_id;
  if (!msg.reply_to.empty())
    out.reply_to = msg.reply_to;
  value extra;
  if (msg.extra_headers.size() > 2) {
    auto parsed = decode_json(msg.extra_headers);
    if (parsed && parsed->is_map())
      extra = std::move(*parsed);
  }
  auto n_extra = extra.is_map() ? extra.as_map().size() : 0;
  table_builder t{17 + n_extra, nulls == null_headers::keep};
  t.text("lang", "cpp");
  t.text("task", msg.task);
  t.text("id", msg.id);
  t.text_or_null("shadow", msg.shadow);
  t.time_or_null("eta", msg.eta_us);
  t.time_or_null("expires", msg.expires_us);
  t.text_or_null("group", msg.group);
  if (msg.group_index >= 0)
    t.add("group_index", value{msg.group_index});
  else
    t.null("group_index");
  t.add("retries", value{msg.retries});
  t.add("timelimit", value{value_array{limit_value(msg.time_limit),
                                       limit_value(msg.soft_time_limit)}});
  t.text("root_id", msg.root_id.empty() ? msg.id : msg.root_id);
  t.text_or_null("parent_id", msg.parent_id);
  t.text("argsrepr", msg.argsrepr);
  t.text("kwargsrepr", msg.kwargsrepr);
  t.text("origin", msg.origin);
  t.add("ignore_result", value{msg.ignore_result});
  if (msg.schema_version > 0)
    t.add("vigil_schema", value{msg.schema_version});
  if (n_extra > 0)
    for (auto& [key, val] : extra.as_map())
      t.add(key, std::move(val));
  out.headers = t.take();
  return out;
}

void drop_null_headers(amqp_properties& props) {
  if (!props.headers)
    return;
  auto& h = *props.headers;
  h.erase(std::remove_if(h.begin(), h.end(),
                         [](const auto& kv) {
                           return is_null_header(kv.second);
                         }),
          h.end());
}

// -- AMQP message <-> kombu envelope --------------------------------------------

std::string kombu_envelope_from_amqp(const amqp_properties& props,
                                     std::string_view body,
                                     std::string_view exchange,
                                     std::string_view routing_key,
                                     std::string_view delivery_tag,
                                     bool redelivered) {
  std::string out;
  out.reserve(body.size() * 4 / 3 + 1024);
  out += "{\"body\": \"";
  out += base64_encode(body);
  out += "\", \"content-encoding\": ";
  if (props.content_encoding)
    append_json_string(out, *props.content_encoding);
  else
    out += "null";
  out += ", \"content-type\": ";
  if (props.content_type)
    append_json_string(out, *props.content_type);
  else
    out += "null";
  out += ", \"headers\": ";
  if (props.headers)
    append_table_json(out, *props.headers);
  else
    out += "{}";
  out += ", \"properties\": {";
  if (props.correlation_id) {
    out += "\"correlation_id\": ";
    append_json_string(out, *props.correlation_id);
    out += ", ";
  }
  if (props.reply_to) {
    out += "\"reply_to\": ";
    append_json_string(out, *props.reply_to);
    out += ", ";
  }
  if (props.expiration) {
    out += "\"expiration\": ";
    append_json_string(out, *props.expiration);
    out += ", ";
  }
  out += "\"delivery_mode\": ";
  out += std::to_string(int{props.delivery_mode.value_or(2)});
  out += ", \"delivery_info\": {\"exchange\": ";
  append_json_string(out, exchange);
  out += ", \"routing_key\": ";
  append_json_string(out, routing_key);
  out += ", \"redelivered\": ";
  out += redelivered ? "true" : "false";
  out += "}, \"priority\": ";
  out += std::to_string(int{props.priority.value_or(0)});
  out += ", \"body_encoding\": \"base64\", \"delivery_tag\": ";
  append_json_string(out, delivery_tag);
  out += "}}";
  return out;
}

void kombu_envelope_to_amqp(std::string_view envelope, amqp_properties& props,
                            std::string& body) {
  props = amqp_properties{};
  props.delivery_mode = 2;
  auto parsed = decode_json(envelope);
  if (!parsed || !parsed->is_map()) {
    body.assign(envelope.data(), envelope.size());
    return;
  }
  auto& env = parsed->as_map();
  const value_map* properties = nullptr;
  if (auto* p = find_in(env, "properties"); p != nullptr && p->is_map())
    properties = &p->as_map();
  std::string body_encoding;
  if (properties != nullptr)
    if (auto* s = text_of(*properties, "body_encoding"))
      body_encoding = *s;
  body.clear();
  if (auto* text = text_of(env, "body")) {
    auto decoded = body_encoding == "base64" ? base64_decode(*text)
                                             : caf::expected<std::string>{*text};
    body = decoded ? std::move(*decoded) : *text;
  }
  set_text(props.content_type, text_of(env, "content-type"));
  set_text(props.content_encoding, text_of(env, "content-encoding"));
  if (auto* h = find_in(env, "headers"); h != nullptr && h->is_map()) {
    // kombu's restore marks; AMQP carries redelivery in the delivery itself.
    value_map headers;
    for (auto& [k, v] : h->as_map())
      if (k != "redelivered")
        headers.emplace_back(k, v);
    props.headers = std::move(headers);
  }
  if (properties == nullptr)
    return;
  set_text(props.correlation_id, text_of(*properties, "correlation_id"));
  set_text(props.reply_to, text_of(*properties, "reply_to"));
  if (auto* p = find_in(*properties, "priority"); p != nullptr && p->is_int())
    props.priority = static_cast<uint8_t>(std::clamp<int64_t>(p->as_int(), 0,
                                                             255));
}

} // namespace vigil
