#include "web/read_api.hpp"

#include <chrono>

#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/errors.hpp"
#include "messages/secret_compare.hpp"
#include "messages/text_excerpt.hpp"
#include "web/chart_api.hpp"
#include "web/comments_api.hpp"
#include "web/events_api.hpp"
#include "web/issues_api.hpp"
#include "web/mailgun_webhook.hpp"
#include "web/stats_api.hpp"

namespace vigil {

namespace {

/// Splits "/api/0/projects/acme/backend/issues/" into its segments.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/')
      ++i;
    auto j = path.find('/', i);
    if (j == std::string_view::npos)
      j = path.size();
    if (j > i)
      out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

/// The endpoints, by the shape of their path after /api/0/.
enum class endpoint {
  none,
  event,          // projects {org} {project} events {id}
  attachments,    // projects {org} {project} events {id} attachments
  attachment,     // projects {org} {project} events {id} attachments {id}
  issues,         // projects {org} {project} issues
  project_stats,  // projects {org} {project} stats
  project_chart,  // projects {org} {project} chart.png
  issue,          // issues {id}
  issue_chart,    // issues {id} chart.png
  issue_comments, // issues {id} comments (GET, POST)
  charts,         // charts (POST)
  org_stats,      // organizations {org} stats
};

endpoint route(const std::vector<std::string_view>& seg) {
  if (seg.size() < 3 || seg[0] != "api" || seg[1] != "0")
    return endpoint::none;
  if (seg[2] == "projects") {
    if (seg.size() == 7 && seg[5] == "events")
      return endpoint::event;
    if (seg.size() == 8 && seg[5] == "events" && seg[7] == "attachments")
      return endpoint::attachments;
    if (seg.size() == 9 && seg[5] == "events" && seg[7] == "attachments")
      return endpoint::attachment;
    if (seg.size() == 6 && seg[5] == "issues")
      return endpoint::issues;
    if (seg.size() == 6 && seg[5] == "stats")
      return endpoint::project_stats;
    if (seg.size() == 6 && seg[5] == "chart.png")
      return endpoint::project_chart;
  }
  if (seg[2] == "issues" && seg.size() == 4)
    return endpoint::issue;
  if (seg[2] == "issues" && seg.size() == 5 && seg[4] == "chart.png")
    return endpoint::issue_chart;
  if (seg[2] == "issues" && seg.size() == 5 && seg[4] == "comments")
    return endpoint::issue_comments;
  if (seg[2] == "charts" && seg.size() == 3)
    return endpoint::charts;
  if (seg[2] == "organizations" && seg.size() == 5 && seg[4] == "stats")
    return endpoint::org_stats;
  return endpoint::none;
}

/// The methods an endpoint answers ("GET", "GET, POST").
std::string_view allowed_methods(endpoint e) {
  switch (e) {
    case endpoint::charts:
      return "POST";
    case endpoint::issue_comments:
      return "GET, POST";
    case endpoint::issue:
      return "GET, PUT";
    default:
      return "GET";
  }
}

/// Whether `method` is one of `allowed` ("GET, POST").
bool method_allowed(std::string_view allowed, std::string_view method) {
  while (!allowed.empty()) {
    auto comma = allowed.find(", ");
    if (allowed.substr(0, comma) == method)
      return true;
    if (comma == std::string_view::npos)
      break;
    allowed.remove_prefix(comma + 2);
  }
  return false;
}

const organization_config* find_org(const quota_catalog& catalog,
                                    std::string_view slug) {
  for (const auto& o : catalog.organizations)
    if (o.slug == slug)
      return &o;
  return nullptr;
}

/// The project `project_slug` of organization `org_slug`; 0 if unknown.
uint64_t find_project(const quota_catalog& catalog, std::string_view org_slug,
                      std::string_view project_slug) {
  auto org = find_org(catalog, org_slug);
  if (!org)
    return 0;
  for (const auto& p : catalog.projects)
    if (p.organization == org->id && p.slug == project_slug)
      return p.id;
  return 0;
}

} // namespace

read_api::read_api(caf::actor_system& sys, const quota_catalog& catalog,
                   read_api_options opts)
  : sys_(sys), catalog_(catalog), opts_(std::move(opts)),
    sources_(sys, opts_) {
  worker_ = std::thread{[this] { run(); }};
}

read_api::~read_api() {
  {
    std::lock_guard<std::mutex> guard{jobs_mtx_};
    stopping_ = true;
  }
  jobs_cv_.notify_one();
  worker_.join();
  for (auto& [req, respond] : jobs_) {
    auto resp = json_error(503, "the node is shutting down");
    resp.headers.emplace_back("Retry-After", "5");
    respond(std::move(resp));
  }
}

void read_api::handle(http_request&& req, http_responder respond) {
  {
    std::lock_guard<std::mutex> guard{jobs_mtx_};
    if (!stopping_ && jobs_.size() < max_queued) {
      jobs_.emplace_back(std::move(req), std::move(respond));
      jobs_cv_.notify_one();
      return;
    }
  }
  auto resp = json_error(503, "the read API is busy ("
                                + std::to_string(max_queued)
                                + " requests waiting); retry later");
  resp.headers.emplace_back("Retry-After", "1");
  respond(std::move(resp));
}

void read_api::run() {
  std::unique_lock<std::mutex> guard{jobs_mtx_};
  for (;;) {
    jobs_cv_.wait(guard, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_)
      return;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    guard.unlock();
    job.second(serve_safely(job.first));
    guard.lock();
  }
}

http_response read_api::serve_safely(const http_request& req) {
  // This thread serves every read request: an exception must cost one
  // answer, not the thread (and with it the process).
  try {
    return serve(req);
  } catch (const std::exception& e) {
    spdlog::error("read api: {} {} threw: {}", req.method(),
                  printable_excerpt(req.path()), printable_excerpt(e.what()));
  } catch (...) {
    spdlog::error("read api: {} {} threw", req.method(),
                  printable_excerpt(req.path()));
  }
  return json_error(500, "internal error while reading");
}

bool read_api::limited(const std::optional<rate_limit_check>& check) {
  if (!check || !opts_.limiter)
    return false;
  bool out = false;
  caf::scoped_actor self{sys_};
  self->request(*opts_.limiter, std::chrono::seconds{2}, *check)
    .receive([&](const rate_limit_result& r) { out = r.limited; },
             [&](const caf::error& err) {
               // The rate limiter fails open, and so does a lost answer.
               spdlog::debug("read api: rate limiter: {}", error_text(err));
             });
  return out;
}

std::optional<http_response> read_api::refuse_address(const http_request& req) {
  if (!limited(api_ip_check(opts_.ip_rate_limit, req.remote_ip)))
    return std::nullopt;
  auto resp = json_error(429, "too many requests from this address "
                              "(auth.ip-rate-limit)");
  resp.headers.emplace_back("Retry-After", "60");
  return resp;
}

http_response read_api::serve_public(const http_request& req) {
  if (auto refused = refuse_address(req))
    return std::move(*refused);
  auto path = req.path();
  if (path == "/api/hooks/mailgun/inbound/"
      || path == "/api/hooks/mailgun/inbound")
    return mailgun_inbound(sources_, catalog_, req, opts_.mailgun);
  if (path.starts_with("/api/hooks/"))
    return json_error(404, "no such webhook: " + excerpt(path));
  if (req.method() != "GET" && req.method() != "HEAD")
    return json_error(405, "only GET is allowed here");
  return chart_file(sources_, req.path().substr(std::string_view{"/charts/"}.size()));
}

std::optional<http_response> read_api::refuse(const http_request& req) {
  if (auto refused = refuse_address(req))
    return refused;
  if (opts_.token.empty())
    return json_error(401, "the read API is disabled: set api.token");
  auto authz = req.header("Authorization");
  if (authz.substr(0, 7) != "Bearer " && authz.substr(0, 7) != "bearer ")
    return json_error(401, "missing bearer token: send Authorization: "
                           "Bearer <api.token>");
  if (!secrets_equal(authz.substr(7), opts_.token))
    return json_error(401, "invalid token");
  // The one configured token is one API user.
  if (limited(api_user_check(opts_.user_rate_limit, "api-token"))) {
    auto resp = json_error(429, "too many requests for this user "
                                "(auth.user-rate-limit)");
    resp.headers.emplace_back("Retry-After", "60");
    return resp;
  }
  return std::nullopt;
}

http_response read_api::serve(const http_request& req) {
  if (req.path().starts_with("/charts/")
      || req.path().starts_with("/api/hooks/"))
    return serve_public(req);
  if (auto refused = refuse(req))
    return std::move(*refused);
  auto seg = segments(req.path());
  auto which = route(seg);
  if (which == endpoint::none)
    return json_error(404, "no such API endpoint: " + excerpt(req.path()));
  auto allowed = allowed_methods(which);
  if (!method_allowed(allowed, req.method()))
    return json_error(405, "use " + std::string{allowed} + " here");
  if (which == endpoint::charts)
    return create_chart(sources_, req.message.body(), opts_.url_prefix);
  if (which == endpoint::issue_comments)
    return issue_comments(sources_, catalog_, seg[3], req);
  if (which == endpoint::issue && req.method() == "PUT")
    return issue_update(sources_, catalog_, seg[3], req.message.body(),
                        sources_.now());
  auto query = req.query();
  switch (which) {
    case endpoint::issue:
      return issue_details(sources_, catalog_, seg[3], query);
    case endpoint::issue_chart:
      return issue_chart(sources_, catalog_, seg[3], query);
    case endpoint::org_stats: {
      auto org = find_org(catalog_, seg[3]);
      if (!org)
        return json_error(404, "no organization '" + excerpt(seg[3], 100)
                                 + "'");
      return organization_stats(sources_, catalog_, org->id, query);
    }
    default:
      break;
  }
  auto project_id = find_project(catalog_, seg[3], seg[4]);
  if (project_id == 0)
    return json_error(404, "no project '" + excerpt(seg[4], 100)
                             + "' in organization '" + excerpt(seg[3], 100)
                             + "'");
  switch (which) {
    case endpoint::event:
      return event_details(sources_, project_id, seg[6]);
    case endpoint::attachments:
      return event_attachments(sources_, project_id, seg[6]);
    case endpoint::attachment:
      return event_attachment(sources_, project_id, seg[6], seg[8], query);
    case endpoint::issues:
      return issues_list(sources_, catalog_, project_id, query);
    case endpoint::project_stats:
      return project_stats(sources_, find_org(catalog_, seg[3])->id, project_id,
                           query);
    case endpoint::project_chart:
      return project_chart(sources_, find_org(catalog_, seg[3])->id,
                           project_id, query);
    default:
      return json_error(404, "no such API endpoint: " + excerpt(req.path()));
  }
}

} // namespace vigil
