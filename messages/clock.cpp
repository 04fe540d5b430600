#include "messages/clock.hpp"

#include <chrono>
#include <cstdio>
#include <random>

#include "messages/errors.hpp"

namespace vigil {

namespace {

// Howard Hinnant's days_from_civil / civil_from_days: exact for all dates we
// can meet, and free of the time zone state that timegm/gmtime_r consult.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

std::string format(int64_t unix_us, bool aware) {
  int64_t secs = unix_us / 1'000'000;
  int64_t us = unix_us % 1'000'000;
  if (us < 0) {
    us += 1'000'000;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lld%s",
                static_cast<long long>(y), m, d,
                static_cast<long long>(rem / 3600),
                static_cast<long long>(rem / 60 % 60),
                static_cast<long long>(rem % 60), static_cast<long long>(us),
                aware ? "+00:00" : "");
  return buf;
}

bool read_digits(std::string_view s, size_t& pos, size_t n, int64_t& out) {
  if (pos + n > s.size())
    return false;
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9')
      return false;
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

caf::error bad(std::string_view text) {
  std::string shown{text.substr(0, 64)};
  return caf::make_error(errc::malformed,
                         "invalid ISO-8601 timestamp '" + shown + "'");
}

} // namespace

int64_t now_unix_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch())
    .count();
}

double now_unix_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string format_iso8601(int64_t unix_us) {
  return format(unix_us, true);
}

std::string format_iso8601_naive(int64_t unix_us) {
  return format(unix_us, false);
}

caf::expected<int64_t> parse_iso8601(std::string_view s) {
  size_t pos = 0;
  int64_t y, mo, d, h = 0, mi = 0, sec = 0;
  if (!read_digits(s, pos, 4, y) || pos >= s.size() || s[pos++] != '-'
      || !read_digits(s, pos, 2, mo) || pos >= s.size() || s[pos++] != '-'
      || !read_digits(s, pos, 2, d))
    return bad(s);
  if (mo < 1 || mo > 12 || d < 1 || d > 31)
    return bad(s);
  int64_t frac_us = 0;
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == ' ')) {
    ++pos;
    if (!read_digits(s, pos, 2, h) || pos >= s.size() || s[pos++] != ':'
        || !read_digits(s, pos, 2, mi))
      return bad(s);
    if (pos < s.size() && s[pos] == ':') {
      ++pos;
      if (!read_digits(s, pos, 2, sec))
        return bad(s);
    }
    if (h > 23 || mi > 59 || sec > 60)
      return bad(s);
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      ++pos;
      int64_t scale = 100000;
      size_t start = pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        frac_us += (s[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == start)
        return bad(s);
    }
    if (pos < s.size()) {
      if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
      } else if (s[pos] == '+' || s[pos] == '-') {
        int sign = s[pos] == '-' ? -1 : 1;
        ++pos;
        int64_t oh, om = 0;
        if (!read_digits(s, pos, 2, oh))
          return bad(s);
        if (pos < s.size() && s[pos] == ':')
          ++pos;
        if (pos < s.size() && !read_digits(s, pos, 2, om))
          return bad(s);
        offset_s = sign * (oh * 3600 + om * 60);
      }
    }
  }
  if (pos != s.size())
    return bad(s);
  auto days = days_from_civil(y, static_cast<unsigned>(mo),
                              static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  return secs * 1'000'000 + frac_us;
}

std::string new_uuid4() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL; // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; // RFC 4122 variant
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(36, '-');
  size_t pos = 0;
  auto put = [&](uint64_t x, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23)
        ++pos;
      out[pos++] = hex[(x >> (i * 4)) & 0xf];
    }
  };
  put(hi, 16);
  put(lo, 16);
  return out;
}

} // namespace vigil
