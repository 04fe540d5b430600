#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
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

/// What a Redis reply is. vigil speaks RESP2 (it never sends HELLO 3), so
/// these six kinds are all there are.
enum class redis_kind : uint8_t { nil, integer, string, status, error, array };

class redis_elements;

/// One Redis reply, or one element of an array reply: a read-only view into
/// a reply that a `redis_reply` owns, valid while that owner lives. Asking
/// a reply for what it is not gives an empty answer (0, "", no elements)
/// rather than failing, so a surprising reply cannot crash a caller; check
/// `kind()` where the difference matters.
class redis_value {
public:
  /// A nil reply.
  redis_value() = default;

  /// Which of the six kinds this reply is.
  redis_kind kind() const;

  bool is_nil() const { return kind() == redis_kind::nil; }
  bool is_integer() const { return kind() == redis_kind::integer; }
  bool is_string() const { return kind() == redis_kind::string; }
  bool is_status() const { return kind() == redis_kind::status; }
  bool is_error() const { return kind() == redis_kind::error; }
  bool is_array() const { return kind() == redis_kind::array; }

  /// The number of an integer reply; `otherwise` for any other kind.
  int64_t as_int(int64_t otherwise = 0) const;

  /// The bytes of a string, status or error reply; "" for any other kind.
  std::string_view as_string() const;

  /// The text of an error reply; "" for any other kind.
  std::string error_text() const;

  /// How many elements an array reply has; 0 for any other kind.
  size_t size() const;

  /// Element `i` of an array reply; nil if there is no such element.
  redis_value operator[](size_t i) const;

  /// The elements of an array reply (none for any other kind), for range-for.
  redis_elements elements() const;

protected:
  explicit redis_value(const redisReply* r) : r_(r) {}

  const redisReply* r_ = nullptr;
};

/// The elements of an array reply, as `redis_value`s.
class redis_elements {
public:
  class iterator {
  public:
    using value_type = redis_value;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    iterator(redis_value array, size_t i) : array_(array), i_(i) {}
    redis_value operator*() const { return array_[i_]; }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    iterator operator++(int) {
      auto old = *this;
      ++i_;
      return old;
    }
    bool operator==(const iterator& other) const { return i_ == other.i_; }

  private:
    redis_value array_;
    size_t i_ = 0;
  };

  explicit redis_elements(redis_value array)
    : array_(array), size_(array.size()) {}

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  redis_value operator[](size_t i) const { return array_[i]; }
  iterator begin() const { return {array_, 0}; }
  iterator end() const { return {array_, size_}; }

private:
  redis_value array_;
  size_t size_;
};

/// A reply as read from the connection, owning what hiredis allocated for
/// it (freed when the reply goes). Move-only; a moved-from reply is nil.
class redis_reply : public redis_value {
public:
  redis_reply() = default;
  redis_reply(redis_reply&& other) noexcept;
  redis_reply& operator=(redis_reply&& other) noexcept;
  redis_reply(const redis_reply&) = delete;
  redis_reply& operator=(const redis_reply&) = delete;
  ~redis_reply();

private:
  friend class redis_connection;
  explicit redis_reply(redisReply* r) : redis_value(r) {}
  void reset(redisReply* r);
};

/// The first error reply among `replies` as errc::command_failed,
/// "<what>: <error text>"; no error if none is one.
caf::error check_replies(const std::vector<redis_reply>& replies,
                         std::string_view what);

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
  /// replies stay in the vector (`is_error()`) for the caller to judge; only connection errors fail the whole call. A NOSCRIPT reply to
  /// an EVALSHA loads the script and runs that command again.
  caf::expected<std::vector<redis_reply>> flush();

  /// Loads `script` so that `append_eval` can pipeline it.
  caf::error preload(redis_script& script);

  /// Runs `script` once (EVALSHA, loading it if needed).
  caf::expected<redis_reply> eval(redis_script& script,
                                  const std::vector<std::string_view>& keys,
                                  const std::vector<std::string_view>& args);

  /// For a subscribed connection (after SUBSCRIBE/PSUBSCRIBE): the next
  /// pushed reply, waiting at most `wait` for one to arrive (a wait with
  /// nothing to read leaves the connection usable, unlike a timed-out
  /// command); nil when nothing came.
  caf::expected<redis_reply> next_push(std::chrono::milliseconds wait);

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

} // namespace vigil
