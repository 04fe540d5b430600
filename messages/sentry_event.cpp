#include "messages/sentry_event.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <vector>

#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_parser.hpp"
#include "messages/json_string.hpp"
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

// -- raw text scanning --------------------------------------------------------

// simdjson's DOM keeps no source offsets, so the splice points are found by
// walking the top level of the (already validated) text: it only has to
// skip strings and balanced containers.

/// Span of one top-level member's value in the original text.
struct member_span {
  /// Unescaped, as every JSON reader sees it: `"proj\u0065ct"` is
  /// `project`.
  std::string key;
  size_t value_begin = 0;
  size_t value_end = 0;
};

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size()
         && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    ++i;
  return i;
}

/// `i` is at the opening quote; returns the index past the closing quote.
size_t skip_string(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\')
      ++i;
    else if (s[i] == '"')
      return i + 1;
  }
  return s.size();
}

/// Returns the index past the value starting at `i`.
size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size())
    return i;
  if (s[i] == '"')
    return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    size_t depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        continue;
      }
      if (c == '{' || c == '[')
        ++depth;
      else if ((c == '}' || c == ']') && --depth == 0)
        return i + 1;
      ++i;
    }
    return i;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']'
         && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
    ++i;
  return i;
}

/// The text of a JSON string's contents (between the quotes) with its
/// escapes decoded, so that keys compare as readers see them. The text was
/// validated by simdjson; a lone surrogate becomes U+FFFD.
std::string unescape_json(std::string_view raw) {
  if (raw.find('\\') == std::string_view::npos)
    return std::string{raw};
  std::string out;
  out.reserve(raw.size());
  append_unescaped_json(out, raw);
  return out;
}

/// Members of the top-level object and the index of its closing brace.
struct top_level {
  std::vector<member_span> members;
  size_t close = 0;
};

/// Requires `s` to be a valid JSON object (checked by simdjson before).
bool scan_top_level(std::string_view s, top_level& out) {
  size_t i = skip_ws(s, 0);
  if (i >= s.size() || s[i] != '{')
    return false;
  i = skip_ws(s, i + 1);
  while (i < s.size() && s[i] != '}') {
    if (s[i] != '"')
      return false;
    auto key_end = skip_string(s, i);
    if (key_end > s.size() || key_end < i + 2)
      return false;
    member_span m;
    m.key = unescape_json(s.substr(i + 1, key_end - i - 2));
    i = skip_ws(s, key_end);
    if (i >= s.size() || s[i] != ':')
      return false;
    i = skip_ws(s, i + 1);
    m.value_begin = i;
    m.value_end = skip_value(s, i);
    i = skip_ws(s, m.value_end);
    out.members.push_back(m);
    if (i < s.size() && s[i] == ',')
      i = skip_ws(s, i + 1);
  }
  if (i >= s.size())
    return false;
  out.close = i;
  return true;
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

// -- numbers out of range ----------------------------------------------------

/// Length of the JSON number token at `s[i]`, 0 if it is not one.
size_t number_token(std::string_view s, size_t i) {
  size_t j = i;
  auto digits = [&] {
    size_t k = j;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9')
      ++j;
    return j - k;
  };
  if (j < s.size() && s[j] == '-')
    ++j;
  if (j < s.size() && s[j] == '0')
    ++j;
  else if (digits() == 0)
    return 0;
  if (j < s.size() && s[j] == '.') {
    ++j;
    if (digits() == 0)
      return 0;
  }
  if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
    ++j;
    if (j < s.size() && (s[j] == '+' || s[j] == '-'))
      ++j;
    if (digits() == 0)
      return 0;
  }
  return j - i;
}

/// Returns `text` with every well-formed integer token beyond 64 bits
/// overwritten by "0" and spaces (same length).
std::string tame_numbers(std::string_view text) {
  std::string out{text};
  size_t i = 0;
  while (i < out.size()) {
    char c = out[i];
    if (c == '"') {
      i = skip_string(out, i);
      continue;
    }
    if (c != '-' && (c < '0' || c > '9')) {
      ++i;
      continue;
    }
    auto n = number_token(out, i);
    if (n == 0) {
      ++i;
      continue;
    }
    auto tok = std::string_view{out}.substr(i, n);
    // Only integers beyond 64 bits that still fit a double are tamed: a
    // number beyond a double is refused by the JSON readers downstream
    // (nlohmann: "number overflow"), so the event stays malformed.
    bool integral = tok.find_first_of(".eE") == std::string_view::npos;
    int64_t x = 0;
    uint64_t y = 0;
    double d = 0;
    bool big_integer
      = integral
        && std::from_chars(tok.data(), tok.data() + n, x).ec != std::errc{}
        && std::from_chars(tok.data(), tok.data() + n, y).ec != std::errc{}
        && std::from_chars(tok.data(), tok.data() + n, d).ec == std::errc{};
    if (big_integer) {
      out[i] = '0';
      std::fill(out.begin() + static_cast<ptrdiff_t>(i) + 1,
                out.begin() + static_cast<ptrdiff_t>(i + n), ' ');
    }
    i += n;
  }
  return out;
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

// -- the splice ---------------------------------------------------------------

/// One field to set in the stored document.
struct field_edit {
  std::string_view key;
  std::string value; // JSON text
};

/// Returns `text` with each edit's key set: existing members (every
/// occurrence) get their value replaced in place, missing ones are added
/// before the closing brace. Only when a member must be replaced is the
/// text scanned; the common case appends and copies.
caf::expected<std::string> splice(std::string_view text,
                                  const top_members& event,
                                  const std::vector<field_edit>& edits) {
  auto close = text.find_last_not_of(" \t\n\r");
  if (close == std::string_view::npos || text[close] != '}')
    return caf::make_error(errc::malformed, "event is not a JSON object");
  bool replace_any = false;
  for (auto& e : edits) {
    dom::element ignored;
    if (event.get(e.key, ignored))
      replace_any = true;
  }
  top_level top;
  if (replace_any && !scan_top_level(text, top))
    return caf::make_error(errc::malformed, "event is not a JSON object");
  struct replacement {
    size_t begin, end;
    const std::string* value;
  };
  std::vector<replacement> reps;
  std::string tail;
  bool has_members = event.size() > 0;
  for (auto& e : edits) {
    bool found = false;
    for (auto& m : top.members) {
      if (m.key == e.key) {
        found = true;
        reps.push_back({m.value_begin, m.value_end, &e.value});
      }
    }
    if (found)
      continue;
    if (has_members || !tail.empty())
      tail += ',';
    append_json_string(tail, e.key);
    tail += ':';
    tail += e.value;
  }
  std::sort(reps.begin(), reps.end(),
            [](auto& a, auto& b) { return a.begin < b.begin; });
  std::string out;
  out.reserve(text.size() + tail.size() + 64);
  size_t pos = 0;
  for (auto& r : reps) {
    out.append(text.substr(pos, r.begin - pos));
    out += *r.value;
    pos = r.end;
  }
  out.append(text.substr(pos, close - pos));
  out += tail;
  out.append(text.substr(close));
  return out;
}

std::string new_event_id() {
  auto id = new_uuid4();
  id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
  return id;
}

// -- IP addresses --------------------------------------------------------------

constexpr std::string_view auto_ip = "{{auto}}";

/// `obj` as JSON text with member `key` set to `value` (JSON text): every
/// occurrence replaced, appended when absent. The other members keep their
/// order; their values are written back as simdjson read them.
std::string object_with(dom::object obj, std::string_view key,
                        std::string_view value) {
  std::string out = "{";
  bool found = false;
  for (auto field : obj) {
    if (out.size() > 1)
      out += ',';
    append_json_string(out, field.key);
    out += ':';
    if (field.key == key) {
      found = true;
      out += value;
    } else {
      out += simdjson::minify(field.value);
    }
  }
  if (!found) {
    if (out.size() > 1)
      out += ',';
    append_json_string(out, key);
    out += ':';
    out += value;
  }
  out += '}';
  return out;
}

std::string quoted_text(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

/// Relay's normalize_ip_addresses on the top-level `request` and `user`,
/// as edits of those members.
void resolve_ip_addresses(const top_members& top, std::string_view platform,
                          std::string_view client_ip,
                          std::vector<field_edit>& edits) {
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
        {"request", object_with(request, "env",
                                object_with(env, "REMOTE_ADDR",
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
      return; // not an interface Relay would read
  }
  dom::element ip_el;
  bool has_ip = has_user && member(user, "ip_address", ip_el)
                && !ip_el.is_null();
  std::string ip;
  if (has_ip) {
    if (get_string(ip_el) != auto_ip || client_ip.empty())
      return;
    ip = std::string{client_ip};
  } else if (!http_ip.empty()) {
    ip = std::move(http_ip);
  } else if (!client_ip.empty()
             && (platform == "javascript" || platform == "cocoa"
                 || platform == "objc")) {
    ip = std::string{client_ip};
  } else {
    return;
  }
  auto value = quoted_text(ip);
  if (has_user)
    edits.push_back({user_key, object_with(user, "ip_address", value)});
  else
    edits.push_back({user_key, "{\"ip_address\":" + value + "}"});
}

} // namespace

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
    if (auto tamed = tame_numbers(json); tamed.size() == json.size()) {
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
  std::vector<field_edit> edits;

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

  resolve_ip_addresses(top, top.string("platform"), opts.client_ip, edits);

  auto excs = exception_values(top);
  out.grouping_hash = grouping_hash(top, excs);
  out.title = make_title(top, excs);
  out.culprit = make_culprit(top, excs);
  auto doc = splice(json, top, edits);
  if (!doc)
    return std::move(doc.error());
  out.json = std::move(*doc);
  return out;
}

} // namespace vigil
