#pragma once

#include <chrono>
#include <string>

#include <caf/expected.hpp>

#include "adapters/redis.hpp"

namespace vigil {

/// A lease on one Redis key: whoever stores its random token in the key
/// holds the lock until the key expires. The holder renews the lease well
/// before the TTL runs out and deletes the key when it stops; if it dies,
/// the key expires and another process takes over. Every step compares the
/// token first (in one Lua script), so a holder whose lease ran out can
/// never extend or delete its successor's.
///
/// The object does not own a connection: pass the caller's (one per thread,
/// as hiredis wants). Every call is as bounded as that connection.
class redis_lock {
public:
  /// A lock on `key` leased for `ttl` at a time, with a token from
  /// `make_lock_token()` unless one is given.
  redis_lock(std::string key, std::chrono::milliseconds ttl,
             std::string token = {});

  /// Takes the lock if it is free (`SET key token NX PX ttl`), or renews it
  /// if this token holds it already. Returns whether this token holds it.
  caf::expected<bool> acquire(redis_connection& conn);

  /// Extends the lease to `ttl` from now if this token still holds the lock
  /// (`if GET == token then PEXPIRE`). false means the lock was lost: it
  /// expired, and perhaps someone else holds it now.
  caf::expected<bool> renew(redis_connection& conn);

  /// Deletes the key if this token holds it (compare-and-delete). false
  /// means it was not held by this token (anymore).
  caf::expected<bool> release(redis_connection& conn);

  /// The key, the token and the lease time.
  const std::string& key() const { return key_; }
  const std::string& token() const { return token_; }
  std::chrono::milliseconds ttl() const { return ttl_; }

private:
  std::string key_;
  std::string token_;
  std::chrono::milliseconds ttl_;
};

/// A fresh random lock token that also says who holds the lock:
/// "<host>/<pid>/<uuid4>".
std::string make_lock_token();

} // namespace vigil
