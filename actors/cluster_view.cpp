#include "actors/cluster_view.hpp"

#include <thread>

#include <nlohmann/json.hpp>

#include "actors/node_membership.hpp"
#include "adapters/curl_http.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

using json = nlohmann::json;

fetched_snapshot fetch_inspect_path(const std::string& address,
                                    const std::string& path,
                                    const std::string& token,
                                    std::chrono::milliseconds timeout) {
  fetched_snapshot out;
  curl_request req;
  req.url = "http://" + address + path;
  req.timeout = timeout;
  req.connect_timeout = std::min(timeout, std::chrono::milliseconds{2000});
  if (!token.empty())
    req.headers.emplace_back("Authorization", "Bearer " + token);
  auto r = curl_perform(req);
  if (!r) {
    out.error = "unreachable: " + r.failure.message;
    return out;
  }
  out.status = r.response->status;
  out.body = std::move(r.response->body);
  if (out.status == 401) {
    auto detail = json::parse(out.body, nullptr, false);
    out.error = "refused (401): "
                + (detail.is_object() && detail["detail"].is_string()
                     ? detail["detail"].get<std::string>()
                     : std::string{"wrong or missing inspect.token"})
                + "; pass --token or set inspect.token";
    return out;
  }
  if (out.status != 200) {
    out.error = "answered HTTP " + std::to_string(out.status) + " for "
                + req.url;
    return out;
  }
  if (!json::accept(out.body)) {
    out.error = "answered something that is not JSON at " + req.url;
    return out;
  }
  out.ok = true;
  return out;
}

json unreachable_node(const node_card& card, const std::string& error) {
  return json{{"node", to_json(card)}, {"reachable", false}, {"error", error}};
}

std::vector<json> fetch_member_snapshots(const std::vector<node_card>& members,
                                         const std::string& token,
                                         std::chrono::milliseconds timeout) {
  std::vector<fetched_snapshot> got(members.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].inspect.empty())
      continue;
    threads.emplace_back([&, i] {
      got[i] = fetch_inspect_path(members[i].inspect, "/snapshot", token,
                                  timeout);
    });
  }
  for (auto& t : threads)
    t.join();
  std::vector<json> out;
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].inspect.empty()) {
      out.push_back(unreachable_node(
        members[i], "no management endpoint (its inspect.bind is off)"));
      continue;
    }
    if (!got[i].ok) {
      out.push_back(unreachable_node(members[i], got[i].error));
      continue;
    }
    auto snap = json::parse(got[i].body, nullptr, false);
    if (!snap.is_object()) {
      out.push_back(unreachable_node(members[i], "not a JSON object"));
      continue;
    }
    out.push_back(std::move(snap));
  }
  return out;
}

namespace {

class redis_cluster_source final : public cluster_source {
public:
  redis_cluster_source(std::string url, std::string token,
                       std::chrono::milliseconds timeout)
    : url_(std::move(url)), token_(std::move(token)), timeout_(timeout) {
    // nop
  }

  std::string peers(const std::string& self_id) override {
    auto members = read_members(url_, timeout_);
    if (!members)
      return dump_json(json::array(
        {json{{"reachable", false},
              {"error", "cannot read the members: "
                          + error_text(members.error())}}}));
    std::vector<node_card> others;
    for (auto& m : *members)
      if (m.id != self_id)
        others.push_back(std::move(m));
    json out = json::array();
    for (auto& snap : fetch_member_snapshots(others, token_, timeout_))
      out.push_back(std::move(snap));
    return dump_json(out);
  }

private:
  std::string url_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

} // namespace

std::shared_ptr<cluster_source>
make_cluster_source(std::string redis_url, std::string token,
                    std::chrono::milliseconds timeout) {
  return std::make_shared<redis_cluster_source>(std::move(redis_url),
                                                std::move(token), timeout);
}

} // namespace vigil
