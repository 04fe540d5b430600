#include "messages/sentry_event.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_parser.hpp"
#include "messages/json_splice.hpp"
#include "messages/json_writer.hpp"
#include "messages/sentry_event_fields.hpp"
#include "messages/sentry_grouping.hpp"

namespace vigil {

using namespace sentry_fields;

namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
         || (c >= 'A' && c <= 'F');
}

char to_lower_ascii(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// -- timestamps ---------------------------------------------------------------

/// Reads a numeric or ISO-8601 timestamp; false if neither.
bool read_timestamp(dom::element el, double& out) {
  double d = 0;
  if (el.get_double().get(d) == simdjson::SUCCESS) {
    if (!std::isfinite(d))
      return false;
    out = d;
    return true;
  }
  std::string_view s;
  if (el.get_string().get(s) != simdjson::SUCCESS || s.empty())
    return false;
  if (auto us = parse_iso8601(s)) {
    out = static_cast<double>(*us) / 1e6;
    return true;
  }
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec == std::errc{} && end == s.data() + s.size() && std::isfinite(d)) {
    out = d;
    return true;
  }
  return false;
}

void append_number(std::string& out, double x) {
  if (!std::isfinite(x))
    x = 0;
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), x);
  if (ec != std::errc{}) {
    out += '0';
    return;
  }
  out.append(buf, end);
}

// -- error positions ----------------------------------------------------------

/// A SAX handler that builds nothing: only the position of a syntax error
/// is wanted, which simdjson does not report.
struct error_locator : nlohmann::json_sax<nlohmann::json> {
  size_t position = 0;
  std::string what;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t pos, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    position = pos;
    what = ex.what();
    return false;
  }
};

caf::error json_error(std::string_view text, simdjson::error_code ec) {
  error_locator loc;
  try {
    nlohmann::json::sax_parse(text.begin(), text.end(), &loc,
                              nlohmann::json::input_format_t::json, false);
  } catch (...) {
    // sax_parse reports through the handler; nothing else is expected.
  }
  if (loc.position > 0)
    return caf::make_error(errc::malformed,
                           "malformed JSON at byte "
                             + std::to_string(loc.position) + ": "
                             + simdjson::error_message(ec));
  return caf::make_error(errc::malformed, std::string{"malformed JSON: "}
                                            + simdjson::error_message(ec));
}

// -- IP addresses --------------------------------------------------------------

constexpr std::string_view auto_ip = "{{auto}}";

std::string quoted_text(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

/// Relay's normalize_ip_addresses on the top-level `request` and `user`,
/// as edits of those members. Returns the user's address as the stored
/// document ends up with it ("" when none).
std::string resolve_ip_addresses(const top_members& top,
                                 std::string_view platform,
                                 std::string_view client_ip,
                                 std::vector<json_member_edit>& edits) {
  // request.env.REMOTE_ADDR: "{{auto}}" resolved; a valid one backs the
  // user's address.
  std::string http_ip;
  dom::object request, env;
  if (top.object("request", request)
      && member_object(request, "env", env)) {
    auto remote = member_string(env, "REMOTE_ADDR");
    if (remote == auto_ip && !client_ip.empty()) {
      http_ip = std::string{client_ip};
      edits.push_back(
        {"request", with_member(request, "env",
                                with_member(env, "REMOTE_ADDR",
                                            quoted_text(client_ip)))});
    } else if (is_ip_address(remote)) {
      http_ip = std::string{remote};
    }
  }
  // The user interface, under its legacy name if only that is there.
  std::string_view user_key = "user";
  dom::element user_el;
  if (!top.get("user", user_el)
      && top.get("sentry.interfaces.User", user_el))
    user_key = "sentry.interfaces.User";
  dom::object user;
  bool has_user = false;
  if (top.get(user_key, user_el)) {
    if (user_el.get_object().get(user) == simdjson::SUCCESS)
      has_user = true;
    else if (!user_el.is_null())
      return {}; // not an interface Relay would read
  }
  dom::element ip_el;
  bool has_ip = has_user && member(user, "ip_address", ip_el)
                && !ip_el.is_null();
  std::string ip;
  if (has_ip) {
    auto own = get_string(ip_el);
    if (own != auto_ip)
      return std::string{own};
    if (client_ip.empty())
      return {}; // "{{auto}}" left as it is: no address
    ip = std::string{client_ip};
  } else if (!http_ip.empty()) {
    ip = std::move(http_ip);
  } else if (!client_ip.empty()
             && (platform == "javascript" || platform == "cocoa"
                 || platform == "objc")) {
    ip = std::string{client_ip};
  } else {
    return {};
  }
  auto value = quoted_text(ip);
  if (has_user)
    edits.push_back({user_key, with_member(user, "ip_address", value)});
  else
    edits.push_back({user_key, "{\"ip_address\":" + value + "}"});
  return ip;
}

/// Sentry's EventUser.tag_value: the first of id, email, username and ip
/// address that is set, with its prefix.
std::string user_tag(const top_members& top, std::string_view ip) {
  dom::element user_el;
  dom::object user;
  if ((top.get("user", user_el)
       || top.get("sentry.interfaces.User", user_el))
      && user_el.get_object().get(user) == simdjson::SUCCESS) {
    dom::element id;
    if (member(user, "id", id)) {
      // Relay reads the id leniently: a number is its text.
      int64_t i = 0;
      uint64_t u = 0;
      if (auto s = get_string(id); !s.empty())
        return "id:" + std::string{s};
      if (id.get_int64().get(i) == simdjson::SUCCESS)
        return "id:" + std::to_string(i);
      if (id.get_uint64().get(u) == simdjson::SUCCESS)
        return "id:" + std::to_string(u);
    }
    if (auto email = member_string(user, "email"); !email.empty())
      return "email:" + std::string{email};
    if (auto name = member_string(user, "username"); !name.empty())
      return "username:" + std::string{name};
  }
  if (!ip.empty())
    return "ip:" + std::string{ip};
  return {};
}

/// The User-Agent of `request.headers` (an object, or a list of [name,
/// value] pairs as some SDKs send it), names compared without case.
std::string_view user_agent_of(dom::object request) {
  auto is_ua = [](std::string_view k) {
    constexpr std::string_view want = "user-agent";
    if (k.size() != want.size())
      return false;
    for (size_t i = 0; i < k.size(); ++i) {
      char c = k[i];
      if (c >= 'A' && c <= 'Z')
        c = static_cast<char>(c - 'A' + 'a');
      if (c != want[i])
        return false;
    }
    return true;
  };
  dom::element headers;
  if (!member(request, "headers", headers))
    return {};
  dom::object obj;
  if (headers.get_object().get(obj) == simdjson::SUCCESS) {
    for (auto field : obj)
      if (is_ua(field.key))
        return get_string(field.value);
    return {};
  }
  dom::array pairs;
  if (headers.get_array().get(pairs) != simdjson::SUCCESS)
    return {};
  for (auto pair : pairs) {
    dom::array kv;
    if (pair.get_array().get(kv) == simdjson::SUCCESS && kv.size() == 2
        && is_ua(get_string(kv.at(0).value_unsafe())))
      return get_string(kv.at(1).value_unsafe());
  }
  return {};
}

/// What the inbound filters read (see filter_facts).
filter_facts facts_of(const top_members& top,
                      const std::vector<dom::object>& excs,
                      std::string_view user_ip) {
  filter_facts f;
  f.release = std::string{top.string("release")};
  f.user_ip = std::string{user_ip};
  dom::object request;
  if (top.object("request", request)) {
    f.url = std::string{member_string(request, "url")};
    f.user_agent = std::string{user_agent_of(request)};
  }
  for (auto exc : excs) {
    auto type = member_string(exc, "type");
    auto value = member_string(exc, "value");
    std::string text{type};
    if (!type.empty() && !value.empty())
      text += ": ";
    text += value;
    if (!text.empty())
      f.messages.push_back(std::move(text));
  }
  if (auto m = event_message(top); !m.empty())
    f.messages.emplace_back(m);
  return f;
}

} // namespace

std::string new_event_id() {
  auto id = new_uuid4();
  id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
  return id;
}

bool valid_environment_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..")
    return false;
  return name.find_first_of("\r\n\f\t/") == std::string_view::npos;
}

bool is_ip_address(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN)
    return false;
  std::string s{text};
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1
         || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

std::optional<std::string> normalize_event_id(std::string_view text) {
  std::string out;
  out.reserve(32);
  if (text.size() == 32) {
    for (char c : text) {
      if (!is_hex(c))
        return std::nullopt;
      out += to_lower_ascii(c);
    }
    return out;
  }
  if (text.size() == 36) {
    for (size_t i = 0; i < 36; ++i) {
      char c = text[i];
      if (i == 8 || i == 13 || i == 18 || i == 23) {
        if (c != '-')
          return std::nullopt;
      } else if (!is_hex(c)) {
        return std::nullopt;
      } else {
        out += to_lower_ascii(c);
      }
    }
    return out;
  }
  return std::nullopt;
}

caf::expected<normalized_event>
normalize_event(std::string_view json, uint64_t project_id, double received,
                const normalize_options& opts) {
  const auto& event_id_hint = opts.event_id_hint;
  thread_local dom::parser parser;
  constexpr size_t parser_depth = max_event_depth + 1;
  if (auto err = fit_json_parser(parser, json.size(), parser_depth, 4096))
    return err;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end: parse from a
  // padded per-thread copy (a string_view carries no padding).
  thread_local std::string padded;
  padded.reserve(json.size() + simdjson::SIMDJSON_PADDING);
  padded.assign(json);
  json_parser_release guard{parser, &padded};
  dom::element root;
  auto ec = parser.parse(padded.data(), json.size(), false).get(root);
  if (ec == simdjson::NUMBER_ERROR) {
    // Valid JSON may hold numbers simdjson cannot represent (Python sends
    // big integers as digits). Fields are read from a copy where such
    // numbers read as 0; the stored document keeps the original text.
    if (auto tamed = tame_big_integers(json); tamed.size() == json.size()) {
      padded.assign(tamed);
      ec = parser.parse(padded.data(), tamed.size(), false).get(root);
    }
  }
  if (ec != simdjson::SUCCESS) {
    if (ec == simdjson::DEPTH_ERROR)
      return caf::make_error(errc::too_large,
                             "event nesting deeper than "
                               + std::to_string(max_event_depth));
    if (ec == simdjson::CAPACITY || ec == simdjson::MEMALLOC)
      return caf::make_error(errc::too_large, "event too large to parse");
    return json_error(json, ec);
  }
  dom::object event;
  if (root.get_object().get(event) != simdjson::SUCCESS)
    return caf::make_error(errc::malformed, "event is not a JSON object");
  normalized_event out;
  std::vector<json_member_edit> edits;

  // event_id: own, hint, or new; rewritten when absent or not canonical.
  top_members top{event};
  auto own_id = top.string("event_id");
  if (auto id = normalize_event_id(own_id)) {
    out.event_id = std::move(*id);
    if (out.event_id != own_id)
      edits.push_back({"event_id", quoted_text(out.event_id)});
  } else {
    std::optional<std::string> hinted;
    if (event_id_hint)
      hinted = normalize_event_id(*event_id_hint);
    out.event_id = hinted ? std::move(*hinted) : new_event_id();
    edits.push_back({"event_id", quoted_text(out.event_id)});
  }

  edits.push_back({"project", std::to_string(project_id)});
  std::string received_text;
  append_number(received_text, received);
  edits.push_back({"received", received_text});

  dom::element ts;
  bool has_ts = top.get("timestamp", ts);
  if (has_ts && read_timestamp(ts, out.timestamp)) {
    // keep the event's own text
  } else {
    out.timestamp = std::isfinite(received) ? received : 0;
    edits.push_back({"timestamp", received_text});
  }

  out.transaction = top.string("type") == "transaction";
  if (opts.transaction && !out.transaction) {
    out.transaction = true;
    edits.push_back({"type", quoted_text("transaction")});
  }
  out.level = top.string("level");
  if (out.level.empty()) {
    // Relay's default: "info" for transactions, "error" for the rest.
    out.level = out.transaction ? "info" : "error";
    edits.push_back({"level", quoted_text(out.level)});
  }
  out.platform = top.string("platform");
  if (out.platform.empty()) {
    out.platform = "other";
    edits.push_back({"platform", quoted_text(out.platform)});
  }

  auto user_ip
    = resolve_ip_addresses(top, top.string("platform"), opts.client_ip, edits);
  out.user_identity = user_tag(top, user_ip);
  if (auto env = top.string("environment"); valid_environment_name(env))
    out.environment = std::string{env};

  auto excs = exception_values(top);
  if (opts.filter_facts)
    out.facts = facts_of(top, excs, user_ip);
  out.grouping_hash = grouping_hash(top, excs);
  out.title = make_title(top, excs);
  out.culprit = make_culprit(top, excs);
  for (auto& e : edits) {
    dom::element ignored;
    e.present = top.get(e.key, ignored);
  }
  auto doc = splice_members(json, edits);
  if (!doc)
    return caf::make_error(errc::malformed, "event is not a JSON object");
  out.json = std::move(*doc);
  return out;
}

} // namespace vigil
