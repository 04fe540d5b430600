#include "messages/celery_events.hpp"

#include <algorithm>
#include <cstdlib>
#include <unistd.h>

#include "messages/clock.hpp"
#include "messages/json_codec.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

std::string celery_event_routing_key(std::string_view type) {
  std::string key{type};
  for (auto& c : key)
    if (c == '-')
      c = '.';
  return key;
}

std::string celery_event_channel(int db, std::string_view type) {
  return "/" + std::to_string(db) + ".celeryev/" + celery_event_routing_key(type);
}

namespace {

value event_value(std::string_view type, value_map fields,
                  std::string_view hostname, int64_t clock, double timestamp) {
  fields.emplace_back("type", std::string{type});
  fields.emplace_back("timestamp", timestamp);
  fields.emplace_back("hostname", std::string{hostname});
  fields.emplace_back("utcoffset", 0);
  fields.emplace_back("pid", static_cast<int64_t>(::getpid()));
  fields.emplace_back("clock", clock);
  return value{std::move(fields)};
}

} // namespace

std::string celery_event_body(std::string_view type, value_map fields,
                              std::string_view hostname, int64_t clock,
                              double timestamp) {
  return encode_json(
    event_value(type, std::move(fields), hostname, clock, timestamp));
}

std::vector<std::string> celery_event_lists(std::vector<task_event>& events,
                                            std::string_view hostname,
                                            int64_t& clock, size_t limit) {
  std::vector<std::string> out;
  limit = std::max<size_t>(1, limit);
  // What every event of the batch adds after its own fields.
  std::string host;
  append_json_string(host, hostname);
  auto pid = std::to_string(::getpid());
  for (size_t i = 0; i < events.size(); i += limit) {
    std::string body = "[";
    for (size_t j = i; j < std::min(events.size(), i + limit); ++j) {
      auto& ev = events[j];
      if (j > i)
        body += ',';
      body += '{';
      body += ev.fields_json;
      if (!ev.fields_json.empty())
        body += ',';
      body += "\"type\":";
      append_json_string(body, ev.type);
      body += ",\"timestamp\":";
      append_json_number(body, ev.timestamp);
      body += ",\"hostname\":";
      body += host;
      body += ",\"utcoffset\":0,\"pid\":";
      body += pid;
      body += ",\"clock\":";
      body += std::to_string(++clock);
      body += '}';
    }
    body += ']';
    out.push_back(std::move(body));
  }
  return out;
}

std::string encode_celery_event(std::string_view type, value_map fields,
                                std::string_view hostname, int64_t clock,
                                double timestamp) {
  return encode_celery_event_envelope(
    celery_event_routing_key(type),
    celery_event_body(type, std::move(fields), hostname, clock, timestamp),
    hostname);
}

namespace {

// Appends `json`, a JSON text, as a JSON string literal. The body of every
// event message goes through here (about 7 KB per list of 24 task events,
// a quote every few bytes), so the common case is one pass into a buffer
// sized for the worst case: only `"` and `\` are escaped, which is all
// that vigil's own JSON (valid UTF-8, control characters already escaped)
// needs. Anything else (a control or non-ASCII byte) takes the general
// writer, which validates UTF-8.
void append_json_text_as_string(std::string& out, std::string_view json) {
  auto start = out.size();
  out.resize(start + 2 + 2 * json.size());
  char* o = out.data() + start;
  *o++ = '"';
  for (unsigned char c : json) {
    if (c < 0x20 || c >= 0x80) {
      out.resize(start);
      append_json_string(out, json);
      return;
    }
    if (c == '"' || c == '\\')
      *o++ = '\\';
    *o++ = static_cast<char>(c);
  }
  *o++ = '"';
  out.resize(static_cast<size_t>(o - out.data()));
}

} // namespace

std::string encode_celery_event_envelope(std::string_view routing_key,
                                         std::string_view body_json,
                                         std::string_view hostname) {
  // Written directly, in encode_json's compact spelling of kombu's envelope
  // (the keys in this order). The JSON text as it is, no body_encoding:
  // kombu's Redis transport then hands the body over undecoded, and base64
  // would only cost a third more bytes and an encoding pass per event batch.
  std::string out;
  out.reserve(body_json.size() + body_json.size() / 4 + 320);
  out += "{\"body\":";
  append_json_text_as_string(out, body_json);
  out += ",\"content-encoding\":\"utf-8\",\"content-type\":"
         "\"application/json\",\"headers\":{\"hostname\":";
  append_json_string(out, hostname);
  out += "},\"properties\":{\"delivery_mode\":1,\"delivery_info\":"
         "{\"exchange\":\"celeryev\",\"routing_key\":";
  append_json_string(out, routing_key);
  out += "},\"priority\":0,\"delivery_tag\":";
  append_json_string(out, new_uuid4());
  out += "}}";
  return out;
}

value_map worker_event_fields(double freq, int64_t active, int64_t processed) {
  double load[3] = {0, 0, 0};
  if (::getloadavg(load, 3) != 3)
    load[0] = load[1] = load[2] = 0;
  value_array loadavg;
  for (double l : load)
    loadavg.emplace_back(static_cast<double>(static_cast<int64_t>(l * 100)) / 100);
  value_map m;
  m.emplace_back("freq", freq);
  m.emplace_back("active", active);
  m.emplace_back("processed", processed);
  m.emplace_back("loadavg", std::move(loadavg));
  m.emplace_back("sw_ident", "vigil");
  m.emplace_back("sw_ver", "0.1");
  m.emplace_back("sw_sys", "Linux");
  return m;
}

} // namespace vigil
