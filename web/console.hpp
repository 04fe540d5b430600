#pragma once

// The web console under /console/ on the web bind (docs/CONSOLE.md): the
// page and its assets (compiled in, public: they hold no data) and its two
// data endpoints behind the API token (`api.token`, sent by the page as
// `Authorization: Bearer`): GET /console/api/cluster, every node's
// inspector snapshot, and GET /console/api/dead-letters, the broker's dead
// letters. The HTTP thread never waits: the inspector is asked from a
// short-lived actor, the broker read from a detached one.

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <caf/actor_system.hpp>

#include "actors/inspector.hpp"
#include "adapters/http.hpp"

namespace vigil {

/// What the console reads and how long it waits.
struct console_options {
  /// `api.token`; empty: the data endpoints answer 401 (disabled).
  std::string token;
  /// This node's inspector; none: /console/api/cluster answers 503.
  std::optional<inspector_actor> inspector;
  /// `broker.url`, where the dead letters are listed.
  std::string broker_url;
  /// How long the inspector may take for the cluster's snapshot (it asks
  /// the other nodes itself, each within its own timeout).
  std::chrono::milliseconds inspector_timeout{10000};
  /// Bounds the broker's connection and listing.
  std::chrono::milliseconds broker_timeout{5000};
  /// Dead letters shown, newest first (the count is of all of them).
  size_t max_dead_letters = 200;
};

/// Serves /console and everything under /console/.
class console_endpoint {
public:
  console_endpoint(caf::actor_system& sys, console_options opts);

  /// Whether `path` is the console's (/console or under /console/).
  static bool handles(std::string_view path);

  /// Answers one request (now for the assets and refusals, later from an
  /// actor for the data endpoints).
  void handle(const http_request& req, http_responder respond);

  /// Dead-letter listings that may run at once; more answer 503.
  static constexpr int max_listings = 2;

private:
  /// The 401 answer of a request without the right bearer token, else
  /// nullopt.
  std::optional<http_response> refuse(const http_request& req) const;

  void cluster(http_responder respond);
  void dead_letters(http_responder respond);

  caf::actor_system& sys_;
  console_options opts_;
  /// Listings running now (shared with the detached actors that run them).
  std::shared_ptr<std::atomic<int>> listings_;
};

} // namespace vigil
