#include "messages/buffer_keys.hpp"

#include <cstdio>
#include <ctime>

#include <boost/crc.hpp>
#include <simdjson.h>

#include "messages/errors.hpp"
#include "messages/json_parser.hpp"
#include "messages/json_writer.hpp"
#include "messages/md5.hpp"
#include "messages/python_repr.hpp"

namespace vigil {

buffer_value buffer_value::of_datetime(int64_t unix_us) {
  int64_t secs = unix_us / 1000000;
  int64_t micros = unix_us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    --secs;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%lld.%06lld", static_cast<long long>(secs),
                static_cast<long long>(micros));
  return {"dt", buf};
}

namespace {

// force_bytes(value): str(value) as UTF-8. A datetime's str is
// "YYYY-MM-DD HH:MM:SS[.ffffff]+00:00" (an aware Django datetime).
std::string coerced(const buffer_value& v) {
  if (v.type != "dt")
    return v.text;
  auto dot = v.text.find('.');
  long long secs = std::atoll(v.text.substr(0, dot).c_str());
  std::string micros = dot == std::string::npos ? "" : v.text.substr(dot + 1);
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  std::string out = buf;
  if (!micros.empty() && micros.find_first_not_of('0') != std::string::npos)
    out += "." + micros;
  return out + "+00:00";
}

uint32_t crc32_of(std::string_view s) {
  boost::crc_32_type crc; // zlib's (binascii.crc32's) CRC-32
  crc.process_bytes(s.data(), s.size());
  return crc.checksum();
}

caf::error bad(std::string text) {
  return caf::make_error(errc::malformed, std::move(text));
}

caf::expected<buffer_value> read_value(simdjson::dom::element e) {
  simdjson::dom::array pair;
  if (e.get_array().get(pair) || pair.size() != 2)
    return bad("buffer value: expected a [type, text] pair");
  std::string_view type, text;
  if (pair.at(0).get_string().get(type) || pair.at(1).get_string().get(text))
    return bad("buffer value: expected a [type, text] pair of strings");
  if (type != "i" && type != "f" && type != "s" && type != "dt" && type != "d")
    return bad("buffer value: unknown type '" + std::string{type}
               + "' (expected i, f, s, dt or d)");
  return buffer_value{std::string{type}, std::string{text}};
}

} // namespace

std::string buffer_row_key(std::string_view model,
                           const buffer_fields& filters) {
  std::string joined;
  for (const auto& [name, value] : filters) {
    if (!joined.empty())
      joined += '&';
    joined += name;
    joined += '=';
    joined += python_bytes_repr(coerced(value));
  }
  std::string out = "b:k:";
  out += model;
  out += ':';
  out += md5_hex(joined);
  return out;
}

std::string buffer_pending_key(std::string_view row_key, int partitions) {
  if (partitions <= 1)
    return "b:p";
  return buffer_partition_key(static_cast<int>(crc32_of(row_key) % partitions),
                              partitions);
}

std::string buffer_partition_key(int partition, int partitions) {
  if (partitions <= 1)
    return "b:p";
  return "b:p:" + std::to_string(partition);
}

std::string buffer_lock_key(std::string_view name) {
  return "l:" + std::string{name};
}

std::string buffer_counter_field(std::string_view column) {
  return "i+" + std::string{column};
}

std::string buffer_extra_field(std::string_view column) {
  return "e+" + std::string{column};
}

std::string encode_buffer_value(const buffer_value& v) {
  // Python's json.dumps separators, as Sentry writes it.
  std::string out = "[";
  append_json_string(out, v.type);
  out += ", ";
  append_json_string(out, v.text);
  out += ']';
  return out;
}

caf::expected<buffer_value> decode_buffer_value(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  if (auto err = fit_json_parser(parser, json.size(), 4))
    return err;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc))
    return bad("buffer value: not JSON");
  return read_value(doc);
}

std::string encode_buffer_fields(const buffer_fields& fields) {
  std::string out = "{";
  for (const auto& [name, value] : fields) {
    if (out.size() > 1)
      out += ", ";
    append_json_string(out, name);
    out += ": ";
    out += encode_buffer_value(value);
  }
  out += '}';
  return out;
}

caf::expected<buffer_fields> decode_buffer_fields(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  if (auto err = fit_json_parser(parser, json.size(), 4))
    return err;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (parser.parse(json.data(), json.size()).get(doc) || doc.get_object().get(obj))
    return bad("buffer filters: expected a JSON object");
  buffer_fields out;
  for (auto field : obj) {
    auto v = read_value(field.value);
    if (!v)
      return bad("buffer filters: " + std::string{field.key} + ": "
                 + error_text(v.error()));
    out.emplace(std::string{field.key}, std::move(*v));
  }
  return out;
}

} // namespace vigil
