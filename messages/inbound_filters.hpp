#pragma once

// A project's inbound filters, as Sentry's project settings name them and
// Relay applies them: after normalization and before quotas, an event that
// a filter matches is dropped (answered as accepted, counted in the
// project's, organization's and key's "blacklisted" series and in the
// outcome "filtered"), and consumes no quota. See docs/INGEST.md.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

namespace vigil {

/// An address or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`), parsed.
struct ip_block {
  /// 4 or 16 bytes.
  std::string address;
  int prefix_bits = 0;
};

/// Parses "1.2.3.4", "1.2.3.0/24", "::1" or "2001:db8::/32".
caf::expected<ip_block> parse_ip_block(std::string_view text);

/// Whether the address `ip` (text) falls in `block`.
bool ip_in_block(std::string_view ip, const ip_block& block);

/// Sentry's glob: `*` any run of characters, `?` one, ASCII letters
/// compared without case (Relay's GlobPatterns for these filters).
bool glob_matches(std::string_view pattern, std::string_view text);

/// The filters of one project (config `projects[].filters`).
struct inbound_filters {
  /// filters:localhost: events whose user address is 127.0.0.1 or ::1, or
  /// whose request URL's host is localhost or 127.0.0.1.
  bool localhost = false;
  /// filters:web-crawlers: events whose request User-Agent is a known
  /// crawler's.
  bool web_crawlers = false;
  /// sentry:error_messages: globs over each exception's "Type: value" and
  /// the log message.
  std::vector<std::string> error_messages;
  /// sentry:releases: globs over the event's release.
  std::vector<std::string> releases;
  /// sentry:blacklisted_ips: the sending client's address (the socket's,
  /// or X-Forwarded-For's with web.trust-forwarded-for).
  std::vector<ip_block> blacklisted_ips;

  bool empty() const {
    return !localhost && !web_crawlers && error_messages.empty()
           && releases.empty() && blacklisted_ips.empty();
  }
};

/// What the filters look at in one event (normalization fills it when
/// asked to: normalize_options::filter_facts).
struct filter_facts {
  /// "Type: value" of each exception (the one that is there when only one
  /// is), then the log message.
  std::vector<std::string> messages;
  std::string release;
  /// user.ip_address after normalization.
  std::string user_ip;
  /// request.url.
  std::string url;
  /// request.headers' User-Agent.
  std::string user_agent;
};

/// The filter that drops the event, by Relay's names: "ip-address",
/// "release-version", "error-message", "localhost", "web-crawlers"; nullopt
/// when none does. `client_ip`: the sender's address.
std::optional<std::string_view> matching_filter(const inbound_filters& f,
                                                const filter_facts& facts,
                                                std::string_view client_ip);

/// Whether `user_agent` is a web crawler's (Relay's list of bots).
bool is_web_crawler(std::string_view user_agent);

} // namespace vigil
