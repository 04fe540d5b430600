#pragma once

// A node's identity card: what it announces in Redis (cluster membership)
// and what heads its inspection snapshot ("node" in docs/INSPECT.md).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <nlohmann/json_fwd.hpp>

namespace vigil {

/// Who a node is and where to reach it.
struct node_card {
  /// The worker hostname (`worker.hostname`, else vigil@<host>.<pid>).
  std::string id;
  std::string host;
  int64_t pid = 0;
  std::string version;
  /// The `run` mode: node, worker, web, cron, chartcuterie.
  std::string mode;
  /// The task queues it consumes (none for web, cron, chartcuterie).
  std::vector<std::string> queues;
  /// Unix time it started, in seconds.
  double started = 0;
  /// Its management endpoint, "host:port" as bound (port 0 resolved);
  /// "" when inspect.bind is off.
  std::string inspect;
  /// Its web interface, "host:port"; "" when it runs none.
  std::string web;
};

/// The card as a JSON object (the keys above).
nlohmann::json to_json(const node_card& card);

/// The card as compact JSON text.
std::string encode_node_card(const node_card& card);

/// Reads a card from JSON text; unknown keys are ignored, missing ones keep
/// their defaults; only a missing or empty "id" or text that is not a JSON
/// object fails.
caf::expected<node_card> decode_node_card(std::string_view text);

} // namespace vigil
