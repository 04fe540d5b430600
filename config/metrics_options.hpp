#pragma once

// The metrics.* keys (Sentry's SENTRY_METRICS_BACKEND, _OPTIONS, _PREFIX,
// _SAMPLE_RATE) read into one typed value, with metrics.options checked
// name by name so that a typo or a missing api-key names itself.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <caf/expected.hpp>
#include <yaml-cpp/yaml.h>

namespace vigil {

class config;

/// Where vigil's internal metrics go, and how.
struct metrics_config {
  /// dummy, logging, statsd, dogstatsd, datadog or prometheus.
  std::string backend = "dummy";
  /// Before every key, e.g. "vigil." + "events.processed".
  std::string prefix = "vigil.";
  /// The calls' default sample rate, in (0, 1].
  double sample_rate = 1;
  /// Seconds between emissions (and between the actors' gauges): 1 for
  /// statsd, dogstatsd, logging and prometheus, 10 for datadog unless set.
  double interval = 1;
  /// statsd / dogstatsd daemon.
  std::string host = "127.0.0.1";
  uint16_t port = 8125;
  /// Largest UDP payload (1432: fits a 1500-byte MTU with IP and UDP
  /// headers, as DogStatsD's default).
  size_t max_datagram = 1432;
  /// DogStatsD's constructor tags (and Datadog's), after each call's.
  std::vector<std::pair<std::string, std::string>> tags;
  /// datadog: never logged.
  std::string api_key;
  std::string app_key;
  /// datadog: "datadoghq.com" posts to https://api.datadoghq.com.
  std::string site = "datadoghq.com";
  /// datadog: a base URL that replaces the site's (tests, proxies).
  std::string url;
  /// prometheus on a node without the web interface (`run worker`): where
  /// /metrics is served.
  std::string bind = "127.0.0.1:9102";
};

/// Checks a metrics.options map and fills `out` from it: host, port,
/// max-datagram, tags (a map of strings, or a list of "k:v"), api-key,
/// app-key, site, url, bind. Errors name the option ("port: expected an
/// integer in [1, 65535], got 'x'"), never an api-key's value.
caf::error parse_metrics_options(const YAML::Node& node, metrics_config& out);

/// Every metrics.* key of `cfg`; errors start with the key, e.g.
/// "metrics.options: api-key: required with metrics.backend datadog".
caf::expected<metrics_config> read_metrics_config(const config& cfg);

} // namespace vigil
