#pragma once

// `vigil nodes` and `vigil inspect`: the cluster's members from Redis and
// their inspection snapshots (docs/INSPECT.md).

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace vigil {

/// Options of `vigil inspect`.
struct inspect_options {
  /// Print one snapshot of every node as JSON and exit.
  bool json = false;
  /// "host:port" of one node's management endpoint; empty: every member.
  std::string node;
  /// Bearer token; empty: inspect.token.
  std::string token;
  /// Seconds between refreshes of the terminal view.
  double interval = 2;
};

/// `vigil nodes`: the members announced in Redis, as a table or (`json`) a
/// JSON array of cards. Returns 2 when membership is not configured, 1
/// when Redis cannot be read.
int nodes_command(const config& cfg, bool json);

/// `vigil inspect`: the live terminal view, or with --json one snapshot of
/// every node ({"nodes": [...]}) on stdout.
int inspect_command(const config& cfg, const inspect_options& opts);

/// Where the snapshots come from, for the JSON output and the live view.
class snapshot_source {
public:
  /// Checks --node and finds the membership; a text for the user when
  /// neither can work (`ok()` false).
  snapshot_source(const config& cfg, const inspect_options& opts);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  /// Every node's snapshot now (nodes that do not answer listed with
  /// "reachable": false and an "error"); blocking, bounded.
  std::vector<nlohmann::json> fetch();

  /// When the only node asked (--node, or the local endpoint) did not
  /// answer: why. Empty otherwise.
  const std::string& single_error() const { return single_error_; }

private:
  std::string node_;
  std::string members_url_;
  std::string token_;
  std::chrono::milliseconds timeout_{5000};
  std::string error_;
  std::string single_error_;
};

/// The live view (cli/inspect_top.cpp); returns the exit code.
int inspect_top(snapshot_source& source, double interval);

} // namespace vigil
