#include "messages/sentry_event_fields.hpp"

namespace vigil::sentry_fields {

std::string_view get_string(dom::element el) {
  std::string_view out;
  if (el.get_string().get(out) != simdjson::SUCCESS)
    return {};
  return out;
}

std::string_view member_string(dom::object obj, std::string_view key) {
  dom::element el;
  if (obj.at_key(key).get(el) != simdjson::SUCCESS)
    return {};
  return get_string(el);
}

bool member(dom::object obj, std::string_view key, dom::element& out) {
  return obj.at_key(key).get(out) == simdjson::SUCCESS;
}

bool member_object(dom::object obj, std::string_view key, dom::object& out) {
  dom::element el;
  return member(obj, key, el) && el.get_object().get(out) == simdjson::SUCCESS;
}

bool member_array(dom::object obj, std::string_view key, dom::array& out) {
  dom::element el;
  return member(obj, key, el) && el.get_array().get(out) == simdjson::SUCCESS;
}

bool member_true(dom::object obj, std::string_view key) {
  dom::element el;
  bool b = false;
  return member(obj, key, el) && el.get_bool().get(b) == simdjson::SUCCESS
         && b;
}

/// The exception values of an event: `exception.values` or, as old SDKs
/// send it, `exception` as a list (or a single exception object).
std::vector<dom::object> exception_values(const top_members& event) {
  std::vector<dom::object> out;
  dom::element exc;
  if (!event.get("exception", exc))
    return out;
  dom::array values;
  dom::object obj;
  if (exc.get_object().get(obj) == simdjson::SUCCESS) {
    if (!member_array(obj, "values", values)) {
      if (!member_string(obj, "type").empty()
          || !member_string(obj, "value").empty())
        out.push_back(obj);
      return out;
    }
  } else if (exc.get_array().get(values) != simdjson::SUCCESS) {
    return out;
  }
  for (dom::element v : values) {
    dom::object x;
    if (v.get_object().get(x) == simdjson::SUCCESS)
      out.push_back(x);
  }
  return out;
}

std::vector<dom::object> frames_of(dom::object exc) {
  std::vector<dom::object> out;
  dom::object st;
  dom::array frames;
  if (!member_object(exc, "stacktrace", st)
      || !member_array(st, "frames", frames))
    return out;
  for (dom::element f : frames) {
    dom::object x;
    if (f.get_object().get(x) == simdjson::SUCCESS)
      out.push_back(x);
  }
  return out;
}

/// The message of a message event: logentry.formatted, logentry.message,
/// then `message` as a string or as an object of the same shape.
std::string_view event_message(const top_members& event) {
  dom::object obj;
  for (auto key : {"logentry", "message"}) {
    if (event.object(key, obj)) {
      for (auto sub : {"formatted", "message"})
        if (auto s = member_string(obj, sub); !s.empty())
          return s;
    } else if (auto s = event.string(key); !s.empty()) {
      return s;
    }
  }
  return {};
}

} // namespace vigil::sentry_fields
