#include "config/alert_rules_config.hpp"

#include <charconv>
#include <set>

#include "messages/errors.hpp"

namespace vigil {

namespace {

// yaml-cpp throws on the type of a node that is not there (a missing
// key): these answer false instead.
bool is_scalar(const YAML::Node& n) {
  return n.IsDefined() && n.IsScalar();
}
bool is_map(const YAML::Node& n) {
  return n.IsDefined() && n.IsMap();
}
bool is_seq(const YAML::Node& n) {
  return n.IsDefined() && n.IsSequence();
}
bool is_null(const YAML::Node& n) {
  return !n.IsDefined() || n.IsNull();
}

caf::error bad(std::string text) {
  return caf::make_error(errc::bad_config, std::move(text));
}

constexpr std::string_view condition_names
  = "first_seen, regression, every_event, event_frequency, users_frequency";

// An integer scalar in [min, max], else nullopt.
std::optional<int64_t> int_in(const YAML::Node& node, int64_t min,
                              int64_t max) {
  if (!is_scalar(node))
    return std::nullopt;
  const auto& s = node.Scalar();
  int64_t x = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), x);
  if (s.empty() || res.ec != std::errc{} || res.ptr != s.data() + s.size()
      || x < min || x > max)
    return std::nullopt;
  return x;
}

std::string shown(const YAML::Node& node) {
  if (is_scalar(node))
    return "'" + node.Scalar() + "'";
  return is_map(node) ? "a map" : is_seq(node) ? "a list" : "nothing";
}

// Fails on a key of the map `node` not in `known`.
caf::error only_keys(const YAML::Node& node, const std::string& path,
                     std::initializer_list<std::string_view> known) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    auto key = is_scalar(it->first) ? it->first.Scalar() : std::string{};
    bool ok = false;
    std::string names;
    for (auto k : known) {
      ok = ok || k == key;
      names += (names.empty() ? "" : ", ") + std::string{k};
    }
    if (!ok)
      return bad(path + ": unknown key '" + key + "' (expected " + names
                 + ")");
  }
  return {};
}

// `{value, interval}` of a frequency condition.
caf::error read_frequency(const YAML::Node& opts, const std::string& path,
                          alert_condition& c) {
  if (!is_map(opts))
    return bad(path + ": expected a map {value, interval}");
  if (auto err = only_keys(opts, path, {"value", "interval"}))
    return err;
  auto v = opts["value"];
  if (!v.IsDefined() || is_null(v))
    return bad(path + ": value: is required (the count to exceed)");
  auto n = int_in(v, 0, int64_t{1} << 53);
  if (!n)
    return bad(path + ": value: expected an integer >= 0, got " + shown(v));
  c.value = *n;
  auto iv = opts["interval"];
  c.interval = iv.IsDefined() && is_scalar(iv) ? iv.Scalar() : "1h";
  if (iv.IsDefined() && !is_null(iv) && !is_scalar(iv))
    return bad(path + ": interval: expected one of "
               + std::string{alert_interval_names()});
  auto secs = alert_interval_secs(c.interval);
  if (!secs)
    return bad(path + ": interval: unknown interval '" + c.interval
               + "' (expected " + std::string{alert_interval_names()} + ")");
  c.interval_secs = *secs;
  return {};
}

caf::error read_condition(const YAML::Node& node, const std::string& path,
                          alert_condition& c) {
  std::string name;
  YAML::Node opts;
  if (is_scalar(node)) {
    name = node.Scalar();
  } else if (is_map(node) && node.size() == 1) {
    name = node.begin()->first.Scalar();
    opts = node.begin()->second;
  } else {
    return bad(path + ": expected a condition name or a map of one ("
               + std::string{condition_names} + ")");
  }
  using k = alert_condition_kind;
  for (auto kind : {k::first_seen, k::regression, k::every_event,
                    k::event_frequency, k::users_frequency}) {
    if (name != to_string(kind))
      continue;
    c.kind = kind;
    if (kind == k::event_frequency || kind == k::users_frequency)
      return read_frequency(opts, path + ": " + name, c);
    if (opts.IsDefined() && !is_null(opts)
        && !(is_map(opts) && opts.size() == 0))
      return bad(path + ": " + name + ": takes no options");
    return {};
  }
  return bad(path + ": unknown condition '" + name + "' (expected "
             + std::string{condition_names} + ")");
}

caf::error read_filter(const YAML::Node& node, const std::string& path,
                       alert_filter& f) {
  if (!is_map(node) || node.size() != 1)
    return bad(path + ": expected a map of one filter (level, tags)");
  auto name = node.begin()->first.Scalar();
  auto opts = node.begin()->second;
  auto fpath = path + ": " + name;
  if (name == "level") {
    f.kind = alert_filter::level;
    if (!is_map(opts))
      return bad(fpath + ": expected a map {match, level}");
    if (auto err = only_keys(opts, fpath, {"match", "level"}))
      return err;
    auto m = opts["match"];
    std::string match = m.IsDefined() && is_scalar(m) ? m.Scalar() : "gte";
    if (match == "gte")
      f.match = level_match::gte;
    else if (match == "eq")
      f.match = level_match::eq;
    else if (match == "lte")
      f.match = level_match::lte;
    else
      return bad(fpath + ": match: unknown match '" + match
                 + "' (expected gte, eq, lte)");
    auto l = opts["level"];
    auto n = is_scalar(l) ? alert_level_number(l.Scalar()) : std::nullopt;
    if (!n)
      return bad(fpath + ": level: expected debug, info, warning, error or "
                         "fatal, got "
                 + shown(l));
    f.level_number = *n;
    return {};
  }
  if (name == "tags") {
    f.kind = alert_filter::tag;
    if (!is_map(opts))
      return bad(fpath + ": expected a map {key, value}");
    if (auto err = only_keys(opts, fpath, {"key", "value", "match"}))
      return err;
    auto m = opts["match"];
    if (m.IsDefined() && !(is_scalar(m) && m.Scalar() == "eq"))
      return bad(fpath + ": match: only eq is supported, got " + shown(m));
    auto key = opts["key"];
    auto val = opts["value"];
    if (!is_scalar(key) || key.Scalar().empty())
      return bad(fpath + ": key: expected a non-empty string");
    if (!is_scalar(val))
      return bad(fpath + ": value: expected a string");
    f.key = key.Scalar();
    f.value = val.Scalar();
    return {};
  }
  return bad(path + ": unknown filter '" + name + "' (expected level, tags)");
}

caf::error read_match(const YAML::Node& rule, const char* key,
                      const std::string& path, bool allow_none,
                      alert_match& out) {
  auto node = rule[key];
  if (!node.IsDefined() || is_null(node))
    return {};
  auto s = is_scalar(node) ? node.Scalar() : std::string{};
  if (s == "all")
    out = alert_match::all;
  else if (s == "any")
    out = alert_match::any;
  else if (s == "none" && allow_none)
    out = alert_match::none;
  else
    return bad(path + ": " + key + ": expected "
               + (allow_none ? "all, any or none" : "all or any") + ", got "
               + shown(node));
  return {};
}

template <class T, class Read>
caf::error read_list(const YAML::Node& node, const std::string& path,
                     const char* what, std::vector<T>& out, Read read) {
  if (!is_seq(node))
    return bad(path + ": expected a list of " + what);
  for (size_t i = 0; i < node.size(); ++i) {
    T x;
    if (auto err = read(node[i], path + ": entry " + std::to_string(i + 1), x))
      return err;
    out.push_back(std::move(x));
  }
  return {};
}

caf::error read_rule(const YAML::Node& node, const std::string& path,
                     alert_rule& r) {
  if (!is_map(node))
    return bad(path + ": expected a map (id, label, conditions, filters, "
                      "frequency, action-match, filter-match)");
  if (auto err = only_keys(node, path,
                           {"id", "label", "conditions", "filters",
                            "frequency", "action-match", "filter-match"}))
    return err;
  auto id = node["id"];
  if (!is_scalar(id) || id.Scalar().empty())
    return bad(path + ": id: is required (a non-empty string)");
  r.id = id.Scalar();
  auto label = node["label"];
  if (label.IsDefined() && !is_null(label) && !is_scalar(label))
    return bad(path + ": label: expected a string");
  r.label = is_scalar(label) ? label.Scalar() : r.id;
  auto conds = node["conditions"];
  if (!conds.IsDefined() || is_null(conds)
      || (is_seq(conds) && conds.size() == 0))
    return bad(path + ": conditions: at least one is required ("
               + std::string{condition_names} + ")");
  if (auto err = read_list(conds, path + ": conditions", "conditions",
                           r.conditions, read_condition))
    return err;
  if (auto filters = node["filters"]; filters.IsDefined() && !is_null(filters))
    if (auto err = read_list(filters, path + ": filters", "filters (level, tags)",
                             r.filters, read_filter))
      return err;
  if (auto freq = node["frequency"]; freq.IsDefined() && !is_null(freq)) {
    auto n = int_in(freq, 1, 43200);
    if (!n)
      return bad(path + ": frequency: expected minutes from 1 to 43200 (30 "
                        "days), got "
                 + shown(freq));
    r.frequency_minutes = *n;
  }
  if (auto err = read_match(node, "action-match", path, false, r.action_match))
    return err;
  return read_match(node, "filter-match", path, true, r.filter_match);
}

} // namespace

caf::error read_alert_rules(const YAML::Node& project, const std::string& path,
                            std::vector<alert_rule>& out) {
  auto node = project["alert-rules"];
  if (!node.IsDefined() || is_null(node))
    return {};
  auto rpath = path + ": alert-rules";
  if (!is_seq(node))
    return bad(rpath + ": expected a list of rules (id, label, conditions, "
                       "filters, frequency)");
  std::vector<alert_rule> rules;
  std::set<std::string> ids;
  for (size_t i = 0; i < node.size(); ++i) {
    auto item = node[i];
    auto label = rpath + ": entry " + std::to_string(i + 1);
    if (is_map(item) && is_scalar(item["id"]))
      label += " (id '" + item["id"].Scalar() + "')";
    alert_rule r;
    if (auto err = read_rule(item, label, r))
      return err;
    if (!ids.insert(r.id).second)
      return bad(label + ": id: '" + r.id
                 + "' is used by another rule of this project");
    rules.push_back(std::move(r));
  }
  out = std::move(rules);
  return {};
}

} // namespace vigil
