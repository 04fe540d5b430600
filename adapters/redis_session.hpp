#pragma once

// A backend's Redis connection, made when first needed and again after it
// broke, at most every `retry` (connecting to a hung server costs a whole
// timeout, so meanwhile calls fail at once and the caller's fallback runs).

#include <chrono>
#include <optional>
#include <string>

#include <caf/expected.hpp>

#include "adapters/redis.hpp"

namespace vigil {

class redis_session {
public:
  redis_session(redis_endpoint ep, std::chrono::milliseconds timeout,
                std::chrono::milliseconds retry = std::chrono::milliseconds{200});

  /// The connection, connecting first when there is none; fails with
  /// errc::connection_failed while the last attempt is younger than `retry`.
  caf::expected<redis_connection*> get();

  /// Runs what was appended to the connection; a connection error drops the
  /// connection (the next `get` connects again).
  caf::expected<std::vector<redis_reply>> flush();

  /// Drops the connection (after an error that left it unusable).
  void reset();

  /// "redis://host:port/db", for logs.
  std::string describe() const;

private:
  redis_endpoint ep_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds retry_;
  std::optional<redis_connection> conn_;
  std::chrono::steady_clock::time_point last_attempt_{};
};

} // namespace vigil
