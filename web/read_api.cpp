#include "web/read_api.hpp"

#include <chrono>

#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/secret_compare.hpp"
#include "messages/sentry_event.hpp"
#include "messages/text_excerpt.hpp"

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

std::string iso_time(double unix_seconds) {
  return format_iso8601(static_cast<int64_t>(unix_seconds * 1e6));
}

} // namespace

read_api::read_api(caf::actor_system& sys, const quota_catalog& catalog,
                   read_api_options opts)
  : sys_(sys), catalog_(catalog), opts_(std::move(opts)) {
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
    serve_safely(job.first, job.second);
    guard.lock();
  }
}

void read_api::serve_safely(const http_request& req,
                            const http_responder& respond) {
  // This thread serves every read request: an exception must cost one
  // answer, not the thread (and with it the process).
  try {
    serve(req, respond);
  } catch (const std::exception& e) {
    spdlog::error("read api: {} {} threw: {}", req.method(),
                  printable_excerpt(req.path()), printable_excerpt(e.what()));
    respond(json_error(500, "internal error while reading"));
  } catch (...) {
    spdlog::error("read api: {} {} threw", req.method(),
                  printable_excerpt(req.path()));
    respond(json_error(500, "internal error while reading"));
  }
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

bool read_api::admit(const http_request& req, const http_responder& respond) {
  if (limited(api_ip_check(opts_.ip_rate_limit, req.remote_ip))) {
    auto resp = json_error(429, "too many requests from this address "
                                "(auth.ip-rate-limit)");
    resp.headers.emplace_back("Retry-After", "60");
    respond(std::move(resp));
    return false;
  }
  if (opts_.token.empty()) {
    respond(json_error(401, "the read API is disabled: set api.token"));
    return false;
  }
  auto authz = req.header("Authorization");
  if (authz.substr(0, 7) != "Bearer " && authz.substr(0, 7) != "bearer ") {
    respond(json_error(401, "missing bearer token: send Authorization: "
                            "Bearer <api.token>"));
    return false;
  }
  if (!secrets_equal(authz.substr(7), opts_.token)) {
    respond(json_error(401, "invalid token"));
    return false;
  }
  // The one configured token is one API user.
  if (limited(api_user_check(opts_.user_rate_limit, "api-token"))) {
    auto resp = json_error(429, "too many requests for this user "
                                "(auth.user-rate-limit)");
    resp.headers.emplace_back("Retry-After", "60");
    respond(std::move(resp));
    return false;
  }
  return true;
}

uint64_t read_api::find_project(std::string_view org_slug,
                                std::string_view project_slug) const {
  for (auto& o : catalog_.organizations) {
    if (o.slug != org_slug)
      continue;
    for (auto& p : catalog_.projects)
      if (p.organization == o.id && p.slug == project_slug)
        return p.id;
  }
  return 0;
}

void read_api::serve(const http_request& req, const http_responder& respond) {
  if (!admit(req, respond))
    return;
  auto seg = segments(req.path());
  // api 0 projects {org} {project} events {id} | issues
  bool events = seg.size() == 7 && seg[5] == "events";
  bool issues = seg.size() == 6 && seg[5] == "issues";
  if (seg.size() < 6 || seg[2] != "projects" || !(events || issues)) {
    respond(json_error(404, "no such API endpoint: " + excerpt(req.path())));
    return;
  }
  if (req.method() != "GET") {
    respond(json_error(405, "only GET is allowed here"));
    return;
  }
  auto project_id = find_project(seg[3], seg[4]);
  if (project_id == 0) {
    respond(json_error(404, "no project '" + excerpt(seg[4], 100)
                              + "' in organization '" + excerpt(seg[3], 100)
                              + "'"));
    return;
  }
  if (!store_) {
    auto store = opts_.open_store();
    if (!store) {
      auto resp = json_error(503, "event store unavailable: "
                                    + error_text(store.error()));
      resp.headers.emplace_back("Retry-After", "5");
      respond(std::move(resp));
      return;
    }
    store_ = std::move(*store);
  }
  if (events) {
    auto id = normalize_event_id(seg[6]);
    if (!id) {
      respond(json_error(400, "not an event id: " + excerpt(seg[6], 100)));
      return;
    }
    auto doc = store_->get_event(project_id, *id);
    if (!doc) {
      store_.reset();
      respond(json_error(503, "reading the event failed: "
                                + error_text(doc.error())));
      return;
    }
    if (!*doc) {
      respond(json_error(404, "no event " + *id + " in this project"));
      return;
    }
    http_response resp;
    resp.body = std::move(**doc);
    respond(std::move(resp));
    return;
  }
  auto groups = store_->list_groups(project_id, 100);
  if (!groups) {
    store_.reset();
    respond(json_error(503, "listing issues failed: "
                              + error_text(groups.error())));
    return;
  }
  auto out = nlohmann::json::array();
  for (auto& g : *groups)
    out.push_back({{"id", std::to_string(g.id)},
                   {"title", g.title},
                   {"culprit", g.culprit},
                   {"first_seen", iso_time(g.first_seen)},
                   {"last_seen", iso_time(g.last_seen)},
                   {"times_seen", g.times_seen},
                   {"status", g.status}});
  http_response resp;
  // Titles come from events: invalid UTF-8 is replaced, never thrown on.
  resp.body = dump_json(out);
  respond(std::move(resp));
}

} // namespace vigil
