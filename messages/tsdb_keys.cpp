#include "messages/tsdb_keys.hpp"

#include <algorithm>

#include <boost/crc.hpp>

#include "messages/tsdb_messages.hpp"

#include "messages/md5.hpp"
#include "messages/python_repr.hpp"

namespace vigil {

std::vector<tsdb_rollup> default_tsdb_rollups() {
  return {{10, 360}, {3600, 168}, {86400, 90}};
}

int64_t tsdb_bucket_start(int64_t ts, int64_t rollup) {
  return ts - ts % rollup;
}

int64_t tsdb_bucket_index(int64_t ts, int64_t rollup) {
  return ts / rollup;
}

int64_t tsdb_expiry(const tsdb_rollup& r, int64_t ts) {
  return tsdb_bucket_start(ts, r.seconds) + r.seconds * r.samples;
}

tsdb_rollup tsdb_optimal_rollup(const std::vector<tsdb_rollup>& rollups,
                                int64_t start, int64_t end) {
  for (const auto& r : rollups)
    if (r.seconds * r.samples >= end - start)
      return r;
  return rollups.back();
}

std::vector<int64_t> tsdb_series(int64_t start, int64_t end, int64_t rollup) {
  std::vector<int64_t> out;
  for (int64_t ts = end; ts >= start; ts -= rollup)
    out.push_back(tsdb_bucket_start(ts, rollup));
  return {out.rbegin(), out.rend()};
}

std::string tsdb_model_key(const tsdb_key& key) {
  if (key.id)
    return std::to_string(*key.id);
  return md5_hex(python_bytes_repr(key.text));
}

std::string tsdb_environment_key(std::string model_key,
                                 std::optional<int64_t> environment_id) {
  if (environment_id)
    model_key += "?e=" + std::to_string(*environment_id);
  return model_key;
}

namespace {

std::string bucket_prefix(tsdb_model model, int64_t rollup, int64_t ts) {
  std::string out{tsdb_prefix};
  out += std::to_string(static_cast<int>(model));
  out += ':';
  out += std::to_string(tsdb_bucket_index(ts, rollup));
  out += ':';
  return out;
}

} // namespace

tsdb_counter_key make_tsdb_counter_key(tsdb_model model, int64_t rollup,
                                       int64_t ts, const tsdb_key& key,
                                       std::optional<int64_t> environment_id) {
  auto model_key = tsdb_model_key(key);
  int64_t vnode = 0;
  if (key.id) {
    // Python's %: never negative for a positive divisor.
    vnode = ((*key.id % tsdb_vnodes) + tsdb_vnodes) % tsdb_vnodes;
  } else {
    boost::crc_32_type crc; // zlib's (binascii.crc32's) CRC-32
    crc.process_bytes(model_key.data(), model_key.size());
    vnode = static_cast<int64_t>(crc.checksum() % tsdb_vnodes);
  }
  return {bucket_prefix(model, rollup, ts) + std::to_string(vnode),
          tsdb_environment_key(std::move(model_key), environment_id)};
}

std::string make_tsdb_distinct_key(tsdb_model model, int64_t rollup,
                                   int64_t ts, const tsdb_key& key,
                                   std::optional<int64_t> environment_id) {
  return bucket_prefix(model, rollup, ts)
         + tsdb_environment_key(tsdb_model_key(key), environment_id);
}

tsdb_range tsdb_chart_range(const std::vector<tsdb_rollup>& rollups,
                            int64_t period, int64_t now, int64_t max_points) {
  const tsdb_rollup* pick = &rollups.back();
  for (const auto& r : rollups)
    if (period <= r.seconds * r.samples
        && (period + r.seconds - 1) / r.seconds <= max_points) {
      pick = &r;
      break;
    }
  auto buckets = std::max<int64_t>(1, (period + pick->seconds - 1)
                                        / pick->seconds);
  return tsdb_range{now - (buckets - 1) * pick->seconds, now, pick->seconds,
                    std::nullopt};
}

} // namespace vigil
