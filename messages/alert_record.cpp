#include "messages/alert_record.hpp"

#include "messages/errors.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"

namespace vigil {

namespace {

constexpr int64_t record_version = 1;

caf::error bad_record(const std::string& what) {
  return caf::make_error(errc::malformed, "alert record: " + what);
}

} // namespace

std::string alert_timeline_key(uint64_t project_id) {
  return "mail:p:" + std::to_string(project_id);
}

std::string encode_alert_record(const alert_record& r) {
  value_array rules;
  rules.reserve(r.rule_ids.size());
  for (const auto& id : r.rule_ids)
    rules.emplace_back(id);
  value_map m{{"v", value{record_version}},
              {"event_id", value{r.event_id}},
              {"project_id", value{r.project_id}},
              {"group_id", value{r.group_id}},
              {"rule_ids", value{std::move(rules)}},
              {"timestamp", value{r.timestamp}}};
  return encode_msgpack(value{std::move(m)});
}

caf::expected<alert_record> decode_alert_record(std::string_view bytes) {
  auto doc = decode_msgpack(bytes);
  if (!doc)
    return bad_record(error_text(doc.error()));
  if (!doc->is_map())
    return bad_record("not a map");
  alert_record out;
  bool has_event = false;
  for (const auto& [key, x] : doc->as_map()) {
    if (key == "event_id") {
      if (!x.is_text())
        return bad_record("event_id must be a string");
      out.event_id = x.as_text();
      has_event = true;
    } else if (key == "project_id") {
      if (!x.is_int() || (x.kind() == value_kind::integer && x.as_int() < 0))
        return bad_record("project_id must be a non-negative integer");
      out.project_id = x.kind() == value_kind::uinteger
                         ? std::get<uint64_t>(x.data())
                         : static_cast<uint64_t>(x.as_int());
    } else if (key == "group_id") {
      if (x.kind() != value_kind::integer)
        return bad_record("group_id must be a 64-bit integer");
      out.group_id = x.as_int();
    } else if (key == "rule_ids") {
      if (!x.is_array())
        return bad_record("rule_ids must be a list of strings");
      for (const auto& id : x.as_array()) {
        if (!id.is_text())
          return bad_record("rule_ids must be a list of strings");
        out.rule_ids.push_back(id.as_text());
      }
    } else if (key == "timestamp") {
      if (!x.is_number())
        return bad_record("timestamp must be a number");
      out.timestamp = x.as_double();
    }
    // "v" and unknown keys: a newer writer's additions, ignored.
  }
  if (!has_event)
    return bad_record("event_id is missing");
  return out;
}

} // namespace vigil
