#include "messages/kombu_envelope.hpp"

#include <cstdint>

#include <simdjson.h>

#include "messages/base64.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

using simdjson::dom::element;
using simdjson::dom::object;

caf::error malformed(std::string text) {
  return caf::make_error(errc::malformed, std::move(text));
}

simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

// Reads an optional string; JSON null gives "".
bool read_string(element e, std::string_view key, std::string& out,
                 std::string& err) {
  if (e.is_null())
    return true;
  std::string_view sv;
  if (e.get(sv)) {
    err = "'" + std::string{key} + "' must be a string";
    return false;
  }
  out.assign(sv.data(), sv.size());
  return true;
}

// Reads an optional string member; absence gives "" too.
bool read_string(object obj, std::string_view key, std::string& out,
                 std::string& err) {
  auto field = obj[key];
  return field.error() || read_string(field.value_unsafe(), key, out, err);
}

bool read_int(element e, int64_t& out) {
  int64_t i;
  if (!e.get(i)) {
    out = i;
    return true;
  }
  double d;
  // Outside int64's range (or NaN) the conversion is undefined: no integer.
  if (!e.get(d) && d > -9.2e18 && d < 9.2e18) {
    out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

bool read_time(element e, std::string_view key, int64_t& out,
               std::string& err) {
  std::string text;
  if (!read_string(e, key, text, err))
    return false;
  if (text.empty())
    return true;
  auto t = parse_iso8601(text);
  if (!t) {
    err = "invalid " + std::string{key} + " header: " + error_text(t.error());
    return false;
  }
  out = *t;
  return true;
}

bool read_limit(element e, double& out) {
  if (e.is_null())
    return true;
  double d;
  if (!e.get(d)) {
    out = d;
    return true;
  }
  int64_t i;
  if (!e.get(i)) {
    out = static_cast<double>(i);
    return true;
  }
  return false;
}

// The headers vigil reads or writes itself; the others are kept as they
// are (task_message::extra_headers). lang and group_index are Celery's,
// rewritten on publish.
namespace header {
enum index : size_t {
  lang, task, id, shadow, eta, expires, group, group_index, retries,
  timelimit, root_id, parent_id, argsrepr, kwargsrepr, origin, ignore_result,
  vigil_schema, redelivered, count
};
} // namespace header

constexpr std::string_view header_names[header::count] = {
  "lang",     "task",        "id",          "shadow",     "eta",
  "expires",  "group",       "group_index", "retries",    "timelimit",
  "root_id",  "parent_id",   "argsrepr",    "kwargsrepr", "origin",
  "ignore_result", "vigil_schema", "redelivered"};

// `key`'s header, or header::count for one vigil does not know.
header::index header_of(std::string_view key) {
  for (size_t h = 0; h < header::count; ++h)
    if (header_names[h].size() == key.size() && header_names[h] == key)
      return static_cast<header::index>(h);
  return header::count;
}

void put_string_or_null(std::string& out, std::string_view s) {
  if (s.empty())
    out += "null";
  else
    append_json_string(out, s);
}

void put_time_or_null(std::string& out, int64_t us) {
  if (us == 0) {
    out += "null";
    return;
  }
  append_json_string(out, format_iso8601(us));
}

void put_limit(std::string& out, double x) {
  if (x <= 0)
    out += "null";
  else
    append_json_number(out, x);
}

} // namespace

std::string kombu_queue_key(std::string_view queue, int priority) {
  std::string key{queue};
  if (priority >= 3) {
    int bucket = priority >= 9 ? 9 : priority >= 6 ? 6 : 3;
    key += kombu_priority_sep;
    key += static_cast<char>('0' + bucket);
  }
  return key;
}

std::string encode_kombu_envelope(const task_message& msg,
                                  std::string_view queue,
                                  std::string_view delivery_tag) {
  // Constant runs are string_view literals (one append each, no strlen):
  // the ingest writer encodes one envelope per stored event.
  using namespace std::string_view_literals;
  std::string out;
  out.reserve(msg.body.size() * 4 / 3 + msg.kwargsrepr.size()
              + msg.argsrepr.size() + 768);
  out += "{\"body\": \""sv;
  out += base64_encode(msg.body);
  out += "\", \"content-encoding\": "sv;
  append_json_string(out, msg.content_encoding);
  out += ", \"content-type\": "sv;
  append_json_string(out, msg.content_type);
  out += ", \"headers\": {\"lang\": \"cpp\", \"task\": "sv;
  append_json_string(out, msg.task);
  out += ", \"id\": "sv;
  append_json_string(out, msg.id);
  out += ", \"shadow\": "sv;
  put_string_or_null(out, msg.shadow);
  out += ", \"eta\": "sv;
  put_time_or_null(out, msg.eta_us);
  out += ", \"expires\": "sv;
  put_time_or_null(out, msg.expires_us);
  out += ", \"group\": "sv;
  put_string_or_null(out, msg.group);
  if (msg.group_index >= 0) {
    out += ", \"group_index\": "sv;
    out += std::to_string(msg.group_index);
    out += ", \"retries\": "sv;
  } else {
    out += ", \"group_index\": null, \"retries\": "sv;
  }
  out += std::to_string(msg.retries);
  out += ", \"timelimit\": ["sv;
  put_limit(out, msg.time_limit);
  out += ", "sv;
  put_limit(out, msg.soft_time_limit);
  out += "], \"root_id\": "sv;
  append_json_string(out, msg.root_id.empty() ? msg.id : msg.root_id);
  out += ", \"parent_id\": "sv;
  put_string_or_null(out, msg.parent_id);
  out += ", \"argsrepr\": "sv;
  append_json_string(out, msg.argsrepr);
  out += ", \"kwargsrepr\": "sv;
  append_json_string(out, msg.kwargsrepr);
  out += ", \"origin\": "sv;
  append_json_string(out, msg.origin);
  out += msg.ignore_result ? ", \"ignore_result\": true"sv
                           : ", \"ignore_result\": false"sv;
  if (msg.schema_version > 0) {
    out += ", \"vigil_schema\": "sv;
    out += std::to_string(msg.schema_version);
  }
  // Extra headers are a JSON object: splice its members in.
  if (msg.extra_headers.size() > 2) {
    out += ", "sv;
    out.append(msg.extra_headers, 1, msg.extra_headers.size() - 2);
  }
  out += "}, \"properties\": {\"correlation_id\": "sv;
  append_json_string(out, msg.correlation_id.empty() ? msg.id
                                                : msg.correlation_id);
  if (!msg.reply_to.empty()) {
    out += ", \"reply_to\": "sv;
    append_json_string(out, msg.reply_to);
  }
  out += ", \"delivery_mode\": 2, \"delivery_info\": {\"exchange\": \"\", "
         "\"routing_key\": "sv;
  append_json_string(out, queue);
  out += "}, \"priority\": "sv;
  out += std::to_string(msg.priority);
  out += ", \"body_encoding\": \"base64\", \"delivery_tag\": "sv;
  append_json_string(out, delivery_tag);
  out += "}}"sv;
  return out;
}

caf::expected<delivery> decode_kombu_envelope(std::string_view json) {
  element root;
  if (auto err = thread_parser().parse(json.data(), json.size()).get(root))
    return malformed(std::string{"envelope is not valid JSON: "}
                     + simdjson::error_message(err));
  object env;
  if (root.get(env))
    return malformed("envelope is not a JSON object");
  delivery out;
  auto& msg = out.msg;
  std::string err;
  object props;
  if (env["properties"].get(props))
    return malformed("envelope has no 'properties' object");
  if (!read_string(props, "delivery_tag", out.tag, err))
    return malformed(err);
  if (out.tag.empty())
    return malformed("envelope has no properties.delivery_tag");
  std::string body_encoding;
  if (!read_string(props, "body_encoding", body_encoding, err)
      || !read_string(props, "correlation_id", msg.correlation_id, err)
      || !read_string(props, "reply_to", msg.reply_to, err))
    return malformed(err);
  if (auto prio = props["priority"]; !prio.error()) {
    int64_t p = 0;
    if (!prio.value_unsafe().is_null() && !read_int(prio.value_unsafe(), p))
      return malformed("properties.priority must be a number");
    msg.priority = static_cast<int32_t>(std::clamp<int64_t>(p, 0, 255));
  }
  object info;
  if (props["delivery_info"].get(info))
    return malformed("envelope has no properties.delivery_info");
  if (!read_string(info, "routing_key", out.queue, err))
    return malformed(err);
  if (auto r = info["redelivered"]; !r.error()) {
    bool b = false;
    if (!r.value_unsafe().get(b))
      out.redelivered = b;
  }
  std::string body_text;
  if (!read_string(env, "body", body_text, err)
      || !read_string(env, "content-type", msg.content_type, err)
      || !read_string(env, "content-encoding", msg.content_encoding, err))
    return malformed(err);
  if (body_encoding == "base64") {
    auto body = base64_decode(body_text);
    if (!body)
      return malformed("body is not valid base64: " + error_text(body.error()));
    msg.body = std::move(*body);
  } else {
    msg.body = std::move(body_text);
  }
  object headers;
  if (env["headers"].get(headers))
    return malformed("envelope has no 'headers' object");
  // One pass over the headers (a Celery message has ~20): each known one
  // is kept where it first occurs (as a lookup by name would find it), and
  // the unknown ones are kept in order, for a retry to republish them.
  element found[header::count];
  bool has[header::count] = {};
  std::string extra;
  for (auto [key, val] : headers) {
    auto h = header_of(key);
    if (h == header::count) {
      extra += extra.empty() ? "{" : ", ";
      append_json_string(extra, key);
      extra += ": ";
      extra += simdjson::minify(val);
    } else if (!has[h]) {
      has[h] = true;
      found[h] = val;
    }
  }
  auto text_header = [&](header::index h, std::string& value) {
    return !has[h] || read_string(found[h], header_names[h], value, err);
  };
  auto time_header = [&](header::index h, int64_t& value) {
    return !has[h] || read_time(found[h], header_names[h], value, err);
  };
  if (!text_header(header::task, msg.task) || !text_header(header::id, msg.id)
      || !text_header(header::root_id, msg.root_id)
      || !text_header(header::parent_id, msg.parent_id)
      || !text_header(header::group, msg.group)
      || !text_header(header::shadow, msg.shadow)
      || !text_header(header::argsrepr, msg.argsrepr)
      || !text_header(header::kwargsrepr, msg.kwargsrepr)
      || !text_header(header::origin, msg.origin)
      || !time_header(header::eta, msg.eta_us)
      || !time_header(header::expires, msg.expires_us))
    return malformed("header " + err);
  if (msg.task.empty())
    return malformed("message has no 'task' header (protocol v1 messages "
                     "are not supported)");
  if (msg.id.empty())
    return malformed("message has no 'id' header");
  if (has[header::retries] && !found[header::retries].is_null()) {
    int64_t n = 0;
    if (!read_int(found[header::retries], n) || n < 0)
      return malformed("header 'retries' must be a non-negative integer");
    msg.retries = static_cast<int32_t>(std::min<int64_t>(n, INT32_MAX));
  }
  if (has[header::group_index] && !found[header::group_index].is_null()) {
    int64_t n = 0;
    if (!read_int(found[header::group_index], n) || n < 0)
      return malformed("header 'group_index' must be a non-negative integer");
    msg.group_index = static_cast<int32_t>(std::min<int64_t>(n, INT32_MAX));
  }
  if (has[header::vigil_schema] && !found[header::vigil_schema].is_null()) {
    int64_t n = 0;
    if (!read_int(found[header::vigil_schema], n) || n < 0)
      return malformed("header 'vigil_schema' must be a non-negative integer");
    msg.schema_version = static_cast<int32_t>(std::min<int64_t>(n, INT32_MAX));
  }
  if (has[header::ignore_result]) {
    bool b = false;
    if (!found[header::ignore_result].get(b))
      msg.ignore_result = b;
  }
  if (has[header::timelimit] && !found[header::timelimit].is_null()) {
    simdjson::dom::array limits;
    if (found[header::timelimit].get(limits) || limits.size() != 2
        || !read_limit(limits.at(0).value_unsafe(), msg.time_limit)
        || !read_limit(limits.at(1).value_unsafe(), msg.soft_time_limit))
      return malformed("header 'timelimit' must be [hard, soft]");
  }
  if (!extra.empty()) {
    extra += '}';
    msg.extra_headers = std::move(extra);
  }
  if (has[header::redelivered]) {
    bool b = false;
    if (!found[header::redelivered].get(b) && b)
      out.redelivered = true;
  }
  return out;
}

std::string find_delivery_tag(std::string_view json) {
  static constexpr std::string_view key = "\"delivery_tag\"";
  // Kombu and vigil both write properties last: search from the end, which
  // skips the hundreds of quotes a forward search would stop at.
  auto pos = json.rfind(key);
  if (pos == std::string_view::npos)
    return {};
  pos = json.find('"', json.find(':', pos + key.size()));
  if (pos == std::string_view::npos)
    return {};
  auto end = json.find('"', pos + 1);
  if (end == std::string_view::npos)
    return {};
  return std::string{json.substr(pos + 1, end - pos - 1)};
}

caf::expected<std::string> mark_redelivered(std::string_view envelope) {
  // Rewrites member by member so that every other byte of meaning stays.
  element root;
  if (thread_parser().parse(envelope.data(), envelope.size()).get(root))
    return malformed("envelope is not valid JSON");
  object env;
  if (root.get(env))
    return malformed("envelope is not a JSON object");
  std::string out = "{";
  bool first = true;
  for (auto [key, val] : env) {
    if (!first)
      out += ", ";
    first = false;
    append_json_string(out, key);
    out += ": ";
    object sub;
    if ((key == "headers" || key == "properties") && !val.get(sub)) {
      out += '{';
      bool first_sub = true;
      for (auto [k2, v2] : sub) {
        if (k2 == "redelivered")
          continue;
        if (!first_sub)
          out += ", ";
        first_sub = false;
        append_json_string(out, k2);
        out += ": ";
        object info;
        if (key == "properties" && k2 == "delivery_info" && !v2.get(info)) {
          out += '{';
          for (auto [k3, v3] : info) {
            if (k3 == "redelivered")
              continue;
            append_json_string(out, k3);
            out += ": ";
            out += simdjson::minify(v3);
            out += ", ";
          }
          out += "\"redelivered\": true}";
        } else {
          out += simdjson::minify(v2);
        }
      }
      if (key == "headers")
        out += first_sub ? "\"redelivered\": true" : ", \"redelivered\": true";
      out += '}';
    } else {
      out += simdjson::minify(val);
    }
  }
  out += '}';
  return out;
}

} // namespace vigil
