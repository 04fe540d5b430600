#pragma once

// The issue endpoints of the read API, shaped as Sentry's group serializer
// (StreamGroupSerializer): `GET /api/0/projects/{org}/{project}/issues/`
// (newest last_seen first, at most 100) and `GET /api/0/issues/{id}/`.
// Each group carries `count` (a string, as Sentry's) and `times_seen`, both
// the SQL value plus what the write buffer holds for the row not yet
// flushed (Sentry's times_seen_with_pending); `userCount`, the distinct
// users affected over the group's life (TSDB model 300); `firstSeen` and
// `lastSeen`; and `stats: {"24h": [[ts, n], ...]}` (model 4, hourly). The
// TSDB is asked once per answer for all groups' stats and once for their
// user counts; one that does not answer leaves those empty (logged), it
// never fails the answer.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "actors/backends/event_store.hpp"
#include "adapters/http.hpp"
#include "config/organizations.hpp"
#include "web/read_sources.hpp"

namespace vigil {

/// The issues list of project `project_id`; `statsPeriod` 24h (default),
/// 14d or empty (no stats), as Sentry's; `environment` (a name) counts
/// the events, users and stats of that environment only.
http_response issues_list(read_sources& src, const quota_catalog& catalog,
                          uint64_t project_id, std::string_view query);

/// One issue by its id (the path segment, checked here); `environment` as
/// in the list.
http_response issue_details(read_sources& src, const quota_catalog& catalog,
                            std::string_view id, std::string_view query);

/// An issue looked up by its id (a path segment): the group and its
/// project, or the answer to give instead (400 for a bad id, 404 for an
/// unknown issue or one of a project no longer configured, 503 when the
/// store fails).
struct issue_lookup {
  std::optional<group_row> group;
  const project_config* project = nullptr;
  std::optional<http_response> error;
};

/// Looks up issue `id` in the store, for the configured projects only.
issue_lookup find_issue(read_sources& src, const quota_catalog& catalog,
                        std::string_view id);
/// `PUT /api/0/issues/{id}/` with `{"status": "resolved" | "unresolved" |
/// "ignored"}`: sets the issue's status (resolving records `now`, Unix
/// seconds, as its resolved_at: the next event reopens it, a regression)
/// and answers the updated issue as issue_details does. 400 with a JSON
/// detail for a body that is not such an object, 404 for an unknown issue.
http_response issue_update(read_sources& src, const quota_catalog& catalog,
                           std::string_view id, std::string_view body,
                           double now);

/// A stats period of the group serializer: `buckets` of `rollup` seconds
/// ending with now's ("24h": 24 of 3600, "14d": 14 of 86400).
struct group_stats_period {
  std::string name;
  int64_t buckets = 0;
  int64_t rollup = 0;
};

/// The groups as the serializer writes them, in order. With an
/// environment, `count`, `userCount` and `stats` are that environment's
/// (from the TSDB), as Sentry's serializer with an environment filter.
nlohmann::json serialize_groups(read_sources& src,
                                const quota_catalog& catalog,
                                const std::vector<group_row>& groups,
                                const std::optional<group_stats_period>& period,
                                std::optional<int64_t> environment_id
                                = std::nullopt);

} // namespace vigil
