#include "messages/sentry_envelope.hpp"

#include <algorithm>
#include <cstdint>

#include <simdjson.h>

#include "messages/errors.hpp"

namespace vigil {

namespace {

namespace dom = simdjson::dom;

/// Header lines are small; a longer one is hostile, not a real SDK's.
constexpr size_t max_header_line = 64 * 1024;

/// Depth for header lines: real ones are flat or nearly so (trace context).
constexpr size_t header_depth = 32;

caf::error malformed(std::string text) {
  return caf::make_error(errc::malformed, std::move(text));
}

std::string where(size_t index) {
  return "envelope item " + std::to_string(index);
}

/// Returns the line starting at `pos` (without '\n' or a trailing '\r') and
/// advances `pos` past its '\n' (or to the end).
std::string_view next_line(std::string_view body, size_t& pos) {
  auto nl = body.find('\n', pos);
  auto end = nl == std::string_view::npos ? body.size() : nl;
  auto line = body.substr(pos, end - pos);
  pos = nl == std::string_view::npos ? body.size() : nl + 1;
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  return line;
}

bool blank(std::string_view line) {
  for (char c : line)
    if (c != ' ' && c != '\t' && c != '\r')
      return false;
  return true;
}

/// Parses a header line into a JSON object; `what` names it in errors.
caf::expected<dom::object> parse_header(dom::parser& parser,
                                        std::string_view line,
                                        const std::string& what) {
  if (line.size() > max_header_line)
    return caf::make_error(errc::too_large,
                           what + " header longer than "
                             + std::to_string(max_header_line) + " bytes");
  dom::element el;
  if (auto ec = parser.parse(line.data(), line.size(), true).get(el);
      ec != simdjson::SUCCESS)
    return malformed(what + " header is not valid JSON: "
                     + simdjson::error_message(ec));
  dom::object obj;
  if (el.get_object().get(obj) != simdjson::SUCCESS)
    return malformed(what + " header is not a JSON object");
  return obj;
}

std::optional<std::string> string_field(dom::object obj,
                                        std::string_view key) {
  std::string_view s;
  if (obj.at_key(key).get_string().get(s) != simdjson::SUCCESS)
    return std::nullopt;
  return std::string{s};
}

} // namespace

caf::expected<sentry_envelope> parse_envelope(std::string_view body,
                                              size_t max_items) {
  thread_local dom::parser parser;
  if (parser.max_depth() != header_depth
      && parser.allocate(4096, header_depth) != simdjson::SUCCESS) {
    parser = dom::parser{};
    return caf::make_error(errc::too_large, "cannot allocate a JSON parser");
  }
  struct release_guard {
    dom::parser& p;
    ~release_guard() {
      if (p.capacity() > 2 * max_header_line)
        p = dom::parser{};
    }
  } guard{parser};

  size_t pos = 0;
  auto head_line = next_line(body, pos);
  if (blank(head_line))
    return malformed("envelope header line is empty");
  sentry_envelope out;
  {
    auto head = parse_header(parser, head_line, "envelope");
    if (!head)
      return std::move(head.error());
    out.event_id = string_field(*head, "event_id");
    out.dsn = string_field(*head, "dsn");
  }
  while (pos < body.size()) {
    auto line = next_line(body, pos);
    if (blank(line))
      continue;
    auto index = out.items.size();
    if (index >= max_items)
      return caf::make_error(errc::too_large,
                             "envelope has more than "
                               + std::to_string(max_items) + " items");
    auto head = parse_header(parser, line, where(index));
    if (!head)
      return std::move(head.error());
    envelope_item item;
    auto type = string_field(*head, "type");
    if (!type || type->empty())
      return malformed(where(index) + " header has no \"type\"");
    item.type = std::move(*type);
    if (auto ct = string_field(*head, "content_type"))
      item.content_type = std::move(*ct);
    if (auto name = string_field(*head, "filename"))
      item.filename = std::move(*name);
    if (auto kind = string_field(*head, "attachment_type"))
      item.attachment_type = std::move(*kind);
    dom::element count_el;
    if (head->at_key("item_count").get(count_el) == simdjson::SUCCESS
        && !count_el.is_null()) {
      uint64_t count = 0;
      if (count_el.get_uint64().get(count) != simdjson::SUCCESS)
        return malformed(where(index) + " (" + item.type
                         + "): \"item_count\" is not a non-negative "
                           "integer");
      item.item_count = count;
    }
    dom::element len_el;
    if (head->at_key("length").get(len_el) == simdjson::SUCCESS
        && !len_el.is_null()) {
      uint64_t len = 0;
      if (len_el.get_uint64().get(len) != simdjson::SUCCESS)
        return malformed(where(index) + " (" + item.type
                         + "): \"length\" is not a non-negative integer");
      auto remaining = body.size() - pos;
      if (len > remaining)
        return malformed(where(index) + " (" + item.type + "): length "
                         + std::to_string(len) + " exceeds the remaining "
                         + std::to_string(remaining)
                         + " bytes (truncated envelope)");
      item.payload.assign(body.substr(pos, len));
      pos += len;
      if (pos < body.size() && body[pos] == '\n')
        ++pos;
    } else {
      auto nl = body.find('\n', pos);
      auto end = nl == std::string_view::npos ? body.size() : nl;
      item.payload.assign(body.substr(pos, end - pos));
      pos = nl == std::string_view::npos ? body.size() : nl + 1;
    }
    out.items.push_back(std::move(item));
  }
  return out;
}

std::string_view item_category(std::string_view type) {
  struct entry {
    std::string_view type;
    std::string_view category;
  };
  static constexpr entry table[] = {
    {"event", "error"},
    {"transaction", "transaction"},
    {"security", "security"},
    {"raw_security", "security"},
    {"attachment", "attachment"},
    {"session", "session"},
    {"sessions", "session"},
    {"profile", "profile"},
    {"profile_chunk", "profile_chunk"},
    {"replay_event", "replay"},
    {"replay_recording", "replay"},
    {"replay_video", "replay"},
    {"check_in", "monitor"},
    {"user_report", "user_report"},
    {"feedback", "user_report_v2"},
    {"span", "span"},
    {"otel_span", "span"},
    {"log", "log_item"},
  };
  for (auto& e : table)
    if (e.type == type)
      return e.category;
  return {};
}

int64_t item_quantity(const envelope_item& item) {
  if (item.type == "attachment")
    return std::max<int64_t>(1, static_cast<int64_t>(item.payload.size()));
  if (item.item_count)
    return static_cast<int64_t>(
      std::min<uint64_t>(*item.item_count, INT64_MAX));
  return 1;
}

} // namespace vigil
