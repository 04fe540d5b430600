#pragma once

// The read API under /api/0/ (bearer token `api.token`): its door. It
// admits a request (token, rate limits), finds the endpoint, and answers on
// a thread of its own: the endpoints block (a database read, a TSDB or
// buffer round trip), and each HTTP thread serves its connections alone, so
// a slow read on one would hold up ingestion. The endpoints themselves live
// in web/events_api, web/issues_api and web/stats_api.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <caf/actor_system.hpp>

#include "adapters/http.hpp"
#include "config/organizations.hpp"
#include "web/read_sources.hpp"

namespace vigil {

/// Handles `GET /api/0/projects/{org}/{project}/events/{event_id}/`,
/// `.../{project}/issues/`, `.../{project}/stats/`,
/// `GET /api/0/issues/{id}/` and `GET /api/0/organizations/{org}/stats/`;
/// the charts of web/chart_api (`.../chart.png`, `POST /api/0/charts/`)
/// and, without a token, `GET /charts/{requestId}.png`.
class read_api {
public:
  read_api(caf::actor_system& sys, const quota_catalog& catalog,
           read_api_options opts);

  /// Answers the requests still waiting with 503, then stops the thread.
  ~read_api();

  read_api(const read_api&) = delete;
  read_api& operator=(const read_api&) = delete;

  /// Queues a request whose path starts with /api/0/ or /charts/ for the read API's
  /// thread, which answers it; 503 at once when `max_queued` wait already.
  void handle(http_request&& req, http_responder respond);

  /// Requests that may wait for the read API's thread.
  static constexpr size_t max_queued = 256;

private:
  /// The read API's thread: serves the queued requests in order.
  void run();

  /// Answers one request (on the read API's thread).
  http_response serve(const http_request& req);
  /// `serve`, with an exception answered 500 and logged.
  http_response serve_safely(const http_request& req);

  /// The 401/429 answer of a request that may not proceed, else nullopt.
  std::optional<http_response> refuse(const http_request& req);
  /// The 429 answer of a request from an address over
  /// auth.ip-rate-limit, else nullopt.
  std::optional<http_response> refuse_address(const http_request& req);

  /// Answers a request under /charts/ (public: no token).
  http_response serve_public(const http_request& req);

  /// Whether the rate limiter limits `check` (none: no; fails open).
  bool limited(const std::optional<rate_limit_check>& check);

  caf::actor_system& sys_;
  const quota_catalog& catalog_;
  read_api_options opts_;
  /// Touched by the read API's thread only.
  read_sources sources_;
  std::mutex jobs_mtx_;
  std::condition_variable jobs_cv_;
  std::deque<std::pair<http_request, http_responder>> jobs_;
  bool stopping_ = false;
  std::thread worker_;
};

} // namespace vigil
