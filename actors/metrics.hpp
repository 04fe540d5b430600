#pragma once

// vigil's internal metrics, as Sentry's `sentry.utils.metrics`: one call at
// the site, cheap and never blocking. Each thread aggregates into its own
// table (counters summed, gauges last value, timings and distributions as
// count, sum, min, max, histogram buckets and a bounded sample); the
// metrics actor (actors/metrics_service.hpp) collects every table once an
// interval and hands the merged points to the backend. While no backend
// is on (metrics.backend dummy, the default) every call returns at once.

#include <chrono>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/metrics_format.hpp"

namespace vigil::metrics {

/// One tag of a call, e.g. `{"status", "success"}`.
struct tag {
  std::string_view key;
  std::string_view value;
};

/// The tags of a call: a braced list `{{"k", "v"}, ...}` (its strings live
/// until the call returns) or a vector of `tag`.
class tags {
public:
  tags() = default;
  // The list's array lives until the end of the call's full expression,
  // which is as long as a `tags` argument is used.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
  tags(std::initializer_list<tag> xs) : begin_(xs.begin()), size_(xs.size()) {
    // nop
  }
#pragma GCC diagnostic pop
  tags(const std::vector<tag>& xs) : begin_(xs.data()), size_(xs.size()) {
    // nop
  }
  const tag* begin() const { return begin_; }
  const tag* end() const { return begin_ + size_; }
  size_t size() const { return size_; }

private:
  const tag* begin_ = nullptr;
  size_t size_ = 0;
};

/// Rate value meaning "the configured metrics.sample-rate".
inline constexpr double default_rate = -1;

/// Adds `amount` to counter `key` (Sentry's `metrics.incr`).
void incr(std::string_view key, double amount = 1, tags t = {},
          double rate = default_rate);

/// Records a duration in milliseconds (Sentry's `metrics.timing`).
void timing(std::string_view key, double milliseconds, tags t = {},
            double rate = default_rate);

/// Records many durations of one key and tags at once (one table lookup:
/// what a batch loop collected).
void timings(std::string_view key, const std::vector<double>& milliseconds,
             tags t = {}, double rate = default_rate);

/// Sets gauge `key` (the last value in an interval wins).
void gauge(std::string_view key, double value, tags t = {});

/// Records one value of a distribution (sizes, counts per batch).
void distribution(std::string_view key, double value, tags t = {},
                  double rate = default_rate);

/// Milliseconds since `start` (a timing's value).
inline double elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(
           std::chrono::steady_clock::now() - start)
    .count();
}

/// Turns recording on or off, with the default sample rate. Off (the
/// start) every call is a no-op; turning off drops what was recorded.
void configure(bool on, double sample_rate = 1);

/// Whether calls record.
bool enabled();

/// Takes (and clears) every thread's aggregates, merged: one point per
/// kind, key, tags and rate.
std::vector<metric_point> collect();

/// Samples kept per timing or distribution per thread and interval.
inline constexpr size_t max_samples = 64;

/// The Prometheus page, set by the prometheus backend (none: the backend
/// is another). `render` is called on the server's thread.
class exposition {
public:
  virtual ~exposition();
  virtual std::string render() const = 0;
};

/// Publishes (or, with nullptr, withdraws) the Prometheus page.
void publish_exposition(std::shared_ptr<const exposition> page);

/// The Prometheus text exposition, when metrics.backend is prometheus.
std::optional<std::string> prometheus_page();

} // namespace vigil::metrics
