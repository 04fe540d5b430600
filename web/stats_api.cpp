#include "web/stats_api.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "messages/errors.hpp"
#include "messages/text_excerpt.hpp"
#include "web/api_json.hpp"
#include "web/stats_query.hpp"

namespace vigil {

namespace {

/// A TSDB range query over `range` for all environments or one.
tsdb_query range_query(tsdb_model model, std::vector<tsdb_key> keys,
                       const stats_range& range,
                       std::optional<int64_t> environment_id = std::nullopt) {
  tsdb_query q;
  q.kind = tsdb_query_kind::range;
  q.model = model;
  q.keys = std::move(keys);
  q.range = {range.start, range.end, range.rollup, environment_id};
  return q;
}

caf::expected<tsdb_answer> ask(read_sources& src, const tsdb_query& q) {
  auto a = src.ask_tsdb(q);
  if (a && a->series.size() != q.keys.size())
    return caf::make_error(errc::malformed,
                           "the TSDB answered a series per key of another "
                           "query");
  return a;
}

http_response invalid_stat(std::string_view stat, std::string_view choices) {
  return json_error(400, "Invalid stat: " + excerpt(stat, 100) + " (expected "
                           + std::string{choices} + ")");
}

/// The v1 series form of the organization endpoint (`stat` given).
http_response organization_series(read_sources& src,
                                  const quota_catalog& catalog,
                                  uint64_t org_id, std::string_view query,
                                  const std::string& stat) {
  auto group = query_value(query, "group").value_or("organization");
  if (group != "organization" && group != "project")
    return json_error(400, "Invalid group: " + excerpt(group, 100)
                             + " (expected organization or project)");
  bool by_org = group == "organization";
  auto model = stat_model(stat, by_org);
  if (!model)
    return invalid_stat(stat, by_org ? "received, rejected or blacklisted"
                                     : "received, rejected, blacklisted or "
                                       "generated");
  std::vector<uint64_t> ids;
  if (by_org) {
    ids.push_back(org_id);
  } else {
    for (const auto& p : catalog.projects)
      if (p.organization == org_id)
        ids.push_back(p.id);
  }
  // Sentry's `id` filter: only these keys (repeatable).
  auto wanted = query_values(query, "id");
  if (!wanted.empty()) {
    std::vector<uint64_t> only;
    for (const auto& w : wanted) {
      uint64_t x = 0;
      auto res = std::from_chars(w.data(), w.data() + w.size(), x);
      if (w.empty() || res.ec != std::errc{} || res.ptr != w.data() + w.size())
        return json_error(400, "id must be a number: " + excerpt(w, 100));
      only.push_back(x);
    }
    std::erase_if(ids, [&](uint64_t x) {
      return std::find(only.begin(), only.end(), x) == only.end();
    });
  }
  if (ids.empty())
    return json_answer(nlohmann::json::array());
  auto range = parse_stats_range(query, src.rollups(), src.now());
  if (!range)
    return json_error(400, error_text(range.error()));
  std::vector<tsdb_key> keys;
  for (auto id : ids)
    keys.push_back(tsdb_key::of(static_cast<int64_t>(id)));
  auto a = ask(src, range_query(*model, std::move(keys), *range));
  if (!a)
    return unavailable("the TSDB", a.error());
  if (by_org)
    return json_answer(series_json(a->series[0]));
  auto out = nlohmann::json::object();
  for (size_t i = 0; i < ids.size(); ++i)
    out[std::to_string(ids[i])] = series_json(a->series[i]);
  return json_answer(out);
}

/// Keeps the names of `all` that `wanted` lists (all when empty); the first
/// unknown one is returned in `bad`.
std::vector<std::string_view>
pick(const std::vector<std::string_view>& all,
     const std::vector<std::string>& wanted, std::string& bad) {
  if (wanted.empty())
    return all;
  std::vector<std::string_view> out;
  for (auto x : all)
    if (std::find(wanted.begin(), wanted.end(), x) != wanted.end())
      out.push_back(x);
  for (const auto& w : wanted)
    if (std::find(all.begin(), all.end(), w) == all.end()) {
      bad = w;
      break;
    }
  return out;
}

std::string join(const std::vector<std::string_view>& xs) {
  std::string out;
  for (auto x : xs)
    out += (out.empty() ? "" : ", ") + std::string{x};
  return out;
}

} // namespace

std::optional<tsdb_model> stat_model(std::string_view stat, bool organization) {
  if (stat == "received")
    return organization ? tsdb_model::organization_total_received
                        : tsdb_model::project_total_received;
  if (stat == "rejected")
    return organization ? tsdb_model::organization_total_rejected
                        : tsdb_model::project_total_rejected;
  if (stat == "blacklisted")
    return organization ? tsdb_model::organization_total_blacklisted
                        : tsdb_model::project_total_blacklisted;
  if (stat == "generated" && !organization)
    return tsdb_model::project;
  return std::nullopt;
}

const std::vector<std::string_view>& outcome_categories() {
  static const std::vector<std::string_view> xs = {
    "default",  "error",   "transaction",   "security", "attachment",
    "session",  "profile", "profile_chunk", "replay",   "monitor",
    "user_report", "user_report_v2", "span", "log_item",
  };
  return xs;
}

const std::vector<std::string_view>& outcome_names() {
  static const std::vector<std::string_view> xs = {"accepted", "rate_limited",
                                                    "filtered"};
  return xs;
}

http_response project_stats(read_sources& src, uint64_t org_id,
                            uint64_t project_id, std::string_view query) {
  auto stat = query_value(query, "stat").value_or("received");
  auto model = stat_model(stat, false);
  if (!model)
    return invalid_stat(stat, "received, rejected, blacklisted or generated");
  auto range = parse_stats_range(query, src.rollups(), src.now());
  if (!range)
    return json_error(400, error_text(range.error()));
  auto env = read_environment_arg(src, org_id, query);
  if (env.error)
    return std::move(*env.error);
  auto a = ask(src, range_query(*model,
                                {tsdb_key::of(static_cast<int64_t>(project_id))},
                                *range, env.id));
  if (!a)
    return unavailable("the TSDB", a.error());
  return json_answer(series_json(a->series[0]));
}

http_response organization_stats(read_sources& src,
                                 const quota_catalog& catalog,
                                 uint64_t org_id, std::string_view query) {
  if (auto stat = query_value(query, "stat"))
    return organization_series(src, catalog, org_id, query, *stat);
  std::string bad;
  auto categories = pick(outcome_categories(),
                         query_values(query, "category"), bad);
  if (!bad.empty())
    return json_error(400, "Invalid category: " + excerpt(bad, 100)
                             + " (expected one of "
                             + join(outcome_categories()) + ")");
  auto outcomes = pick(outcome_names(), query_values(query, "outcome"), bad);
  if (!bad.empty())
    return json_error(400, "Invalid outcome: " + excerpt(bad, 100)
                             + " (expected one of " + join(outcome_names())
                             + ")");
  auto range = parse_stats_range(query, src.rollups(), src.now());
  if (!range)
    return json_error(400, error_text(range.error()));
  // One query for every category and outcome asked for: the TSDB cannot
  // list the keys it holds, so each pair is a key of its own.
  std::vector<tsdb_key> keys;
  std::vector<std::pair<std::string_view, std::string_view>> by;
  for (auto c : categories)
    for (auto o : outcomes) {
      keys.push_back(tsdb_key::of(std::to_string(org_id) + ":"
                                  + std::string{c} + ":" + std::string{o}));
      by.emplace_back(c, o);
    }
  auto a = ask(src, range_query(tsdb_model::organization_outcomes,
                                std::move(keys), *range));
  if (!a)
    return unavailable("the TSDB", a.error());
  auto intervals = nlohmann::json::array();
  for (auto ts : tsdb_series(range->start, range->end, range->rollup))
    intervals.push_back(sentry_time_seconds(ts));
  auto groups = nlohmann::json::array();
  auto sums = tsdb_sums(a->series);
  for (size_t i = 0; i < by.size(); ++i) {
    if (sums[i] == 0)
      continue; // as stats_v2: only the groups that counted something
    auto series = nlohmann::json::array();
    for (const auto& [ts, n] : a->series[i])
      series.push_back(n);
    groups.push_back({{"by", {{"category", by[i].first},
                              {"outcome", by[i].second}}},
                      {"totals", {{"sum(quantity)", sums[i]}}},
                      {"series", {{"sum(quantity)", std::move(series)}}}});
  }
  auto buckets = tsdb_series(range->start, range->end, range->rollup);
  nlohmann::json out = {
    {"start", sentry_time_seconds(buckets.empty() ? range->start
                                                  : buckets.front())},
    {"end", sentry_time_seconds((buckets.empty() ? range->end
                                                 : buckets.back())
                                + range->rollup)},
    {"rollup", range->rollup},
    {"intervals", std::move(intervals)},
    {"groups", std::move(groups)},
  };
  return json_answer(out);
}

} // namespace vigil
