#pragma once

// The read API under /api/0/ (bearer token `api.token`): a stored event by
// id and a project's issues (groups). Its requests block (a database read,
// a rate limiter round trip), so they run on a thread of their own against
// their own database connection, never on an HTTP thread: each HTTP thread
// serves its connections alone, and a slow read would hold up ingestion.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <caf/actor_system.hpp>

#include "actors/backends/event_store.hpp"
#include "actors/buffer.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/tsdb.hpp"
#include "adapters/http.hpp"
#include "config/organizations.hpp"

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
  /// The write buffer (counts not yet flushed), when the node runs one.
  std::optional<buffer_actor> buffer;
  /// The time-series store (the stats endpoints), when the node runs one.
  std::optional<tsdb_actor> tsdb;
};

/// Handles `GET /api/0/projects/{org}/{project}/events/{event_id}/` and
/// `GET /api/0/projects/{org}/{project}/issues/`.
class read_api {
public:
  read_api(caf::actor_system& sys, const quota_catalog& catalog,
           read_api_options opts);

  /// Answers the requests still waiting with 503, then stops the thread.
  ~read_api();

  read_api(const read_api&) = delete;
  read_api& operator=(const read_api&) = delete;

  /// Queues a request whose path starts with /api/0/ for the read API's
  /// thread, which answers it; 503 at once when `max_queued` wait already.
  void handle(http_request&& req, http_responder respond);

  /// Requests that may wait for the read API's thread.
  static constexpr size_t max_queued = 256;

private:
  /// The read API's thread: serves the queued requests in order.
  void run();

  /// Answers one request (on the read API's thread).
  void serve(const http_request& req, const http_responder& respond);
  /// `serve`, with an exception answered 500 and logged.
  void serve_safely(const http_request& req, const http_responder& respond);

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
  /// Touched by the read API's thread only.
  std::unique_ptr<event_store> store_;
  std::mutex jobs_mtx_;
  std::condition_variable jobs_cv_;
  std::deque<std::pair<http_request, http_responder>> jobs_;
  bool stopping_ = false;
  std::thread worker_;
};

} // namespace vigil
