#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

struct redisContext;
struct redisReply;

namespace vigil {

/// Where a Redis server is, parsed from `redis://[[user]:password@]host[:port][/db]`.
struct redis_endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  int32_t db = 0;
  std::string username;
  std::string password;
};

/// Parses a redis:// URL; the error names what is wrong, never the password.
caf::expected<redis_endpoint> parse_redis_url(std::string_view url);

/// Renders an endpoint for logs: "redis://127.0.0.1:6379/0" (no password).
std::string to_string(const redis_endpoint& ep);

/// Frees a hiredis reply.
struct redis_reply_deleter {
  void operator()(redisReply* r) const;
};

/// An owned hiredis reply.
using redis_reply = std::unique_ptr<redisReply, redis_reply_deleter>;

/// A Lua script run by EVALSHA; loaded on first use and again after NOSCRIPT.
struct redis_script {
  std::string source;
};

/// One synchronous hiredis connection with bounded timeouts. Not
/// thread-safe: each detached actor owns its own. Every call returns an
/// error instead of blocking past the timeout; after a connection error or
/// a timeout the connection is broken (`ok()` is false) and must be
/// replaced.
class redis_connection {
public:
  redis_connection(redis_connection&&) noexcept;
  redis_connection& operator=(redis_connection&&) noexcept;
  ~redis_connection();

  /// Connects, authenticates and selects the database, each step bounded by
  /// `timeout`, which then bounds every later call too.
  static caf::expected<redis_connection>
  connect(const redis_endpoint& ep, std::chrono::milliseconds timeout);

  /// True while the connection is usable.
  bool ok() const;

  /// Runs one command; a Redis error reply becomes errc::command_failed.
  caf::expected<redis_reply> command(const std::vector<std::string_view>& argv);

  /// Queues one command for the next `flush` (pipelining).
  void append(const std::vector<std::string_view>& argv);

  /// Queues EVALSHA of `script` with keys and args for the next `flush`.
  void append_eval(redis_script& script,
                   const std::vector<std::string_view>& keys,
                   const std::vector<std::string_view>& args);

  /// Sends every queued command and reads all replies, in order. Error
  /// replies stay in the vector (type REDIS_REPLY_ERROR) for the caller to
  /// judge; only connection errors fail the whole call. A NOSCRIPT reply to
  /// an EVALSHA loads the script and runs that command again.
  caf::expected<std::vector<redis_reply>> flush();

  /// Loads `script` so that `append_eval` can pipeline it.
  caf::error preload(redis_script& script);

  /// Runs `script` once (EVALSHA, loading it if needed).
  caf::expected<redis_reply> eval(redis_script& script,
                                  const std::vector<std::string_view>& keys,
                                  const std::vector<std::string_view>& args);

  /// The endpoint, for logs.
  const redis_endpoint& endpoint() const { return ep_; }

private:
  // An EVALSHA keeps its arguments for a NOSCRIPT retry, all in one buffer
  // (one allocation per command, not one per argument).
  struct pending_command {
    std::string args;          // every argument after the sha, back to back
    std::vector<size_t> ends;  // end offset of each argument in `args`
    redis_script* script = nullptr;
  };

  redis_connection() = default;
  caf::error io_error(const char* what);
  caf::expected<std::string> load_script(redis_script& script);
  void append_argv(const std::vector<std::string_view>& argv);
  void append_evalsha(const std::string& sha, const pending_command& cmd);

  redisContext* ctx_ = nullptr;
  redis_endpoint ep_;
  std::chrono::milliseconds timeout_{0};
  std::vector<pending_command> pending_;
  std::vector<std::pair<const redis_script*, std::string>> shas_;
};

/// Returns the error text of an error reply, or "" if `r` is not one.
std::string reply_error(const redisReply* r);

/// Returns a bulk or status reply as text ("" for nil).
std::string_view reply_text(const redisReply* r);

} // namespace vigil
