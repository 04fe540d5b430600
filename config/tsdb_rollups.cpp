#include "config/tsdb_rollups.hpp"

#include <charconv>
#include <string>

#include "messages/errors.hpp"

namespace vigil {

namespace {

caf::error bad(std::string text) {
  return caf::make_error(errc::bad_config, std::move(text));
}

/// A plain (unquoted) YAML integer within [lo, hi].
bool read_int(const YAML::Node& node, int64_t lo, int64_t hi, int64_t& out) {
  if (!node.IsScalar() || node.Tag() != "?")
    return false;
  const auto& s = node.Scalar();
  auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && res.ec == std::errc{} && res.ptr == s.data() + s.size()
         && out >= lo && out <= hi;
}

} // namespace

caf::expected<std::vector<tsdb_rollup>>
parse_tsdb_rollups(const YAML::Node& node) {
  constexpr int64_t max_seconds = 31536000;
  constexpr int64_t max_samples = 100000;
  constexpr size_t max_rollups = 16;
  if (!node.IsSequence())
    return bad("expected a list of [seconds, samples], finest first, e.g. "
               "[[10, 360], [3600, 168], [86400, 90]]");
  if (node.size() == 0)
    return bad("expected at least one [seconds, samples]");
  if (node.size() > max_rollups)
    return bad("expected at most " + std::to_string(max_rollups)
               + " rollups, got " + std::to_string(node.size()));
  std::vector<tsdb_rollup> out;
  size_t index = 0;
  for (const auto& item : node) {
    ++index;
    auto where = "item " + std::to_string(index) + ": ";
    if (!item.IsSequence() || item.size() != 2)
      return bad(where + "expected [seconds, samples]");
    tsdb_rollup r;
    if (!read_int(item[0], 1, max_seconds, r.seconds))
      return bad(where + "seconds: expected an integer in [1, "
                 + std::to_string(max_seconds) + "]");
    if (!read_int(item[1], 1, max_samples, r.samples))
      return bad(where + "samples: expected an integer in [1, "
                 + std::to_string(max_samples) + "]");
    if (!out.empty() && r.seconds <= out.back().seconds)
      return bad(where + "rollups go finest first: " + std::to_string(r.seconds)
                 + " s after " + std::to_string(out.back().seconds) + " s");
    out.push_back(r);
  }
  return out;
}

} // namespace vigil
