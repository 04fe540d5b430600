#include "actors/backends/broker.hpp"

#include <map>

#include <simdjson.h>

#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/base64.hpp"
#include "messages/json_string.hpp"
#include "messages/json_writer.hpp"
#include "messages/md5.hpp"
#include "messages/kombu_envelope.hpp"

namespace vigil {

broker::~broker() {
  // nop
}

caf::expected<size_t>
broker::restore_unacked(const std::vector<std::string>& tags) {
  if (auto err = requeue(tags))
    return err;
  return tags.size();
}

caf::expected<uint32_t> broker::count_delivery(const std::string&) {
  return uint32_t{0};
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
  // The message must come back byte for byte on replay, and JSON text
  // cannot carry invalid UTF-8: such an envelope is kept in base64.
  if (simdjson::validate_utf8(x.envelope.data(), x.envelope.size())) {
    out += ", \"envelope\": ";
    append_json_string(out, x.envelope);
  } else {
    out += ", \"envelope_base64\": ";
    append_json_string(out, base64_encode(x.envelope));
  }
  if (!x.unreadable.empty()) {
    out += ", \"unreadable\": ";
    append_json_string(out, x.unreadable);
  }
  out += '}';
  return out;
}

namespace {

/// Reads a flat JSON object whose values are strings, passing the bytes of
/// each string through as they are, invalid UTF-8 included: records written
/// before envelopes were kept in base64 may hold such bytes, which strict
/// parsers reject. Other values are skipped. False when `text` is no such
/// object.
bool read_lenient_record(std::string_view text,
                         std::map<std::string, std::string>& out) {
  size_t i = 0;
  auto ws = [&] {
    while (i < text.size()
           && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r'
               || text[i] == '\t'))
      ++i;
  };
  auto string = [&](std::string& dst) {
    if (i >= text.size() || text[i] != '"')
      return false;
    auto close = json_string_close(text, i + 1);
    if (close == std::string_view::npos
        || !append_unescaped_json(dst, text.substr(i + 1, close - i - 1)))
      return false;
    i = close + 1;
    return true;
  };
  ws();
  if (i >= text.size() || text[i++] != '{')
    return false;
  ws();
  if (i < text.size() && text[i] == '}')
    return true;
  while (i < text.size()) {
    ws();
    std::string key;
    if (!string(key))
      return false;
    ws();
    if (i >= text.size() || text[i++] != ':')
      return false;
    ws();
    if (i < text.size() && text[i] == '"') {
      std::string val;
      if (!string(val))
        return false;
      out[key] = std::move(val);
    } else {
      // A number, true/false/null: not part of a record, skipped.
      while (i < text.size() && text[i] != ',' && text[i] != '}')
        ++i;
    }
    ws();
    if (i >= text.size())
      return false;
    if (text[i] == '}')
      return true;
    if (text[i++] != ',')
      return false;
  }
  return false;
}

} // namespace

caf::expected<dead_letter> dead_letter_from_json(std::string_view json) {
  std::map<std::string, std::string> fields;
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (!parser.parse(json.data(), json.size()).get(obj)) {
    for (auto [key, val] : obj) {
      std::string_view sv;
      if (!val.get(sv))
        fields.emplace(std::string{key}, std::string{sv});
    }
  } else if (!read_lenient_record(json, fields)) {
    return caf::make_error(errc::malformed, "dead letter is not a JSON object");
  }
  dead_letter out;
  auto take = [&](const char* key, std::string& dst) {
    if (auto i = fields.find(key); i != fields.end())
      dst = std::move(i->second);
  };
  take("id", out.id);
  take("task", out.task);
  take("task_id", out.task_id);
  take("queue", out.queue);
  take("reason", out.reason);
  take("envelope", out.envelope);
  take("unreadable", out.unreadable);
  if (auto i = fields.find("envelope_base64"); i != fields.end()) {
    auto raw = base64_decode(i->second);
    if (!raw)
      return caf::make_error(errc::malformed,
                             "dead letter's envelope_base64 is not base64");
    out.envelope = std::move(*raw);
  }
  if (auto i = fields.find("time"); i != fields.end())
    if (auto t = parse_iso8601(i->second))
      out.time_us = *t;
  if (out.id.empty())
    return caf::make_error(errc::malformed, "dead letter has no id");
  return out;
}

dead_letter read_dead_letter_record(std::string_view record) {
  auto x = dead_letter_from_json(record);
  if (x)
    return std::move(*x);
  dead_letter out;
  out.id = "unreadable-" + md5_hex(record).substr(0, 12);
  out.unreadable = error_text(x.error());
  out.envelope = std::string{record};
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
