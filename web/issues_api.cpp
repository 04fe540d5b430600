#include "web/issues_api.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/text_excerpt.hpp"
#include "web/api_json.hpp"
#include "web/stats_query.hpp"

namespace vigil {

namespace {

int64_t unix_us(double unix_seconds) {
  return static_cast<int64_t>(std::llround(unix_seconds * 1e6));
}

/// The existing fields' time format (kept: clients read it).
std::string iso_time(double unix_seconds) {
  return format_iso8601(unix_us(unix_seconds));
}

bool has_rollup(const std::vector<tsdb_rollup>& rollups, int64_t seconds) {
  return std::any_of(rollups.begin(), rollups.end(),
                     [&](const tsdb_rollup& r) { return r.seconds == seconds; });
}

std::vector<tsdb_key> group_keys(const std::vector<group_row>& groups) {
  std::vector<tsdb_key> keys;
  keys.reserve(groups.size());
  for (const auto& g : groups)
    keys.push_back(tsdb_key::of(g.id));
  return keys;
}

/// Every group's series of `period` (empty ones when the TSDB fails).
std::vector<std::vector<tsdb_point>>
group_series(read_sources& src, const std::vector<group_row>& groups,
             const group_stats_period& period, int64_t now,
             std::optional<int64_t> environment_id) {
  std::vector<std::vector<tsdb_point>> none(groups.size());
  if (!has_rollup(src.rollups(), period.rollup)) {
    src.warn("tsdb", "no rollup of " + std::to_string(period.rollup)
                       + " s in tsdb.rollups for the " + period.name
                       + " stats");
    return none;
  }
  tsdb_query q;
  q.kind = tsdb_query_kind::range;
  q.model = tsdb_model::group;
  q.keys = group_keys(groups);
  // Sentry's start = now - (segments - 1) * interval, end = now.
  q.range = {now - (period.buckets - 1) * period.rollup, now, period.rollup,
             environment_id};
  auto a = src.ask_tsdb(q);
  if (!a || a->series.size() != groups.size()) {
    src.warn("tsdb", a ? std::string{"an answer of another size"}
                       : error_text(a.error()));
    return none;
  }
  return std::move(a->series);
}

/// Every group's distinct users since its first_seen (nullopt when the
/// TSDB fails): one distinct-totals query from the earliest first_seen, at the
/// rollup that covers it, its start moved back to its bucket's so that the
/// first event's bucket is in (Sentry's series walk may leave it out).
/// The range from the groups' earliest first_seen to now, at the rollup
/// that covers it, its start moved back to its bucket's.
tsdb_range since_first_seen(read_sources& src,
                            const std::vector<group_row>& groups, int64_t now,
                            std::optional<int64_t> environment_id) {
  double first = static_cast<double>(now);
  for (const auto& g : groups)
    first = std::min(first, g.first_seen);
  auto start = static_cast<int64_t>(std::floor(std::max(0.0, first)));
  auto rollup = tsdb_optimal_rollup(src.rollups(), start, now);
  return {tsdb_bucket_start(start, rollup.seconds), now, rollup.seconds,
          environment_id};
}

std::optional<std::vector<int64_t>>
user_counts(read_sources& src, const std::vector<group_row>& groups,
            int64_t now, std::optional<int64_t> environment_id) {
  tsdb_query q;
  q.kind = tsdb_query_kind::distinct_totals;
  q.model = tsdb_model::users_affected_by_group;
  q.keys = group_keys(groups);
  q.range = since_first_seen(src, groups, now, environment_id);
  auto a = src.ask_tsdb(q);
  if (!a || a->totals.size() != groups.size()) {
    src.warn("tsdb", a ? std::string{"an answer of another size"}
                       : error_text(a.error()));
    return std::nullopt;
  }
  return std::move(a->totals);
}

/// Every group's events in one environment since its first_seen (the
/// TSDB's group counts: SQL's times_seen counts every environment), 0s
/// when the TSDB fails.
std::vector<int64_t> environment_counts(read_sources& src,
                                        const std::vector<group_row>& groups,
                                        int64_t now, int64_t environment_id) {
  std::vector<int64_t> out(groups.size(), 0);
  tsdb_query q;
  q.kind = tsdb_query_kind::range;
  q.model = tsdb_model::group;
  q.keys = group_keys(groups);
  q.range = since_first_seen(src, groups, now, environment_id);
  auto a = src.ask_tsdb(q);
  if (!a || a->series.size() != groups.size()) {
    src.warn("tsdb", a ? std::string{"an answer of another size"}
                       : error_text(a.error()));
    return out;
  }
  for (size_t i = 0; i < groups.size(); ++i)
    for (const auto& [ts, n] : a->series[i])
      out[i] += n;
  return out;
}

} // namespace

nlohmann::json
serialize_groups(read_sources& src, const quota_catalog& catalog,
                 const std::vector<group_row>& groups,
                 const std::optional<group_stats_period>& period,
                 std::optional<int64_t> environment_id) {
  auto out = nlohmann::json::array();
  if (groups.empty())
    return out;
  auto now = static_cast<int64_t>(std::floor(src.now()));
  std::vector<int64_t> ids;
  for (const auto& g : groups)
    ids.push_back(g.id);
  // Counts for one environment come from the TSDB alone; for all, from
  // SQL plus what the buffer holds.
  std::vector<int64_t> pending(groups.size(), 0);
  if (!environment_id)
    pending = src.pending("sentry.group", "times_seen", ids);
  auto users = user_counts(src, groups, now, environment_id);
  // A TSDB that failed the first query is not asked again in this answer:
  // one that does not answer would cost its timeout twice.
  std::vector<std::vector<tsdb_point>> series(groups.size());
  if (period && users)
    series = group_series(src, groups, *period, now, environment_id);
  std::vector<int64_t> in_environment(groups.size(), 0);
  if (environment_id && users)
    in_environment = environment_counts(src, groups, now, *environment_id);
  if (!users)
    users.emplace(groups.size(), 0);
  for (size_t i = 0; i < groups.size(); ++i) {
    const auto& g = groups[i];
    auto times_seen = environment_id ? in_environment[i]
                                     : g.times_seen + pending[i];
    nlohmann::json x = {
      {"id", std::to_string(g.id)},
      {"title", g.title},
      {"culprit", g.culprit},
      {"first_seen", iso_time(g.first_seen)},
      {"last_seen", iso_time(g.last_seen)},
      {"times_seen", times_seen},
      {"status", g.status},
      // Sentry's group serializer: count is a string, userCount a number.
      {"count", std::to_string(times_seen)},
      {"userCount", (*users)[i]},
      {"firstSeen", sentry_time(unix_us(g.first_seen))},
      {"lastSeen", sentry_time(unix_us(g.last_seen))},
    };
    if (auto p = catalog.project(g.project_id))
      x["project"] = {{"id", std::to_string(p->id)}, {"slug", p->slug}};
    if (period)
      x["stats"] = {{period->name, series_json(series[i])}};
    out.push_back(std::move(x));
  }
  return out;
}

http_response issues_list(read_sources& src, const quota_catalog& catalog,
                          uint64_t project_id, std::string_view query) {
  std::optional<group_stats_period> period =
    group_stats_period{"24h", 24, 3600};
  if (auto p = query_value(query, "statsPeriod")) {
    if (*p == "14d")
      period = group_stats_period{"14d", 14, 86400};
    else if (p->empty())
      period.reset();
    else if (*p != "24h")
      return json_error(400, "Invalid stats_period. Valid choices are '', "
                             "'24h', and '14d'");
  }
  auto project = catalog.project(project_id);
  auto env = read_environment_arg(src, project ? project->organization : 0,
                                  query);
  if (env.error)
    return std::move(*env.error);
  auto store = src.store();
  if (!store)
    return unavailable("event store unavailable", store.error());
  auto groups = (*store)->list_groups(project_id, 100);
  if (!groups) {
    src.store_failed();
    return unavailable("listing issues failed", groups.error());
  }
  return json_answer(serialize_groups(src, catalog, *groups, period, env.id));
}

issue_lookup find_issue(read_sources& src, const quota_catalog& catalog,
                        std::string_view id) {
  issue_lookup out;
  int64_t group_id = 0;
  auto res = std::from_chars(id.data(), id.data() + id.size(), group_id);
  if (id.empty() || res.ec != std::errc{} || res.ptr != id.data() + id.size()
      || group_id <= 0) {
    out.error = json_error(400, "not an issue id (a positive number): "
                                  + excerpt(id, 100));
    return out;
  }
  auto store = src.store();
  if (!store) {
    out.error = unavailable("event store unavailable", store.error());
    return out;
  }
  auto group = (*store)->get_group(group_id);
  if (!group) {
    src.store_failed();
    out.error = unavailable("reading the issue failed", group.error());
    return out;
  }
  // A group of a project no longer configured is not served: the token
  // reads the configured projects only.
  out.project = *group ? catalog.project((*group)->project_id)
                       : nullptr;
  if (!out.project) {
    out.error = json_error(404, "no issue " + std::to_string(group_id));
    return out;
  }
  out.group = std::move(**group);
  return out;
}

http_response issue_details(read_sources& src, const quota_catalog& catalog,
                            std::string_view id, std::string_view query) {
  auto issue = find_issue(src, catalog, id);
  if (issue.error)
    return std::move(*issue.error);
  auto env = read_environment_arg(src, issue.project->organization, query);
  if (env.error)
    return std::move(*env.error);
  auto out = serialize_groups(src, catalog, {*issue.group},
                              group_stats_period{"24h", 24, 3600}, env.id);
  return json_answer(out[0]);
}

http_response issue_update(read_sources& src, const quota_catalog& catalog,
                           std::string_view id, std::string_view body,
                           double now) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return json_error(400, "the body must be a JSON object, e.g. "
                           "{\"status\": \"resolved\"}");
  auto it = doc.find("status");
  if (it == doc.end())
    return json_error(400, "status: is required (resolved, unresolved or "
                           "ignored)");
  if (!it->is_string()
      || (*it != "resolved" && *it != "unresolved" && *it != "ignored"))
    return json_error(400, "status: " + excerpt(dump_json(*it), 100)
                             + " is not a valid choice (resolved, "
                               "unresolved or ignored)");
  auto issue = find_issue(src, catalog, id);
  if (issue.error)
    return std::move(*issue.error);
  auto status = it->get<std::string>();
  auto store = src.store();
  if (!store)
    return unavailable("event store unavailable", store.error());
  auto done = (*store)->set_group_status(issue.group->id, status, now);
  if (!done) {
    src.store_failed();
    return unavailable("updating the issue failed", done.error());
  }
  if (!*done)
    return json_error(404, "no issue " + std::to_string(issue.group->id));
  issue.group->status = status;
  auto out = serialize_groups(src, catalog, {*issue.group},
                              group_stats_period{"24h", 24, 3600});
  return json_answer(out[0]);
}

} // namespace vigil
