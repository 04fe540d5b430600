#include "messages/inbound_filters.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include <arpa/inet.h>

#include "messages/errors.hpp"

namespace vigil {

namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// The 4 or 16 bytes of an address, "" when `text` is none.
std::string address_bytes(std::string_view text) {
  std::string s{text};
  unsigned char buf[16];
  if (::inet_pton(AF_INET, s.c_str(), buf) == 1)
    return std::string{reinterpret_cast<char*>(buf), 4};
  if (::inet_pton(AF_INET6, s.c_str(), buf) == 1)
    return std::string{reinterpret_cast<char*>(buf), 16};
  return {};
}

bool contains_lower(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size())
    return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    size_t k = 0;
    while (k < needle.size() && lower(haystack[i + k]) == needle[k])
      ++k;
    if (k == needle.size())
      return true;
  }
  return false;
}

/// The host of a URL ("" when it has none).
std::string_view url_host(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos)
    return {};
  auto rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string_view::npos)
    rest = rest.substr(at + 1);
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    return close == std::string_view::npos ? rest.substr(1)
                                           : rest.substr(1, close - 1);
  }
  return rest.substr(0, rest.find(':'));
}

bool any_glob(const std::vector<std::string>& patterns, std::string_view text) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return glob_matches(p, text); });
}

} // namespace

caf::expected<ip_block> parse_ip_block(std::string_view text) {
  auto bad = [&] {
    return caf::make_error(errc::malformed,
                           "not an IP address or CIDR block: '"
                             + std::string{text.substr(0, 64)} + "'");
  };
  ip_block out;
  auto slash = text.find('/');
  out.address = address_bytes(text.substr(0, slash));
  if (out.address.empty())
    return bad();
  int max_bits = static_cast<int>(out.address.size() * 8);
  out.prefix_bits = max_bits;
  if (slash != std::string_view::npos) {
    auto bits = text.substr(slash + 1);
    auto res = std::from_chars(bits.data(), bits.data() + bits.size(),
                               out.prefix_bits);
    if (bits.empty() || res.ec != std::errc{}
        || res.ptr != bits.data() + bits.size() || out.prefix_bits < 0
        || out.prefix_bits > max_bits)
      return bad();
  }
  return out;
}

bool ip_in_block(std::string_view ip, const ip_block& block) {
  auto bytes = address_bytes(ip);
  if (bytes.size() != block.address.size())
    return false;
  int bits = block.prefix_bits;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    auto mask = static_cast<unsigned char>(bits >= 8 ? 0xff
                                                     : 0xff << (8 - bits));
    if ((static_cast<unsigned char>(bytes[i]) & mask)
        != (static_cast<unsigned char>(block.address[i]) & mask))
      return false;
  }
  return true;
}

bool glob_matches(std::string_view pattern, std::string_view text) {
  // Iterative, with one backtrack point: linear in practice, never
  // exponential whatever the pattern.
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string_view::npos;
  size_t resume = 0;
  while (t < text.size()) {
    if (p < pattern.size()
        && (pattern[p] == '?' || lower(pattern[p]) == lower(text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

bool is_web_crawler(std::string_view user_agent) {
  // Relay's web crawler patterns, lower case; "bot" and "spider" only as
  // a word ending ("Googlebot/2.1", "(compatible; bingbot)").
  static constexpr std::array<std::string_view, 17> names{
    "mediapartners-google", "adsbot-google", "googlebot",
    "feedfetcher-google",   "bingbot",       "bingpreview",
    "baiduspider",          "slurp",         "sogou",
    "facebook",             "ia_archiver",   "slack",
    "calypso appcrawler",   "pingdom",       "lyticsbot",
    "aws security scanner", "hubspot crawler"};
  for (auto n : names)
    if (contains_lower(user_agent, n))
      return true;
  for (std::string_view word : {"bot", "bots", "spider"})
    for (size_t at = 0; at + word.size() <= user_agent.size(); ++at) {
      size_t k = 0;
      while (k < word.size() && lower(user_agent[at + k]) == word[k])
        ++k;
      if (k < word.size())
        continue;
      auto end = at + word.size();
      if (end < user_agent.size()
          && std::strchr("/ );", user_agent[end]) != nullptr)
        return true;
    }
  return false;
}

std::optional<std::string_view> matching_filter(const inbound_filters& f,
                                                const filter_facts& facts,
                                                std::string_view client_ip) {
  // Relay's order: client IPs, releases, error messages, localhost, then
  // the browser-side filters.
  if (!client_ip.empty())
    for (const auto& b : f.blacklisted_ips)
      if (ip_in_block(client_ip, b))
        return "ip-address";
  if (!facts.release.empty() && any_glob(f.releases, facts.release))
    return "release-version";
  for (const auto& m : facts.messages)
    if (any_glob(f.error_messages, m))
      return "error-message";
  if (f.localhost) {
    if (facts.user_ip == "127.0.0.1" || facts.user_ip == "::1")
      return "localhost";
    auto host = url_host(facts.url);
    if (host == "localhost" || host == "127.0.0.1" || host == "::1")
      return "localhost";
  }
  if (f.web_crawlers && is_web_crawler(facts.user_agent))
    return "web-crawlers";
  return std::nullopt;
}

} // namespace vigil
