#include "messages/quota_rules.hpp"

#include <algorithm>
#include <charconv>

#include "messages/errors.hpp"

namespace vigil {

const char* to_string(quota_scope x) {
  switch (x) {
    case quota_scope::organization: return "organization";
    case quota_scope::project: return "project";
    case quota_scope::key: return "key";
    case quota_scope::global: return "global";
    case quota_scope::unknown: break;
  }
  return "unknown";
}

quota_scope parse_quota_scope(const std::string& name) {
  for (auto x : {quota_scope::organization, quota_scope::project,
                 quota_scope::key, quota_scope::global})
    if (name == to_string(x))
      return x;
  return quota_scope::unknown;
}

bool quota_matches(const quota_config& q, const quota_scoping& s) {
  if (!q.categories.empty()
      && std::find(q.categories.begin(), q.categories.end(), s.category)
           == q.categories.end())
    return false;
  if (q.scope == quota_scope::unknown)
    return false;
  if (q.scope == quota_scope::global || q.scope_id.empty())
    return true;
  uint64_t id = 0;
  auto* first = q.scope_id.data();
  auto* last = first + q.scope_id.size();
  auto res = std::from_chars(first, last, id);
  // A non-numeric scope id never matches (Relay).
  if (res.ec != std::errc{} || res.ptr != last)
    return false;
  switch (q.scope) {
    case quota_scope::organization: return id == s.organization_id;
    case quota_scope::project: return id == s.project_id;
    case quota_scope::key: return s.key_id != 0 && id == s.key_id;
    default: return false;
  }
}

quota_window make_quota_window(const quota_config& q, uint64_t org_id,
                               int64_t now) {
  auto window = std::max<int64_t>(q.window, 1);
  int64_t shift = q.scope == quota_scope::global
                    ? 0
                    : static_cast<int64_t>(org_id % static_cast<uint64_t>(window));
  quota_window out;
  out.slot = (now - shift) / window;
  out.expiry = (out.slot + 1) * window + shift;
  return out;
}

std::string quota_counter_key(const quota_config& q, const quota_scoping& s,
                              int64_t slot) {
  std::string out;
  out.reserve(48);
  out += "quota:";
  out += q.id;
  out += '{';
  out += std::to_string(s.organization_id);
  out += '}';
  if (q.scope == quota_scope::project)
    out += std::to_string(s.project_id);
  else if (q.scope == quota_scope::key && s.key_id != 0)
    out += std::to_string(s.key_id);
  out += ':';
  out += std::to_string(slot);
  return out;
}

std::string quota_refund_key(std::string_view counter_key) {
  std::string out = "r:";
  out += counter_key;
  return out;
}

caf::error validate_quota(const quota_config& q) {
  // Each message starts with the field it is about.
  auto bad = [](std::string text) {
    return caf::make_error(errc::bad_config, std::move(text));
  };
  if (q.scope == quota_scope::unknown)
    return bad("scope: unknown scope (expected organization, project, key "
               "or global)");
  if (q.limit < -1)
    return bad("limit: expected an integer >= 0 (or none for unlimited), got "
               + std::to_string(q.limit));
  if (q.window < 0)
    return bad("window: expected an integer >= 1 (seconds), got "
               + std::to_string(q.window));
  if (q.limit != 0 && q.window == 0)
    return bad("window: expected an integer >= 1 (seconds) for a quota with "
               "a limit other than 0, got 0");
  if (q.limit != 0 && q.id.empty())
    return bad("id: a quota with a limit other than 0 needs an id (it names "
               "the counter)");
  return {};
}

std::vector<const quota_config*> active_quotas(const quota_check& c) {
  std::vector<const quota_config*> out;
  for (auto& q : c.quotas) {
    if (!quota_matches(q, c.scoping))
      continue;
    if (q.limit == 0 || (!q.id.empty() && q.window > 0))
      out.push_back(&q);
  }
  return out;
}

void add_rejection(quota_decision& d, int64_t retry_after,
                   const std::string& reason_code) {
  if (d.accepted || retry_after > d.retry_after) {
    d.retry_after = retry_after;
    d.reason_code = reason_code;
  }
  d.accepted = false;
}

} // namespace vigil
