#pragma once

// The `<service>.options` maps of the services with Sentry-style backends
// (buffer.options, tsdb.options): which names each accepts, their ranges
// and defaults, checked when the configuration loads so that a typo names
// the key instead of being ignored.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <yaml-cpp/yaml.h>

namespace vigil {

class config;

/// One name a service's options map accepts: an integer in [min, max]
/// with a default, or (`text`) a string such as `cluster`.
struct service_option_field {
  std::string_view name;
  int64_t fallback = 0;
  int64_t min = 0;
  int64_t max = 0;
  bool text = false;
  std::string_view fallback_text = {};
};

/// A parsed options map: every field present, defaults filled in.
struct service_options {
  std::map<std::string, int64_t, std::less<>> integers;
  std::map<std::string, std::string, std::less<>> texts;

  /// The integer `name` (a field of the map's spec).
  int64_t integer(std::string_view name) const;
  /// The string `name`.
  const std::string& text(std::string_view name) const;
};

/// Parses `node` (the value of `key`) against `fields`: a map whose names
/// are all in `fields`, integers in range. Errors name the option, as the
/// configuration check prefixes them with the key ("buffer.options:
/// local-flush-ms: expected an integer in [1, 60000], got 'soon'").
caf::expected<service_options>
parse_service_options(const YAML::Node& node, std::string_view key,
                      const std::vector<service_option_field>& fields);

/// parse_service_options of `key` in `cfg`; errors start with the key.
caf::expected<service_options>
read_service_options(const config& cfg, std::string_view key,
                     const std::vector<service_option_field>& fields);

/// buffer.options: cluster, pending-partitions, incr-batch-size,
/// local-flush-ms.
const std::vector<service_option_field>& buffer_option_fields();

/// tsdb.options: cluster.
const std::vector<service_option_field>& tsdb_option_fields();

/// filestore.options: location (filesystem); access_key, secret_key,
/// bucket_name, endpoint_url, region, default_acl (s3). All text.
const std::vector<service_option_field>& filestore_option_fields();

/// digests.options: cluster (redis), ttl (seconds records, timelines and
/// digests live in Redis; Sentry's 3600).
const std::vector<service_option_field>& digests_option_fields();

} // namespace vigil
