#pragma once

// `tsdb.rollups`, Sentry's SENTRY_TSDB_ROLLUPS: the time-series store's
// resolutions as a list of [seconds, samples], finest first. The
// configuration check and the TSDB's options read it with the same parser.

#include <vector>

#include <caf/expected.hpp>
#include <yaml-cpp/yaml.h>

#include "messages/tsdb_keys.hpp"

namespace vigil {

/// Parses a list of [seconds, samples] pairs: at least one and at most 16,
/// seconds between 1 and 31536000 (a year) and strictly ascending, samples
/// between 1 and 100000. Errors (errc::bad_config) say which item is wrong
/// and why, without the key (the caller names it).
caf::expected<std::vector<tsdb_rollup>>
parse_tsdb_rollups(const YAML::Node& node);

} // namespace vigil
