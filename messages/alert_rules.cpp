#include "messages/alert_rules.hpp"

#include <algorithm>
#include <cctype>

#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/value.hpp"

namespace vigil {

const char* to_string(alert_condition_kind x) {
  switch (x) {
    case alert_condition_kind::first_seen:
      return "first_seen";
    case alert_condition_kind::regression:
      return "regression";
    case alert_condition_kind::every_event:
      return "every_event";
    case alert_condition_kind::event_frequency:
      return "event_frequency";
    case alert_condition_kind::users_frequency:
      return "users_frequency";
  }
  return "?";
}

const char* to_string(alert_match x) {
  switch (x) {
    case alert_match::all:
      return "all";
    case alert_match::any:
      return "any";
    case alert_match::none:
      return "none";
  }
  return "?";
}

alert_rule default_alert_rule() {
  alert_rule r;
  r.id = "default";
  r.label = "Send a notification for new issues";
  r.conditions.push_back(alert_condition{});
  r.frequency_minutes = 30;
  return r;
}

namespace {

// Sentry's frequency intervals (sentry.rules.conditions.event_frequency).
constexpr std::pair<std::string_view, int64_t> intervals[] = {
  {"1m", 60},       {"5m", 300},     {"15m", 900},      {"1h", 3600},
  {"1d", 86400},    {"1w", 604800},  {"30d", 2592000},
};

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

} // namespace

std::optional<int64_t> alert_interval_secs(std::string_view name) {
  for (auto [n, secs] : intervals)
    if (n == name)
      return secs;
  return std::nullopt;
}

std::string_view alert_interval_names() {
  return "1m, 5m, 15m, 1h, 1d, 1w, 30d";
}

std::optional<int> alert_level_number(std::string_view name) {
  auto n = lower(name);
  if (n == "debug")
    return 10;
  if (n == "info")
    return 20;
  if (n == "warning" || n == "warn")
    return 30;
  if (n == "error")
    return 40;
  if (n == "fatal")
    return 50;
  return std::nullopt;
}

caf::expected<alert_event_facts>
parse_alert_event_facts(std::string_view json) {
  auto doc = decode_json(json);
  if (!doc)
    return std::move(doc.error());
  if (!doc->is_map())
    return caf::make_error(errc::malformed, "the event is not a JSON object");
  alert_event_facts out;
  auto add = [&](const std::string& k, const value& v) {
    if (v.is_text())
      out.tags.emplace_back(k, v.as_text());
  };
  if (auto* tags = doc->find("tags")) {
    if (tags->is_map()) {
      for (const auto& [k, v] : tags->as_map())
        add(k, v);
    } else if (tags->is_array()) {
      for (const auto& pair : tags->as_array())
        if (pair.is_array() && pair.as_array().size() == 2
            && pair.as_array()[0].is_text())
          add(pair.as_array()[0].as_text(), pair.as_array()[1]);
    }
  }
  if (auto* level = doc->find("level"); level && level->is_text())
    out.level = level->as_text();
  // Sentry's normalization tags these too (event.tags carries them).
  out.tags.emplace_back("level", out.level);
  for (const char* key : {"environment", "release"})
    if (auto* v = doc->find(key); v && v->is_text() && !v->as_text().empty())
      out.tags.emplace_back(key, v->as_text());
  return out;
}

caf::expected<bool> alert_condition_passes(const alert_condition& c,
                                           const alert_inputs& in) {
  switch (c.kind) {
    case alert_condition_kind::first_seen:
      return in.is_new;
    case alert_condition_kind::regression:
      return in.is_regression;
    case alert_condition_kind::every_event:
      return true;
    case alert_condition_kind::event_frequency:
    case alert_condition_kind::users_frequency: {
      if (in.is_new && c.value > 1)
        return false;
      if (!in.count)
        return false;
      auto n = in.count(c.kind, c.interval_secs);
      if (!n)
        return std::move(n.error());
      return *n > c.value;
    }
  }
  return false;
}

bool alert_filter_passes(const alert_filter& f, const alert_event_facts& ev) {
  if (f.kind == alert_filter::level) {
    auto n = alert_level_number(ev.level);
    if (!n)
      return false;
    switch (f.match) {
      case level_match::gte:
        return *n >= f.level_number;
      case level_match::eq:
        return *n == f.level_number;
      case level_match::lte:
        return *n <= f.level_number;
    }
    return false;
  }
  auto key = lower(f.key);
  auto want = lower(f.value);
  return std::any_of(ev.tags.begin(), ev.tags.end(), [&](const auto& kv) {
    return lower(kv.first) == key && lower(kv.second) == want;
  });
}

namespace {

// Combines `n` predicates by `m`, stopping as soon as the answer is known
// (so that a count is read only when it can change the answer).
template <class Pred>
caf::expected<bool> combine(alert_match m, size_t n, Pred pred) {
  for (size_t i = 0; i < n; ++i) {
    auto ok = pred(i);
    if (!ok)
      return std::move(ok.error());
    if (m == alert_match::all && !*ok)
      return false;
    if (m == alert_match::any && *ok)
      return true;
    if (m == alert_match::none && *ok)
      return false;
  }
  return m != alert_match::any || n == 0;
}

} // namespace

caf::expected<bool> alert_rule_passes(const alert_rule& rule,
                                      const alert_inputs& in) {
  auto conds = combine(rule.action_match, rule.conditions.size(),
                       [&](size_t i) {
                         return alert_condition_passes(rule.conditions[i], in);
                       });
  if (!conds || !*conds || rule.filters.empty())
    return conds;
  const alert_event_facts* ev = nullptr;
  if (in.event) {
    auto got = in.event();
    if (!got)
      return std::move(got.error());
    ev = *got;
  }
  if (ev == nullptr)
    return false;
  return combine(rule.filter_match, rule.filters.size(),
                 [&](size_t i) -> caf::expected<bool> {
                   return alert_filter_passes(rule.filters[i], *ev);
                 });
}

} // namespace vigil
