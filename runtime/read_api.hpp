#pragma once

// The read API under /api/0/ (bearer token `api.token`): a stored event by
// id and a project's issues (groups). Requests are rare next to ingestion,
// so they run on the HTTP thread against their own database connection.

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <caf/actor_system.hpp>

#include "actors/backends/event_store.hpp"
#include "actors/rate_limiter.hpp"
#include "config/organizations.hpp"
#include "runtime/adapters/http.hpp"

namespace vigil {

/// What the read API needs.
struct read_api_options {
  /// api.token; empty = every request gets 401.
  std::string token;
  /// Opens a connection to the event store (db.url).
  std::function<caf::expected<std::unique_ptr<event_store>>()> open_store;
  /// auth.ip-rate-limit and auth.user-rate-limit, per minute; 0 = none.
  int64_t ip_rate_limit = 0;
  int64_t user_rate_limit = 0;
  /// The rate limiter the two limits count in (needed when either is set).
  std::optional<rate_limiter_actor> limiter;
};

/// Handles `GET /api/0/projects/{org}/{project}/events/{event_id}/` and
/// `GET /api/0/projects/{org}/{project}/issues/`.
class read_api {
public:
  read_api(caf::actor_system& sys, const quota_catalog& catalog,
           read_api_options opts);

  /// Handles a request whose path starts with /api/0/.
  void handle(const http_request& req, const http_responder& respond);

private:
  /// Answers 401/429 and returns false unless the request may proceed.
  bool admit(const http_request& req, const http_responder& respond);

  /// Whether the rate limiter limits `check` (none: no; fails open).
  bool limited(const std::optional<rate_limit_check>& check);

  /// Finds the project of `org_slug`/`project_slug`; 0 if unknown.
  uint64_t find_project(std::string_view org_slug,
                        std::string_view project_slug) const;

  caf::actor_system& sys_;
  const quota_catalog& catalog_;
  read_api_options opts_;
  std::mutex store_mtx_;
  std::unique_ptr<event_store> store_;
};

} // namespace vigil
