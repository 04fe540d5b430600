#include "config/text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "messages/percent_encoding.hpp"

namespace vigil {

namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

} // namespace

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string_view closest_match(std::string_view word,
                               const std::vector<std::string_view>& candidates) {
  std::string_view best;
  size_t best_distance = 0;
  for (auto c : candidates) {
    auto d = edit_distance(word, c);
    if (best.empty() || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  if (!best.empty() && best_distance <= std::max<size_t>(2, word.size() / 3))
    return best;
  return {};
}

bool parse_int(std::string_view s, int64_t& out) {
  if (!s.empty() && s.front() == '+')
    s.remove_prefix(1);
  if (s.empty())
    return false;
  auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return res.ec == std::errc{} && res.ptr == s.data() + s.size();
}

bool parse_double(std::string_view s, double& out) {
  if (!s.empty() && s.front() == '+')
    s.remove_prefix(1);
  // from_chars would accept "inf" and "nan".
  if (s.empty() || s.find_first_of("iInN") != std::string_view::npos)
    return false;
  auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return res.ec == std::errc{} && res.ptr == s.data() + s.size()
         && std::isfinite(out);
}

std::optional<size_t> memory_url_max_messages(std::string_view url,
                                              size_t fallback,
                                              std::string& why) {
  auto q = url.find('?');
  if (q == std::string_view::npos)
    return fallback;
  size_t out = fallback;
  for (auto [name, value] : query_pairs(url.substr(q + 1))) {
    if (name != "max-messages") {
      why = "unknown memory:// parameter '" + std::string{name}
            + "' (known: max-messages)";
      return std::nullopt;
    }
    int64_t n = 0;
    if (!parse_int(value, n) || n < 1) {
      why = "max-messages expects an integer >= 1, got '"
            + std::string{value} + "'";
      return std::nullopt;
    }
    out = static_cast<size_t>(n);
  }
  return out;
}

} // namespace vigil
