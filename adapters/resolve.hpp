#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace vigil {

/// Looks up the numeric addresses of a host name (getaddrinfo's job), as
/// "127.0.0.1" or "::1", in the order the resolver gives them.
using host_lookup =
  std::function<caf::expected<std::vector<std::string>>(const std::string&)>;

/// The system resolver (getaddrinfo, TCP addresses of any family).
caf::expected<std::vector<std::string>>
system_host_lookup(const std::string& host);

/// The numeric addresses of `host` within `timeout` (at least one).
///
/// hiredis and rabbitmq-c resolve the host they connect to with a blocking
/// getaddrinfo before their connect timeout starts, so a slow or dead DNS
/// server would hold the calling thread for the resolver's own timeouts
/// (tens of seconds). Here a numeric host comes back as it is, and a name
/// is looked up on a thread of its own: when that takes longer than
/// `timeout`, the caller gets errc::timeout and the lookup finishes (and
/// cleans up) in the background; a caller asking for the same host
/// meanwhile waits on that lookup rather than starting another. `lookup`
/// replaces the system resolver in tests. Errors name the host, never
/// anything else of the URL.
caf::expected<std::vector<std::string>>
resolve_host(const std::string& host, std::chrono::milliseconds timeout,
             const host_lookup& lookup = system_host_lookup);

/// A failed `resolve_host` as the caller's connect error: "cannot connect
/// to <target>: <why>", with errc::timeout kept and anything else
/// errc::connection_failed. `target` must not contain a password.
caf::error connect_failure(const caf::error& lookup_error,
                           const std::string& target);

} // namespace vigil
