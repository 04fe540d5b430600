#include "adapters/redis_lock.hpp"

#include <unistd.h>

#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

constexpr const char* renew_lua = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
)lua";

constexpr const char* release_lua = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

// Connections cache script SHAs by address: the scripts live for good.
redis_script& renew_script() {
  static redis_script script{renew_lua};
  return script;
}

redis_script& release_script() {
  static redis_script script{release_lua};
  return script;
}

caf::expected<bool> integer_reply(caf::expected<redis_reply> r,
                                  const char* what) {
  if (!r)
    return r.error();
  if (!r->is_integer())
    return caf::make_error(errc::command_failed,
                           std::string{"unexpected reply to the lock's "} + what
                             + " script");
  return r->as_int() == 1;
}

} // namespace

redis_lock::redis_lock(std::string key, std::chrono::milliseconds ttl,
                       std::string token)
  : key_(std::move(key)),
    token_(token.empty() ? make_lock_token() : std::move(token)),
    ttl_(ttl) {
  // nop
}

caf::expected<bool> redis_lock::acquire(redis_connection& conn) {
  auto px = std::to_string(ttl_.count());
  auto r = conn.command({"SET", key_, token_, "NX", "PX", px});
  if (!r)
    return r.error();
  if (r->is_status())
    return true;
  // NIL: somebody holds it; maybe us.
  return renew(conn);
}

caf::expected<bool> redis_lock::renew(redis_connection& conn) {
  auto px = std::to_string(ttl_.count());
  return integer_reply(conn.eval(renew_script(), {key_}, {token_, px}),
                       "renew");
}

caf::expected<bool> redis_lock::release(redis_connection& conn) {
  return integer_reply(conn.eval(release_script(), {key_}, {token_}),
                       "release");
}

std::string make_lock_token() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return std::string{host} + "/" + std::to_string(::getpid()) + "/"
         + new_uuid4();
}

} // namespace vigil
