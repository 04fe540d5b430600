#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <yaml-cpp/yaml.h>

#include "messages/alert_rules.hpp"
#include "messages/cors.hpp"
#include "messages/inbound_filters.hpp"
#include "messages/quota_messages.hpp"

namespace vigil {

class config;

/// A DSN key of a project (Sentry's ProjectKey).
struct dsn_key {
  uint64_t id = 0;
  /// The 32 hex digits of the DSN.
  std::string public_key;
  bool enabled = true;
  /// Events per window; 0 = none.
  int64_t rate_limit_count = 0;
  /// Window in seconds of the key's rate limit.
  int64_t rate_limit_window = 0;
};

/// A project's own digest delays, seconds; 0 = the digests.* default.
struct project_digest_delays {
  int64_t minimum_delay = 0;
  int64_t maximum_delay = 0;
  int64_t increment_delay = 0;
};

/// A project and its keys.
struct project_config {
  uint64_t id = 0;
  uint64_t organization = 0;
  std::string slug;
  std::vector<dsn_key> keys;
  /// allowed-domains: the web origins whose pages may send events
  /// (Sentry's `sentry:origins`); default `["*"]`.
  origin_policy allowed_origins;
  /// filters: the inbound filters (none by default).
  inbound_filters filters;
  /// alert-rules: the issue alert rules (docs/ALERTS.md); Sentry's default
  /// rule when the key is absent, none for an empty list.
  std::vector<alert_rule> alert_rules{default_alert_rule()};
  /// digests: the project's own digest delays in seconds (Sentry's
  /// project options digests:mail:*); 0 = digests.* for it.
  project_digest_delays digest_delays;
};

/// An organization and its limits (Sentry's organization options).
/// A person of an organization (`organizations[].members`): who
/// notifications go to, and whose mail replies become notes.
struct member_config {
  /// "ann@example.com", as written (compared case-insensitively).
  std::string email;
  std::string name;
  /// The slugs of the projects whose notifications the member gets;
  /// empty: every project of the organization.
  std::vector<std::string> projects;
};

struct organization_config {
  uint64_t id = 0;
  std::string slug;
  /// sentry:account-rate-limit: events per hour; 0 = none.
  int64_t account_rate_limit = 0;
  /// sentry:project-rate-limit: percent of the organization's limit one
  /// project may take.
  int64_t project_rate_limit = 100;
  /// The people notifications go to (`members`; last, so that the
  /// fields above stay brace-initializable in order).
  std::vector<member_config> members;
};

/// The members of organization `org` who get project `project_slug`'s
/// notifications, in the order given.
std::vector<const member_config*>
project_members(const organization_config& org,
                const std::string& project_slug);

/// The member of `org` whose address is `email` (case-insensitive), or
/// null.
const member_config* find_member(const organization_config& org,
                                 const std::string& email);

/// Everything quotas are made from.
struct quota_catalog {
  std::vector<organization_config> organizations;
  std::vector<project_config> projects;
  /// system.rate-limit: events per minute; 0 = none.
  int64_t system_rate_limit = 0;
  /// quotas.extra: quotas given as they are (global ones, say).
  std::vector<quota_config> extra;

  /// The organization with id `id`, or null.
  const organization_config* organization(uint64_t id) const;
  /// The project with id `id`, or null.
  const project_config* project(uint64_t id) const;

  /// The organization's limit and window as Sentry's
  /// get_organization_quota computes it; limit -1 = none.
  std::pair<int64_t, int64_t> organization_quota(uint64_t org_id) const;

  /// The quotas that apply to an item of `project_id` sent with `key_id`:
  /// organization "o", project share "p" and key "k", each limited to the
  /// error categories as Sentry's get_quotas makes them (sessions, spans,
  /// transactions and attachments never count against them), and the
  /// extra ones; a disabled key gives one reject-all quota (every
  /// category).
  std::vector<quota_config> quotas_for(uint64_t project_id,
                                       uint64_t key_id) const;

  /// Finds a key by its public part; nullptr if unknown.
  const dsn_key* find_key(const std::string& public_key,
                          uint64_t* project_id = nullptr) const;
};

/// Sentry's DataCategory.error_categories(): "default", "error",
/// "security". The organization, project and key quotas count only these.
std::vector<std::string> error_categories();

/// Parses the `organizations` list. Errors name the entry and field but not
/// the configuration key, which the caller adds once ("entry 1 (id 1):
/// account-rate-limit: expected an integer >= 0, got '-5'").
caf::expected<std::vector<organization_config>>
parse_organizations(const YAML::Node& node);

/// Parses the `projects` list ("entry 1 (id 1), key 1 (id 3):
/// rate-limit.count: expected an integer >= 0 (0 = none), got '-5'";
/// "entry 1 (id 1): allowed-domains: entry 2 'a.test/x': an origin has no
/// path ...").
caf::expected<std::vector<project_config>>
parse_projects(const YAML::Node& node);

/// Parses `quotas.extra`: quotas with id, categories, scope, scope-id,
/// limit, window and reason-code ("entry 1 (id 'g'): scope: unknown scope
/// 'team' ...").
caf::expected<std::vector<quota_config>>
parse_extra_quotas(const YAML::Node& node);

/// Builds the catalog from a validated configuration; checks that every
/// project names a known organization. Errors start with the key
/// ("projects: entry 1 (id 1): organization: no organization with id 9").
caf::expected<quota_catalog> load_quota_catalog(const config& cfg);

/// The Redis URL of `options.cluster` (default "default") in
/// `redis.clusters`: its first host.
caf::expected<std::string> redis_cluster_url(const config& cfg,
                                             const std::string& options_key);

} // namespace vigil
