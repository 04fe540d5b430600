#pragma once

// vigil's internal metrics as data, and their wire formats: statsd and
// DogStatsD lines packed into UDP datagrams, Datadog's series API v1 JSON,
// the logging backend's line, and Prometheus' text exposition. Pure
// functions: the metrics actor and its backends send what these return.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil {

/// What a metric measures (Sentry's MetricsBackend methods).
enum class metric_kind : uint8_t {
  /// `incr`: summed.
  counter,
  /// `timing`, in milliseconds.
  timing,
  /// `gauge`: the last value wins.
  gauge,
  /// `distribution`: any value (sizes, counts per batch).
  distribution,
};

/// Tags as `{key, value}`, in the order the call gave them.
using metric_tags = std::vector<std::pair<std::string, std::string>>;

/// Histogram buckets of timings and distributions: 15 upper bounds, and
/// +Inf last.
inline constexpr size_t metric_bucket_count = 16;

/// Upper bounds of the timing buckets, in seconds (Prometheus' base unit).
extern const std::array<double, metric_bucket_count - 1> timing_bucket_bounds;

/// Upper bounds of the distribution buckets (no unit).
extern const std::array<double, metric_bucket_count - 1>
  distribution_bucket_bounds;

/// The bucket of an observation: for a timing `value` is in milliseconds.
size_t metric_bucket(metric_kind kind, double value);

/// One metric's aggregate over an interval (of one thread, or merged).
struct metric_point {
  metric_kind kind = metric_kind::counter;
  /// Without the prefix, e.g. "events.processed".
  std::string key;
  metric_tags tags;
  /// The sample rate the calls used: a counter's `value` holds the sampled
  /// amounts only, as statsd's `|@rate` expects.
  double rate = 1;
  /// A counter's sum, a gauge's last value.
  double value = 0;
  /// A gauge's order among all gauge calls (the latest wins on merge).
  uint64_t order = 0;
  /// Timings and distributions: the observations' count, sum, min, max.
  uint64_t count = 0;
  double sum = 0;
  double min = 0;
  double max = 0;
  /// A bounded uniform sample of the observations (reservoir).
  std::vector<double> samples;
  /// Observations per bucket (not cumulative), see metric_bucket.
  std::array<uint64_t, metric_bucket_count> buckets{};
};

/// Sentry's sampling rule: `rate >= 1 or random >= 1 - rate`, with
/// `random` uniform in [0, 1).
bool should_sample(double rate, double random);

/// Adds observation `x` to a timing or distribution point, keeping at most
/// `max_samples` samples (reservoir sampling: `random` uniform in [0, 1)).
void observe(metric_point& p, double x, size_t max_samples, double random);

/// Merges `x` into `into` (same kind, key, tags and rate): counters add,
/// the later gauge wins, observations add (samples kept to `max_samples`).
void merge_point(metric_point& into, const metric_point& x,
                 size_t max_samples);

/// The statsd dialect.
enum class statsd_flavor {
  /// Etsy's statsd (pystatsd, Sentry's statsd backend): no tags,
  /// distributions sent as timings.
  statsd,
  /// Datadog's: `|#k:v,...` tags, `|d` distributions.
  dogstatsd,
};

/// Appends the lines of `p`: `prefix+key:value|type[|@rate][|#tags]`.
/// A counter is one line; a gauge one (statsd: a negative gauge is sent as
/// `:0|g` then the value, so the server does not take it as a delta); a
/// timing or distribution one line per sample, with the rate lowered by
/// the share of observations the sample kept. `constant_tags` (DogStatsD's
/// constructor tags) come after the call's. Characters that would break
/// a line (`:|@#,` and newlines) become '_'.
void append_statsd_lines(std::vector<std::string>& out, const metric_point& p,
                         std::string_view prefix, statsd_flavor flavor,
                         const metric_tags& constant_tags = {});

/// Packs lines into datagram payloads of at most `max_bytes`, joined by
/// '\n'; a line longer than that goes alone.
std::vector<std::string> pack_datagrams(const std::vector<std::string>& lines,
                                        size_t max_bytes);

/// Datadog's `POST /api/v1/series` body for one batch: counters as type
/// "count" (scaled by 1/rate), gauges as "gauge", timings and
/// distributions as gauges `.avg`, `.max`, `.median`, `.95percentile` and
/// a count `.count`; `now` is the points' time (seconds), `interval` the
/// batch's length, `host` the reporting host.
std::string datadog_series_json(const std::vector<metric_point>& points,
                                std::string_view prefix,
                                const metric_tags& constant_tags, double now,
                                double interval, std::string_view host);

/// The logging backend's line, Sentry's shape: `'key': +5` for a counter,
/// `'key': 12.5 ms` (mean, with the count) for a timing, `'key': = 3` for a
/// gauge; tags after.
std::string metric_log_line(const metric_point& p, std::string_view prefix);

/// A Prometheus metric or label name from a dotted key: every character
/// outside [a-zA-Z0-9_:] (label names: [a-zA-Z0-9_]) becomes '_', and a
/// leading digit gets a '_' before it.
std::string prometheus_name(std::string_view key, bool label = false);

/// The cumulative values Prometheus scrapes, fed one interval at a time.
/// Counters are `<name>_total` (scaled by 1/rate), gauges `<name>`,
/// timings `<name>_seconds` histograms, distributions `<name>` histograms
/// (`_bucket{le=...}`, `_sum`, `_count`). A key whose sanitised name a
/// metric of another kind took first is skipped (counted).
class prometheus_state {
public:
  /// Adds one interval's aggregate under `prefix`.
  void add(const metric_point& p, std::string_view prefix);

  /// The text exposition format 0.0.4, with HELP and TYPE lines.
  std::string render() const;

  /// Points skipped for a name clash.
  uint64_t clashes() const { return clashes_; }

private:
  struct series_values {
    double value = 0;
    uint64_t count = 0;
    double sum = 0;
    std::array<uint64_t, metric_bucket_count> buckets{};
  };
  struct family {
    metric_kind kind;
    std::string help;
    /// By the rendered label set, `{k="v",...}` or "".
    std::map<std::string, series_values> series;
  };
  std::map<std::string, family> families_;
  uint64_t clashes_ = 0;
};

} // namespace vigil
