#include "cli/inspect_commands.hpp"

#include <iomanip>
#include <iostream>
#include <sstream>

#include "actors/cluster_view.hpp"
#include "actors/node_membership.hpp"
#include "adapters/http.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "node/inspection.hpp"

namespace vigil {

namespace {

using json = nlohmann::json;

constexpr std::chrono::milliseconds redis_timeout{3000};

std::string no_membership_text() {
  return "cluster membership needs Redis: set redis.clusters.default "
         "(e.g. VIGIL_REDIS_CLUSTERS='{default: {hosts: "
         "[\"redis://127.0.0.1:6379/0\"]}}'), the same on every node";
}

std::string age_text(double started) {
  auto s = static_cast<int64_t>(now_unix_seconds() - started);
  if (s < 0)
    s = 0;
  std::ostringstream out;
  if (s >= 86400)
    out << s / 86400 << "d";
  if (s >= 3600)
    out << (s / 3600) % 24 << "h";
  if (s >= 60)
    out << (s / 60) % 60 << "m";
  out << s % 60 << "s ago";
  return out.str();
}

std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs)
    out += (out.empty() ? "" : ",") + x;
  return out.empty() ? "-" : out;
}

} // namespace

int nodes_command(const config& cfg, bool as_json) {
  auto url = membership_redis_url(cfg);
  if (!url) {
    std::cerr << "vigil nodes: " << error_text(url.error()) << "\n";
    return 2;
  }
  if (url->empty()) {
    std::cerr << "vigil nodes: " << no_membership_text() << "\n";
    return 2;
  }
  auto members = read_members(*url, redis_timeout);
  if (!members) {
    std::cerr << "vigil nodes: cannot read the members from "
              << mask_url(*url) << ": " << error_text(members.error()) << "\n";
    return 1;
  }
  if (as_json) {
    json out = json::array();
    for (auto& m : *members)
      out.push_back(to_json(m));
    std::cout << dump_json(out) << "\n";
    return 0;
  }
  if (members->empty()) {
    std::cout << "no node is announced in " << mask_url(*url)
              << " (nodes heartbeat every 5 s; an entry lasts 15 s)\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows{
    {"ID", "MODE", "HOST", "PID", "VERSION", "STARTED", "QUEUES", "ENDPOINT"}};
  for (auto& m : *members)
    rows.push_back({m.id, m.mode, m.host, std::to_string(m.pid), m.version,
                    age_text(m.started), join(m.queues),
                    m.inspect.empty() ? "-" : m.inspect});
  std::vector<size_t> widths(rows[0].size(), 0);
  for (auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i)
      widths[i] = std::max(widths[i], r[i].size());
  for (auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      std::cout << r[i];
      if (i + 1 < r.size())
        std::cout << std::string(widths[i] - r[i].size() + 2, ' ');
    }
    std::cout << "\n";
  }
  return 0;
}

snapshot_source::snapshot_source(const config& cfg, const inspect_options& opts)
  : token_(opts.token.empty() ? cfg.get_string("inspect.token") : opts.token) {
  timeout_ = std::chrono::milliseconds{
               static_cast<int64_t>(cfg.get_double("inspect.timeout") * 3000)}
             + std::chrono::seconds{2};
  if (!opts.node.empty()) {
    auto parsed = parse_bind_address(opts.node);
    if (!parsed || parsed->second == 0
        || opts.node.rfind(':') == std::string::npos) {
      error_ = "--node: expected HOST:PORT of a management endpoint (its "
               "inspect.bind, e.g. 127.0.0.1:9002), got '" + opts.node + "'";
      return;
    }
    node_ = opts.node;
    return;
  }
  auto url = membership_redis_url(cfg);
  if (!url) {
    error_ = error_text(url.error());
    return;
  }
  if (!url->empty()) {
    members_url_ = *url;
    return;
  }
  // No membership: the node of this configuration's inspect.bind.
  auto bind = cfg.get_string("inspect.bind");
  if (bind.empty() || bind == "off" || bind.ends_with(":0")) {
    error_ = no_membership_text() + "; or give --node HOST:PORT";
    return;
  }
  node_ = bind;
}

std::vector<json> snapshot_source::fetch() {
  single_error_.clear();
  std::vector<json> out;
  if (!node_.empty()) {
    auto got = fetch_inspect_path(node_, "/snapshot", token_, timeout_);
    auto snap = got.ok ? json::parse(got.body, nullptr, false) : json{};
    if (!snap.is_object()) {
      single_error_ = "node " + node_ + ": "
                      + (got.ok ? std::string{"not a JSON object"} : got.error);
      node_card card;
      card.id = node_;
      card.inspect = node_;
      out.push_back(unreachable_node(card, single_error_));
      return out;
    }
    out.push_back(std::move(snap));
    return out;
  }
  auto members = read_members(members_url_, redis_timeout);
  if (!members) {
    json err{{"node", json{{"id", "?"}}},
             {"reachable", false},
             {"error", "cannot read the members from " + mask_url(members_url_)
                         + ": " + error_text(members.error())}};
    out.push_back(std::move(err));
    return out;
  }
  return fetch_member_snapshots(*members, token_, timeout_);
}

int inspect_command(const config& cfg, const inspect_options& opts) {
  snapshot_source source{cfg, opts};
  if (!source.ok()) {
    std::cerr << "vigil inspect: " << source.error() << "\n";
    return 2;
  }
  if (!opts.json)
    return inspect_top(source, opts.interval);
  auto nodes = source.fetch();
  if (!source.single_error().empty()) {
    std::cerr << "vigil inspect: " << source.single_error() << "\n";
    return 1;
  }
  json out{{"nodes", json::array()}};
  for (auto& n : nodes)
    out["nodes"].push_back(std::move(n));
  std::cout << dump_json(out) << "\n";
  return 0;
}

} // namespace vigil
