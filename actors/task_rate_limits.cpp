#include "actors/task_rate_limits.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "messages/errors.hpp"

namespace vigil {

namespace {

// Python's float(text): surrounding blanks allowed, nothing else.
bool python_float(std::string_view text, double& out) {
  std::string s{text};
  auto b = s.find_first_not_of(" \t\n\r");
  auto e = s.find_last_not_of(" \t\n\r");
  if (b == std::string::npos)
    return false;
  s = s.substr(b, e - b + 1);
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && !std::isnan(out);
}

} // namespace

caf::expected<double> parse_celery_rate(const value& rate) {
  if (rate.is_nil())
    return 0.0;
  if (rate.is_number())
    return std::max(0.0, rate.as_double());
  if (!rate.is_text())
    return caf::make_error(errc::malformed,
                           "TypeError('a rate limit is a string or a number')");
  auto text = std::string_view{rate.as_text()};
  if (text.empty())
    return 0.0;
  auto slash = text.find('/');
  auto ops = text.substr(0, slash);
  auto unit = slash == std::string_view::npos ? std::string_view{"s"}
                                              : text.substr(slash + 1);
  double n = 0;
  if (!python_float(ops, n))
    return caf::make_error(errc::malformed,
                           "ValueError(\"could not convert string to float: '"
                             + std::string{ops} + "'\")");
  double per_second = 0;
  if (unit == "s" || unit.empty())
    per_second = n;
  else if (unit == "m")
    per_second = n / 60.0;
  else if (unit == "h")
    per_second = n / 60.0 / 60.0;
  else
    return caf::make_error(errc::malformed,
                           "KeyError('" + std::string{unit} + "')");
  return std::max(0.0, per_second);
}

void task_rate_limits::set(const std::string& task, double per_second) {
  std::lock_guard guard{mtx_};
  if (per_second <= 0)
    buckets_.erase(task);
  else
    buckets_[task] = bucket{per_second, 0};
  any_.store(!buckets_.empty());
}

int64_t task_rate_limits::reserve(const std::string& task, int64_t now_us) {
  if (!any_.load())
    return 0;
  std::lock_guard guard{mtx_};
  auto i = buckets_.find(task);
  if (i == buckets_.end())
    return 0;
  auto& b = i->second;
  // Capacity 1: a token left unused does not pile up into a burst.
  auto at = std::max(now_us, b.next_us);
  b.next_us = at + static_cast<int64_t>(1e6 / b.per_second);
  if (at > now_us)
    ++delayed;
  return at - now_us;
}

} // namespace vigil
