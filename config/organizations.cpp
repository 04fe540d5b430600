#include "config/organizations.hpp"

#include <algorithm>
#include <charconv>
#include <exception>
#include <limits>

#include "config/alert_rules_config.hpp"
#include "config/config.hpp"
#include "messages/ascii.hpp"
#include "messages/errors.hpp"
#include "messages/quota_rules.hpp"

namespace vigil {

namespace {

caf::error bad(std::string text) {
  return caf::make_error(errc::bad_config, std::move(text));
}

// Messages name the key once: the configuration key itself is added by
// whoever reports the error ("projects: entry 1 (id 7), key 1 (id 3):
// rate-limit.count: expected an integer >= 0, got '-5'"), so paths here
// start at the list entry.

// "entry 2" or, once its id is known, "entry 2 (id 7)".
std::string entry_label(const char* what, size_t index, const YAML::Node& item) {
  std::string out = std::string{what} + " " + std::to_string(index + 1);
  if (item.IsMap() && item["id"].IsScalar()) {
    auto& id = item["id"].Scalar();
    if (!id.empty() && id.size() < 24
        && id.find_first_not_of("0123456789") == std::string::npos)
      out += " (id " + id + ")";
  }
  return out;
}

// Reads an integer field >= `min`; absent fields keep `out`. `label` names
// the entry; messages call the field `shown` (default: `field`).
caf::error read_int(const YAML::Node& map, const std::string& field,
                    const std::string& label, int64_t min, int64_t& out,
                    bool required = false, const std::string& hint = "",
                    std::string shown = "") {
  if (shown.empty())
    shown = field;
  auto node = map[field];
  if (!node.IsDefined() || node.IsNull()) {
    if (required)
      return bad(label + ": " + shown + ": is required");
    return {};
  }
  int64_t x = 0;
  const auto& s = node.IsScalar() ? node.Scalar() : std::string{};
  auto res = std::from_chars(s.data(), s.data() + s.size(), x);
  if (s.empty() || res.ec != std::errc{} || res.ptr != s.data() + s.size()
      || x < min)
    return bad(label + ": " + shown + ": expected an integer >= "
               + std::to_string(min) + hint
               + (s.empty() ? "" : ", got '" + s + "'"));
  out = x;
  return {};
}

caf::error read_id(const YAML::Node& map, const char* field,
                   const std::string& path, uint64_t& out) {
  int64_t x = 0;
  if (auto err = read_int(map, field, path, 1, x, true))
    return err;
  out = static_cast<uint64_t>(x);
  return {};
}

caf::error read_string(const YAML::Node& map, const char* field,
                       const std::string& path, std::string& out) {
  auto node = map[field];
  if (!node.IsDefined() || node.IsNull())
    return {};
  if (!node.IsScalar())
    return bad(path + ": " + field + ": expected a string");
  out = node.Scalar();
  return {};
}

caf::error expect_list(const YAML::Node& node, const std::string& what) {
  if (!node.IsSequence())
    return bad("expected a list of " + what);
  return {};
}

// Parses a list of maps: `parse_entry(item, label, out)` fills one T per
// entry, `label` naming it for messages as `prefix` + "entry 2 (id 7)"
// (`word` instead of "entry" for nested lists). `what` describes the list
// for the message when `node` is not one.
template <class T, class ParseEntry>
caf::expected<std::vector<T>>
parse_map_list(const YAML::Node& node, const std::string& what,
               const std::string& prefix, const char* word,
               ParseEntry parse_entry) {
  std::vector<T> out;
  if (!node.IsSequence())
    return bad(prefix + (prefix.empty() ? "" : ": ") + "expected a list of "
               + what);
  for (size_t i = 0; i < node.size(); ++i) {
    auto item = node[i];
    auto label = prefix + (prefix.empty() ? "" : ", ")
                 + entry_label(word, i, item);
    if (!item.IsMap())
      return bad(label + ": expected a map");
    T entry;
    if (auto err = parse_entry(item, label, entry))
      return err;
    out.push_back(std::move(entry));
  }
  return out;
}

// Reads `allowed-domains`: a list of origin rules (messages/cors.hpp);
// absent keeps the default "*".
caf::error read_allowed_domains(const YAML::Node& map, const std::string& path,
                                origin_policy& out) {
  auto node = map["allowed-domains"];
  if (!node.IsDefined() || node.IsNull())
    return {};
  if (!node.IsSequence())
    return bad(path + ": allowed-domains: expected a list of origins (*, "
                      "example.com, *.example.com, https://example.com:8443)");
  std::vector<std::string> entries;
  for (size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsScalar())
      return bad(path + ": allowed-domains: entry " + std::to_string(i + 1)
                 + ": expected a string");
    entries.push_back(node[i].Scalar());
  }
  auto policy = origin_policy::parse(entries);
  if (!policy)
    return bad(path + ": allowed-domains: " + error_text(policy.error()));
  out = std::move(*policy);
  return {};
}

// Reads a list of strings `key` of the filters map at `path`.
caf::error read_string_list(const YAML::Node& map, const char* key,
                            const std::string& path,
                            std::vector<std::string>& out) {
  auto node = map[key];
  if (!node.IsDefined() || node.IsNull())
    return {};
  if (!node.IsSequence())
    return bad(path + ": " + key + ": expected a list of strings");
  for (size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsScalar() || node[i].Scalar().empty())
      return bad(path + ": " + key + ": entry " + std::to_string(i + 1)
                 + ": expected a non-empty string");
    out.push_back(node[i].Scalar());
  }
  return {};
}

// Reads `filters`: the project's inbound filters (messages/
// inbound_filters.hpp); absent = none.
caf::error read_inbound_filters(const YAML::Node& map, const std::string& path,
                                inbound_filters& out) {
  auto node = map["filters"];
  if (!node.IsDefined() || node.IsNull())
    return {};
  auto fpath = path + ": filters";
  if (!node.IsMap())
    return bad(fpath + ": expected a map (localhost, web-crawlers, "
                       "error-messages, releases, blacklisted-ips)");
  for (auto it = node.begin(); it != node.end(); ++it) {
    auto name = it->first.Scalar();
    if (name != "localhost" && name != "web-crawlers"
        && name != "error-messages" && name != "releases"
        && name != "blacklisted-ips")
      return bad(fpath + ": unknown filter '" + name
                 + "' (expected localhost, web-crawlers, error-messages, "
                   "releases or blacklisted-ips)");
  }
  for (auto [key, flag] : {std::pair{"localhost", &out.localhost},
                           std::pair{"web-crawlers", &out.web_crawlers}}) {
    auto v = node[key];
    if (!v.IsDefined() || v.IsNull())
      continue;
    if (!v.IsScalar() || (v.Scalar() != "true" && v.Scalar() != "false"))
      return bad(fpath + ": " + key + ": expected true or false");
    *flag = v.Scalar() == "true";
  }
  if (auto err = read_string_list(node, "error-messages", fpath,
                                  out.error_messages))
    return err;
  if (auto err = read_string_list(node, "releases", fpath, out.releases))
    return err;
  std::vector<std::string> ips;
  if (auto err = read_string_list(node, "blacklisted-ips", fpath, ips))
    return err;
  for (size_t i = 0; i < ips.size(); ++i) {
    auto block = parse_ip_block(ips[i]);
    if (!block)
      return bad(fpath + ": blacklisted-ips: entry " + std::to_string(i + 1)
                 + ": " + error_text(block.error()));
    out.blacklisted_ips.push_back(std::move(*block));
  }
  return {};
}

// Reads `members`: the organization's people (email required, name,
// projects by slug).
caf::error read_members(const YAML::Node& map, const std::string& path,
                        std::vector<member_config>& out) {
  auto node = map["members"];
  if (!node.IsDefined() || node.IsNull())
    return {};
  if (!node.IsSequence())
    return bad(path + ": members: expected a list of {email, name, "
                      "projects}");
  for (size_t i = 0; i < node.size(); ++i) {
    auto mpath = path + ": members: entry " + std::to_string(i + 1);
    if (!node[i].IsMap())
      return bad(mpath + ": expected a map {email, name, projects}");
    member_config m;
    if (auto err = read_string(node[i], "email", mpath, m.email))
      return err;
    auto at = m.email.find('@');
    if (m.email.empty() || at == 0 || at == std::string::npos
        || at + 1 == m.email.size()
        || m.email.find_first_of(" \t\r\n<>,;\"") != std::string::npos)
      return bad(mpath + ": email: expected an address like "
                         "ann@example.com, got '"
                 + m.email + "'");
    if (auto err = read_string(node[i], "name", mpath, m.name))
      return err;
    if (auto err = read_string_list(node[i], "projects", mpath, m.projects))
      return err;
    for (const auto& earlier : out)
      if (ascii_lower(earlier.email) == ascii_lower(m.email))
        return bad(mpath + ": email: " + m.email + " is given twice");
    out.push_back(std::move(m));
  }
  return {};
}

// Reads `digests`: {minimum-delay, maximum-delay, increment-delay}, the
// project's own (Sentry's digests:mail:* project options).
caf::error read_digest_delays(const YAML::Node& map, const std::string& path,
                              project_digest_delays& out) {
  auto node = map["digests"];
  if (!node.IsDefined() || node.IsNull())
    return {};
  auto dpath = path + ": digests";
  if (!node.IsMap())
    return bad(dpath + ": expected a map (minimum-delay, maximum-delay, "
                       "increment-delay)");
  for (auto it = node.begin(); it != node.end(); ++it) {
    auto name = it->first.Scalar();
    if (name != "minimum-delay" && name != "maximum-delay"
        && name != "increment-delay")
      return bad(dpath + ": unknown key '" + name
                 + "' (expected minimum-delay, maximum-delay or "
                   "increment-delay)");
  }
  for (auto [key, field] :
       {std::pair{"minimum-delay", &out.minimum_delay},
        std::pair{"maximum-delay", &out.maximum_delay},
        std::pair{"increment-delay", &out.increment_delay}})
    if (auto err = read_int(node, key, dpath, 1, *field))
      return err;
  return {};
}

// Prefixes the configuration key, for errors found outside validation.
caf::error under(const char* key, const caf::error& err) {
  return bad(std::string{key} + ": " + error_text(err));
}

} // namespace

caf::expected<std::vector<organization_config>>
parse_organizations(const YAML::Node& node) try {
  auto out = parse_map_list<organization_config>(
    node, "organizations (id, slug, members, account-rate-limit, "
          "project-rate-limit)",
    "", "entry",
    [](const YAML::Node& item, const std::string& path,
       organization_config& org) -> caf::error {
      if (auto err = read_id(item, "id", path, org.id))
        return err;
      if (auto err = read_string(item, "slug", path, org.slug))
        return err;
      if (auto err = read_members(item, path, org.members))
        return err;
      if (auto err = read_int(item, "account-rate-limit", path, 0,
                              org.account_rate_limit))
        return err;
      if (auto err = read_int(item, "project-rate-limit", path, 0,
                              org.project_rate_limit))
        return err;
      if (org.project_rate_limit > 100)
        return bad(path + ": project-rate-limit: expected a percentage <= "
                          "100, got "
                   + std::to_string(org.project_rate_limit));
      return {};
    });
  if (!out)
    return out;
  for (size_t i = 0; i < out->size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if ((*out)[j].id == (*out)[i].id)
        return bad(entry_label("entry", i, node[i]) + ": id: organization "
                   + std::to_string((*out)[i].id) + " is given twice");
  return out;
} catch (const std::exception& e) {
  return bad(e.what());
}

namespace {

// One DSN key of a project (`path` names it).
caf::error parse_dsn_key(const YAML::Node& kn, const std::string& kpath,
                         dsn_key& k) {
  if (auto err = read_id(kn, "id", kpath, k.id))
    return err;
  if (auto err = read_string(kn, "public", kpath, k.public_key))
    return err;
  auto enabled = kn["enabled"];
  if (enabled.IsDefined() && !enabled.IsNull()) {
    auto t = enabled.IsScalar() ? enabled.Scalar() : "";
    if (t != "true" && t != "false")
      return bad(kpath + ": enabled: expected true or false");
    k.enabled = t == "true";
  }
  auto rl = kn["rate-limit"];
  if (rl.IsDefined() && !rl.IsNull()) {
    if (!rl.IsMap())
      return bad(kpath + ": rate-limit: expected a map with count and "
                         "window");
    if (auto err = read_int(rl, "count", kpath, 0, k.rate_limit_count, false,
                            " (0 = none)", "rate-limit.count"))
      return err;
    if (auto err = read_int(rl, "window", kpath, 0, k.rate_limit_window,
                            false, "", "rate-limit.window"))
      return err;
    if (k.rate_limit_count > 0 && k.rate_limit_window <= 0)
      return bad(kpath + ": rate-limit.window: expected an integer >= 1 "
                         "(seconds) with a count, got "
                 + std::to_string(k.rate_limit_window));
  }
  return {};
}

} // namespace

caf::expected<std::vector<project_config>>
parse_projects(const YAML::Node& node) try {
  return parse_map_list<project_config>(
    node, "projects (id, organization, slug, keys, allowed-domains, filters, "
    "alert-rules)",
    "",
    "entry",
    [](const YAML::Node& item, const std::string& path,
       project_config& p) -> caf::error {
      if (auto err = read_id(item, "id", path, p.id))
        return err;
      if (auto err = read_id(item, "organization", path, p.organization))
        return err;
      if (auto err = read_string(item, "slug", path, p.slug))
        return err;
      if (auto err = read_allowed_domains(item, path, p.allowed_origins))
        return err;
      if (auto err = read_inbound_filters(item, path, p.filters))
        return err;
      if (auto err = read_alert_rules(item, path, p.alert_rules))
        return err;
      if (auto err = read_digest_delays(item, path, p.digest_delays))
        return err;
      auto keys = item["keys"];
      if (!keys.IsDefined() || keys.IsNull())
        return {};
      if (!keys.IsSequence())
        return bad(path + ": keys: expected a list of keys (id, public, "
                          "enabled, rate-limit)");
      auto parsed = parse_map_list<dsn_key>(keys, "keys", path, "key",
                                            parse_dsn_key);
      if (!parsed)
        return parsed.error();
      p.keys = std::move(*parsed);
      return {};
    });
} catch (const std::exception& e) {
  return bad(e.what());
}

caf::expected<std::vector<quota_config>>
parse_extra_quotas(const YAML::Node& node) try {
  std::vector<quota_config> out;
  if (auto err = expect_list(node, "quotas (id, categories, scope, scope-id, "
                                   "limit, window, reason-code)"))
    return err;
  for (size_t i = 0; i < node.size(); ++i) {
    auto item = node[i];
    auto path = "entry " + std::to_string(i + 1);
    if (item.IsMap() && item["id"].IsScalar())
      path += " (id '" + item["id"].Scalar() + "')";
    if (!item.IsMap())
      return bad(path + ": expected a map");
    quota_config q;
    if (auto err = read_string(item, "id", path, q.id))
      return err;
    std::string scope = "organization";
    if (auto err = read_string(item, "scope", path, scope))
      return err;
    q.scope = parse_quota_scope(scope);
    if (q.scope == quota_scope::unknown)
      return bad(path + ": scope: unknown scope '" + scope
                 + "' (expected organization, project, key or global)");
    if (auto err = read_string(item, "scope-id", path, q.scope_id))
      return err;
    auto cats = item["categories"];
    if (cats.IsDefined() && !cats.IsNull()) {
      if (!cats.IsSequence())
        return bad(path + ": categories: expected a list");
      for (auto c : cats)
        q.categories.push_back(c.as<std::string>());
    }
    // Range problems are validate_quota's, with Relay's wording.
    if (auto err = read_int(item, "limit", path,
                            std::numeric_limits<int64_t>::min(), q.limit))
      return err;
    if (auto err = read_int(item, "window", path,
                            std::numeric_limits<int64_t>::min(), q.window))
      return err;
    if (auto err = read_string(item, "reason-code", path, q.reason_code))
      return err;
    if (auto err = validate_quota(q))
      return bad(path + ": " + error_text(err));
    out.push_back(std::move(q));
  }
  return out;
} catch (const std::exception& e) {
  return bad(e.what());
}

std::pair<int64_t, int64_t>
quota_catalog::organization_quota(uint64_t org_id) const {
  int64_t account = 0;
  for (auto& o : organizations)
    if (o.id == org_id)
      account = o.account_rate_limit;
  auto system = system_rate_limit;
  // Sentry: a set account limit (per hour) unless the system limit (per
  // minute) is lower than its per-minute rate.
  if (account > 0) {
    if (system > 0 && system < account / 60)
      return {system, 60};
    return {account, 3600};
  }
  // SENTRY_DEFAULT_MAX_EVENTS_PER_MINUTE = "90%" of the system limit.
  if (system > 0) {
    auto limit = system * 90 / 100;
    return {limit > 0 ? limit : system, 60};
  }
  return {-1, 60};
}

std::vector<std::string> error_categories() {
  return {"default", "error", "security"};
}

std::vector<quota_config> quota_catalog::quotas_for(uint64_t project_id,
                                                    uint64_t key_id) const {
  std::vector<quota_config> out;
  const project_config* proj = nullptr;
  for (auto& p : projects)
    if (p.id == project_id)
      proj = &p;
  if (proj == nullptr)
    return out;
  int64_t share = 100;
  for (auto& o : organizations)
    if (o.id == proj->organization)
      share = o.project_rate_limit;
  auto [org_limit, org_window] = organization_quota(proj->organization);
  if (share != 100 && org_limit > 0) {
    quota_config p;
    p.id = "p";
    p.scope = quota_scope::project;
    p.scope_id = std::to_string(project_id);
    p.categories = error_categories();
    p.limit = org_limit * share / 100;
    p.window = org_window;
    p.reason_code = "project_quota";
    out.push_back(std::move(p));
  }
  if (org_limit > 0) {
    quota_config o;
    o.id = "o";
    o.scope = quota_scope::organization;
    o.scope_id = std::to_string(proj->organization);
    o.categories = error_categories();
    o.limit = org_limit;
    o.window = org_window;
    o.reason_code = "org_quota";
    out.push_back(std::move(o));
  }
  for (auto& k : proj->keys) {
    if (k.id != key_id)
      continue;
    if (!k.enabled) {
      quota_config off;
      off.scope = quota_scope::key;
      off.scope_id = std::to_string(k.id);
      off.limit = 0;
      off.reason_code = "disabled";
      out.push_back(std::move(off));
    } else if (k.rate_limit_count > 0) {
      quota_config kq;
      kq.id = "k";
      kq.scope = quota_scope::key;
      kq.scope_id = std::to_string(k.id);
      kq.categories = error_categories();
      kq.limit = k.rate_limit_count;
      kq.window = k.rate_limit_window;
      kq.reason_code = "key_quota";
      out.push_back(std::move(kq));
    }
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

const dsn_key* quota_catalog::find_key(const std::string& public_key,
                                       uint64_t* project_id) const {
  for (auto& p : projects)
    for (auto& k : p.keys)
      if (k.public_key == public_key) {
        if (project_id != nullptr)
          *project_id = p.id;
        return &k;
      }
  return nullptr;
}

const organization_config* quota_catalog::organization(uint64_t id) const {
  for (const auto& o : organizations)
    if (o.id == id)
      return &o;
  return nullptr;
}

const project_config* quota_catalog::project(uint64_t id) const {
  for (const auto& p : projects)
    if (p.id == id)
      return &p;
  return nullptr;
}

std::vector<const member_config*>
project_members(const organization_config& org,
                const std::string& project_slug) {
  std::vector<const member_config*> out;
  for (const auto& m : org.members)
    if (m.projects.empty()
        || std::find(m.projects.begin(), m.projects.end(), project_slug)
             != m.projects.end())
      out.push_back(&m);
  return out;
}

const member_config* find_member(const organization_config& org,
                                 const std::string& email) {
  auto want = ascii_lower(email);
  for (const auto& m : org.members)
    if (ascii_lower(m.email) == want)
      return &m;
  return nullptr;
}

caf::expected<quota_catalog> load_quota_catalog(const config& cfg) {
  quota_catalog out;
  auto orgs = parse_organizations(cfg.get_node("organizations"));
  if (!orgs)
    return under("organizations", orgs.error());
  auto projects = parse_projects(cfg.get_node("projects"));
  if (!projects)
    return under("projects", projects.error());
  auto extra = parse_extra_quotas(cfg.get_node("quotas.extra"));
  if (!extra)
    return under("quotas.extra", extra.error());
  out.organizations = std::move(*orgs);
  out.projects = std::move(*projects);
  out.extra = std::move(*extra);
  out.system_rate_limit = cfg.get_int("system.rate-limit");
  for (size_t i = 0; i < out.projects.size(); ++i) {
    bool known = false;
    for (auto& o : out.organizations)
      known = known || o.id == out.projects[i].organization;
    if (!known)
      return bad("projects: entry " + std::to_string(i + 1) + " (id "
                 + std::to_string(out.projects[i].id)
                 + "): organization: no organization with id "
                 + std::to_string(out.projects[i].organization));
  }
  // A member's projects name projects of the member's organization.
  for (size_t i = 0; i < out.organizations.size(); ++i) {
    const auto& org = out.organizations[i];
    for (size_t j = 0; j < org.members.size(); ++j)
      for (const auto& slug : org.members[j].projects) {
        bool found = false;
        for (const auto& p : out.projects)
          found = found || (p.organization == org.id && p.slug == slug);
        if (!found)
          return bad("organizations: entry " + std::to_string(i + 1)
                     + " (id " + std::to_string(org.id)
                     + "): members: entry " + std::to_string(j + 1)
                     + ": projects: no project '" + slug
                     + "' in this organization");
      }
  }
  return out;
}

caf::expected<std::string> redis_cluster_url(const config& cfg,
                                             const std::string& options_key) try {
  std::string name = "default";
  auto opts = cfg.get_node(options_key);
  if (opts.IsMap() && opts["cluster"].IsScalar())
    name = opts["cluster"].Scalar();
  auto clusters = cfg.get_node("redis.clusters");
  if (!clusters.IsMap() || !clusters[name].IsMap())
    return bad(options_key + ".cluster: no cluster '" + name
               + "' in redis.clusters");
  auto hosts = clusters[name]["hosts"];
  if (!hosts.IsSequence() || hosts.size() == 0 || !hosts[0].IsScalar())
    return bad("redis.clusters." + name + ".hosts: expected a list of "
                                          "redis:// URLs");
  return hosts[0].Scalar();
} catch (const std::exception& e) {
  return bad(options_key + ": " + e.what());
}

} // namespace vigil
