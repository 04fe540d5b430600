#include "messages/chart_format.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace vigil {

namespace {

/// `x` with `decimals` decimals, trailing zeros (and the point) dropped.
std::string trimmed(double x, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, x);
  std::string s{buf};
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0')
      s.pop_back();
    if (!s.empty() && s.back() == '.')
      s.pop_back();
  }
  if (s == "-0")
    s = "0";
  return s;
}

} // namespace

std::string format_count(double value) {
  if (!std::isfinite(value))
    return "0";
  auto mag = std::fabs(value);
  static constexpr struct {
    double unit;
    const char* suffix;
  } units[] = {{1e9, "B"}, {1e6, "M"}, {1e3, "k"}};
  for (auto& u : units) {
    // 999,950 rounds to 1000k: shown as 1M instead.
    if (mag >= u.unit * 0.99995) {
      auto scaled = value / u.unit;
      return trimmed(scaled, std::fabs(scaled) < 9.95 ? 1 : 0) + u.suffix;
    }
  }
  return trimmed(value, mag < 10 && mag != std::floor(mag) ? 1 : 0);
}

std::string format_number(double value) {
  if (!std::isfinite(value))
    return "0";
  return trimmed(value, 2);
}

std::vector<double> nice_ticks(double max, int target) {
  if (!(max > 0) || !std::isfinite(max))
    return {0, 1};
  if (target < 1)
    target = 1;
  auto raw = max / target;
  auto pow10 = std::pow(10.0, std::floor(std::log10(raw)));
  double step = pow10 * 10;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (pow10 * m >= raw) {
      step = pow10 * m;
      break;
    }
  }
  // Counts below 1 per step make no sense on a count axis of integers, but
  // fractions are fine for numbers: the caller formats them.
  std::vector<double> ticks;
  for (int i = 0; i <= 100; ++i) {
    ticks.push_back(step * i);
    if (step * i >= max * (1 - 1e-9))
      break;
  }
  return ticks;
}

std::string format_time_label(double ts, double span_seconds) {
  auto t = static_cast<time_t>(std::floor(ts));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  if (span_seconds <= 2 * 86400)
    std::strftime(buf, sizeof(buf), "%H:%M", &tm);
  else {
    std::strftime(buf, sizeof(buf), "%b ", &tm);
    std::snprintf(buf + 4, sizeof(buf) - 4, "%d", tm.tm_mday);
  }
  return buf;
}

double time_label_interval(double span_seconds, double min_seconds,
                           size_t max_labels) {
  static const double intervals[] = {
    60,    300,   600,    900,    1800,   3600,   7200,    10800,
    21600, 43200, 86400,  172800, 604800, 1209600, 2592000};
  const double floor_s = std::max(min_seconds,
                                  span_seconds > 2 * 86400 ? 86400.0 : 0.0);
  const double labels = static_cast<double>(std::max<size_t>(max_labels, 1));
  for (auto i : intervals)
    if (i >= floor_s && span_seconds / i + 1 <= labels)
      return i;
  // Longer than the list: whole multiples of 30 days.
  return 2592000 * std::ceil(span_seconds / 2592000 / labels);
}

} // namespace vigil
