#include "web/console.hpp"

#include <algorithm>
#include <utility>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/backends/broker.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/secret_compare.hpp"
#include "messages/text_excerpt.hpp"
#include "messages/type_ids.hpp"
#include "web/console_assets.hpp"

namespace vigil {

namespace {

constexpr std::string_view prefix = "/console/";

/// The headers of every console answer: the page runs only its own
/// scripts and styles, talks only to this host, and is not framed.
void harden(http_response& resp, std::string_view cache) {
  resp.headers.emplace_back(
    "Content-Security-Policy",
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'");
  resp.headers.emplace_back("X-Content-Type-Options", "nosniff");
  resp.headers.emplace_back("X-Frame-Options", "DENY");
  resp.headers.emplace_back("Referrer-Policy", "no-referrer");
  resp.headers.emplace_back("Cache-Control", std::string{cache});
}

http_response hardened(http_response resp, std::string_view cache) {
  harden(resp, cache);
  return resp;
}

http_response api_error(unsigned status, std::string_view detail) {
  return hardened(json_error(status, detail), "no-store");
}

/// The embedded file `name` ("" is the page), 304 when the client has it.
http_response asset(const http_request& req, std::string_view name) {
  if (name.empty())
    name = "index.html";
  const auto& all = console_assets();
  auto it = std::find_if(all.begin(), all.end(),
                         [&](const console_asset& a) { return a.name == name; });
  if (it == all.end())
    return hardened(json_error(404, "no console file '" + excerpt(name, 100)
                                      + "'"),
                    "no-store");
  http_response resp;
  resp.content_type = std::string{it->content_type};
  resp.headers.emplace_back("ETag", std::string{it->etag});
  if (req.header("If-None-Match") == it->etag)
    resp.status = 304;
  else
    resp.body = std::string{it->body};
  // Revalidated on every load: a new binary serves new files at once.
  return hardened(std::move(resp), "no-cache");
}

/// Seconds since the epoch, from microseconds.
double unix_seconds(int64_t us) {
  return static_cast<double>(us) / 1e6;
}

/// The dead letters as the page lists them: newest first, at most `max`,
/// without their envelopes (any size, any bytes).
std::string dead_letters_json(const std::vector<dead_letter>& letters,
                              size_t max) {
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < letters.size() && i < max; ++i) {
    const auto& x = letters[i];
    nlohmann::json item{{"id", x.id},
                        {"task", x.task},
                        {"task_id", x.task_id},
                        {"queue", x.queue},
                        {"reason", x.reason},
                        {"time", unix_seconds(x.time_us)}};
    if (!x.unreadable.empty())
      item["unreadable"] = x.unreadable;
    list.push_back(std::move(item));
  }
  return dump_json(nlohmann::json{{"count", letters.size()},
                                  {"dead_letters", std::move(list)}});
}

} // namespace

console_endpoint::console_endpoint(caf::actor_system& sys,
                                   console_options opts)
  : sys_(sys), opts_(std::move(opts)),
    listings_(std::make_shared<std::atomic<int>>(0)) {
  // nop
}

bool console_endpoint::handles(std::string_view path) {
  return path == "/console" || path.starts_with(prefix);
}

std::optional<http_response>
console_endpoint::refuse(const http_request& req) const {
  if (opts_.token.empty())
    return api_error(401, "the console is disabled: set api.token");
  auto authz = req.header("Authorization");
  if (authz.substr(0, 7) != "Bearer " && authz.substr(0, 7) != "bearer ")
    return api_error(401, "missing bearer token: send Authorization: "
                          "Bearer <api.token>");
  if (!secrets_equal(authz.substr(7), opts_.token))
    return api_error(401, "invalid token");
  return std::nullopt;
}

void console_endpoint::handle(const http_request& req,
                              http_responder respond) {
  auto path = req.path();
  if (req.method() != "GET") {
    auto resp = api_error(405, "the console answers GET only");
    resp.headers.emplace_back("Allow", "GET");
    respond(std::move(resp));
    return;
  }
  if (path == "/console") {
    // Relative URLs in the page resolve under /console/ only.
    http_response resp;
    resp.status = 308;
    resp.content_type = "text/plain";
    resp.headers.emplace_back("Location", "/console/");
    respond(hardened(std::move(resp), "no-cache"));
    return;
  }
  auto rest = path.substr(prefix.size());
  if (!rest.starts_with("api/")) {
    respond(asset(req, rest));
    return;
  }
  if (auto refused = refuse(req)) {
    respond(std::move(*refused));
    return;
  }
  if (rest == "api/cluster" || rest == "api/cluster/") {
    cluster(std::move(respond));
    return;
  }
  if (rest == "api/dead-letters" || rest == "api/dead-letters/") {
    dead_letters(std::move(respond));
    return;
  }
  respond(api_error(404, "no console endpoint " + excerpt(path, 100)));
}

void console_endpoint::cluster(http_responder respond) {
  if (!opts_.inspector) {
    respond(api_error(503, "this node runs no inspector"));
    return;
  }
  // The inspector goes in as a spawn argument, not a capture: CAF 0.17
  // binds a reference to a null argument tuple when a function actor is
  // spawned with none (see web.cpp's health).
  sys_.spawn(
    [respond = std::move(respond), timeout = opts_.inspector_timeout](
      caf::event_based_actor* self, inspector_actor inspector) mutable {
      self->request(inspector, timeout, snapshot_atom_v, cluster_atom_v)
        .then(
          [=](std::string& json) mutable {
            http_response resp;
            resp.body = std::move(json);
            respond(hardened(std::move(resp), "no-store"));
          },
          [=](caf::error& err) mutable {
            auto resp = api_error(
              503, "the inspector did not answer within "
                     + std::to_string(timeout.count())
                     + " ms: " + error_text(err));
            resp.headers.emplace_back("Retry-After", "2");
            respond(std::move(resp));
          });
    },
    *opts_.inspector);
}

void console_endpoint::dead_letters(http_responder respond) {
  if (listings_->fetch_add(1) >= max_listings) {
    listings_->fetch_sub(1);
    auto resp = api_error(503, "dead letters are being listed already; "
                               "retry in a moment");
    resp.headers.emplace_back("Retry-After", "1");
    respond(std::move(resp));
    return;
  }
  // Connecting and listing block: a detached actor of their own.
  sys_.spawn<caf::detached>(
    [respond = std::move(respond), listings = listings_,
     url = opts_.broker_url, timeout = opts_.broker_timeout,
     max = opts_.max_dead_letters](caf::blocking_actor*) mutable {
      auto answer = [&]() -> http_response {
        auto conn = connect_broker(url, timeout);
        if (!conn)
          return api_error(503, "cannot reach the broker: "
                                  + error_text(conn.error()));
        auto letters = (*conn)->list_dead_letters();
        if (!letters)
          return api_error(503, "cannot list the dead letters: "
                                  + error_text(letters.error()));
        http_response resp;
        resp.body = dead_letters_json(*letters, max);
        return hardened(std::move(resp), "no-store");
      }();
      listings->fetch_sub(1);
      respond(std::move(answer));
    });
}

} // namespace vigil
