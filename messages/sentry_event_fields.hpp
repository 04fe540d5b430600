#pragma once

// Reading the members of a parsed Sentry event (simdjson DOM): what
// normalization (sentry_event.cpp) and grouping (sentry_grouping.cpp) both
// look at. Internal to messages/sentry_*.

#include <array>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace vigil::sentry_fields {

namespace dom = simdjson::dom;

/// The string value of `el`, or "" when it is not a string.
std::string_view get_string(dom::element el);

/// The string member `key` of `obj`, or "".
std::string_view member_string(dom::object obj, std::string_view key);

/// Member lookups: true and `out` set when `key` exists with that type.
bool member(dom::object obj, std::string_view key, dom::element& out);
bool member_object(dom::object obj, std::string_view key, dom::object& out);
bool member_array(dom::object obj, std::string_view key, dom::array& out);

/// Whether member `key` is the boolean true.
bool member_true(dom::object obj, std::string_view key);

/// The top-level members normalization reads, found in one pass over the
/// event: looking each up with `at_key` scans the keys again every time.
/// Like `at_key`, the first occurrence of a key wins.
class top_members {
public:
  explicit top_members(dom::object obj) : obj_(obj) {
    for (auto field : obj)
      for (size_t i = 0; i < names.size(); ++i)
        if (field.key == names[i]) {
          if (!found_[i]) {
            found_[i] = true;
            values_[i] = field.value;
          }
          break;
        }
  }

  bool get(std::string_view key, dom::element& out) const {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == key) {
        if (found_[i])
          out = values_[i];
        return found_[i];
      }
    return member(obj_, key, out);
  }

  std::string_view string(std::string_view key) const {
    dom::element el;
    return get(key, el) ? get_string(el) : std::string_view{};
  }

  bool object(std::string_view key, dom::object& out) const {
    dom::element el;
    return get(key, el) && el.get_object().get(out) == simdjson::SUCCESS;
  }

  bool array(std::string_view key, dom::array& out) const {
    dom::element el;
    return get(key, el) && el.get_array().get(out) == simdjson::SUCCESS;
  }

  size_t size() const {
    return obj_.size();
  }

private:
  // The IP normalization's members are here too: looking up an absent
  // member otherwise scans every key again.
  static constexpr std::array<std::string_view, 17> names{
    "event_id", "timestamp",   "level",       "platform",
    "type",     "exception",   "fingerprint", "transaction",
    "logentry", "message",     "project",     "received",
    "user",     "request",     "sentry.interfaces.User",
    "environment", "release"};
  dom::object obj_;
  std::array<dom::element, 17> values_{};
  std::array<bool, 17> found_{};
};

/// The exception values of an event: `exception.values` or, as old SDKs
/// send it, `exception` as a list (or a single exception object).
std::vector<dom::object> exception_values(const top_members& event);

/// The frames of one exception's stacktrace.
std::vector<dom::object> frames_of(dom::object exc);

/// The message of a message event: logentry.formatted, logentry.message,
/// then `message` as a string or as an object of the same shape.
std::string_view event_message(const top_members& event);

} // namespace vigil::sentry_fields
