#include "adapters/redis.hpp"

#include <cerrno>
#include <charconv>

#include <hiredis/hiredis.h>
#include <poll.h>

#include "adapters/resolve.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

timeval to_timeval(std::chrono::milliseconds t) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  return tv;
}

caf::error bad_url(std::string what) {
  return caf::make_error(errc::bad_config, "invalid redis URL: " + what);
}

} // namespace

redis_kind redis_value::kind() const {
  if (r_ == nullptr)
    return redis_kind::nil;
  switch (r_->type) {
    case REDIS_REPLY_INTEGER:
      return redis_kind::integer;
    case REDIS_REPLY_STRING:
      return redis_kind::string;
    case REDIS_REPLY_STATUS:
      return redis_kind::status;
    case REDIS_REPLY_ERROR:
      return redis_kind::error;
    case REDIS_REPLY_ARRAY:
      return redis_kind::array;
    default: // RESP3 kinds: vigil never asks for them (no HELLO 3)
      return redis_kind::nil;
  }
}

int64_t redis_value::as_int(int64_t otherwise) const {
  if (r_ == nullptr || r_->type != REDIS_REPLY_INTEGER)
    return otherwise;
  return static_cast<int64_t>(r_->integer);
}

std::string_view redis_value::as_string() const {
  if (r_ == nullptr
      || (r_->type != REDIS_REPLY_STRING && r_->type != REDIS_REPLY_STATUS
          && r_->type != REDIS_REPLY_ERROR))
    return {};
  return {r_->str, r_->len};
}

std::string redis_value::error_text() const {
  if (r_ == nullptr || r_->type != REDIS_REPLY_ERROR)
    return {};
  return std::string{r_->str, r_->len};
}

size_t redis_value::size() const {
  if (r_ == nullptr || r_->type != REDIS_REPLY_ARRAY)
    return 0;
  return r_->elements;
}

redis_value redis_value::operator[](size_t i) const {
  if (i >= size())
    return {};
  return redis_value{r_->element[i]};
}

redis_elements redis_value::elements() const {
  return redis_elements{*this};
}

redis_reply::redis_reply(redis_reply&& other) noexcept
  : redis_value(other.r_) {
  other.r_ = nullptr;
}

redis_reply& redis_reply::operator=(redis_reply&& other) noexcept {
  if (this != &other) {
    reset(const_cast<redisReply*>(other.r_));
    other.r_ = nullptr;
  }
  return *this;
}

redis_reply::~redis_reply() {
  reset(nullptr);
}

// The reply is only read through the view, but hiredis allocated it for
// this owner, which frees it.
void redis_reply::reset(redisReply* r) {
  if (r_ != nullptr)
    freeReplyObject(const_cast<redisReply*>(r_));
  r_ = r;
}

caf::error check_replies(const std::vector<redis_reply>& replies,
                         std::string_view what) {
  for (auto& r : replies)
    if (r.is_error())
      return caf::make_error(errc::command_failed,
                             std::string{what} + ": " + r.error_text());
  return {};
}

caf::expected<redis_endpoint> parse_redis_url(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  if (url.substr(0, scheme.size()) != scheme)
    return bad_url("expected redis://[[user]:password@]host[:port][/db]");
  auto rest = url.substr(scheme.size());
  redis_endpoint ep;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    auto creds = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto colon = creds.find(':'); colon != std::string_view::npos) {
      ep.username = std::string{creds.substr(0, colon)};
      ep.password = std::string{creds.substr(colon + 1)};
    } else {
      ep.password = std::string{creds};
    }
  }
  auto slash = rest.find('/');
  auto hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    auto db = rest.substr(slash + 1);
    if (auto q = db.find('?'); q != std::string_view::npos)
      db = db.substr(0, q);
    if (!db.empty()) {
      auto res = std::from_chars(db.data(), db.data() + db.size(), ep.db);
      if (res.ec != std::errc{} || res.ptr != db.data() + db.size() || ep.db < 0)
        return bad_url("database must be a number, got '" + std::string{db} + "'");
    }
  }
  if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    auto port = hostport.substr(colon + 1);
    unsigned p = 0;
    auto res = std::from_chars(port.data(), port.data() + port.size(), p);
    if (res.ec != std::errc{} || res.ptr != port.data() + port.size() || p == 0
        || p > 65535)
      return bad_url("port must be 1..65535, got '" + std::string{port} + "'");
    ep.port = static_cast<uint16_t>(p);
    hostport = hostport.substr(0, colon);
  }
  if (!hostport.empty())
    ep.host = std::string{hostport};
  return ep;
}

std::string to_string(const redis_endpoint& ep) {
  return "redis://" + ep.host + ":" + std::to_string(ep.port) + "/"
         + std::to_string(ep.db);
}

redis_connection::redis_connection(redis_connection&& other) noexcept
  : ctx_(other.ctx_),
    ep_(std::move(other.ep_)),
    timeout_(other.timeout_),
    pending_(std::move(other.pending_)),
    shas_(std::move(other.shas_)) {
  other.ctx_ = nullptr;
}

redis_connection& redis_connection::operator=(redis_connection&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr)
      redisFree(ctx_);
    ctx_ = other.ctx_;
    other.ctx_ = nullptr;
    ep_ = std::move(other.ep_);
    timeout_ = other.timeout_;
    pending_ = std::move(other.pending_);
    shas_ = std::move(other.shas_);
  }
  return *this;
}

redis_connection::~redis_connection() {
  if (ctx_ != nullptr)
    redisFree(ctx_);
}

caf::expected<redis_connection>
redis_connection::connect(const redis_endpoint& ep,
                          std::chrono::milliseconds timeout) {
  redis_connection conn;
  conn.ep_ = ep;
  conn.timeout_ = timeout;
  auto tv = to_timeval(timeout);
  auto addresses = resolve_host(ep.host, timeout);
  if (!addresses)
    return connect_failure(addresses.error(), to_string(ep));
  // The first address that answers, as hiredis would try them itself.
  for (const auto& address : *addresses) {
    if (conn.ctx_ != nullptr)
      redisFree(conn.ctx_);
    conn.ctx_ = redisConnectWithTimeout(address.c_str(), ep.port, tv);
    if (conn.ctx_ == nullptr)
      return caf::make_error(errc::connection_failed,
                             "cannot allocate a redis context");
    if (conn.ctx_->err == 0)
      break;
  }
  if (conn.ctx_->err != 0)
    return conn.io_error("connect");
  if (redisSetTimeout(conn.ctx_, tv) != REDIS_OK)
    return conn.io_error("set timeout");
  if (!ep.password.empty()) {
    std::vector<std::string_view> argv{"AUTH"};
    if (!ep.username.empty())
      argv.emplace_back(ep.username);
    argv.emplace_back(ep.password);
    auto r = conn.command(argv);
    if (!r)
      return caf::make_error(errc::connection_failed,
                             "authentication to " + to_string(ep)
                               + " failed: " + error_text(r.error()));
  }
  if (ep.db != 0) {
    auto db = std::to_string(ep.db);
    if (auto r = conn.command({"SELECT", db}); !r)
      return r.error();
  }
  return conn;
}

bool redis_connection::ok() const {
  return ctx_ != nullptr && ctx_->err == 0;
}

caf::error redis_connection::io_error(const char* what) {
  std::string text = "redis " + to_string(ep_) + ": " + what + " failed";
  auto code = errc::connection_failed;
  if (ctx_ != nullptr && ctx_->err != 0) {
    text += ": ";
    if (ctx_->err == REDIS_ERR_IO
        && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      code = errc::timeout;
      text += "no answer within " + std::to_string(timeout_.count()) + " ms";
    } else {
      text += ctx_->errstr;
    }
  }
  // hiredis keeps the error state: the context is unusable from here on.
  if (ctx_ != nullptr && ctx_->err == 0)
    ctx_->err = REDIS_ERR_OTHER;
  return caf::make_error(code, std::move(text));
}

void redis_connection::append_argv(const std::vector<std::string_view>& argv) {
  constexpr size_t small = 16;
  const char* ptrs_small[small];
  size_t lens_small[small];
  std::vector<const char*> ptrs_big;
  std::vector<size_t> lens_big;
  const char** ptrs = ptrs_small;
  size_t* lens = lens_small;
  if (argv.size() > small) {
    ptrs_big.resize(argv.size());
    lens_big.resize(argv.size());
    ptrs = ptrs_big.data();
    lens = lens_big.data();
  }
  for (size_t i = 0; i < argv.size(); ++i) {
    ptrs[i] = argv[i].data();
    lens[i] = argv[i].size();
  }
  redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), ptrs, lens);
}

caf::expected<redis_reply>
redis_connection::command(const std::vector<std::string_view>& argv) {
  append(argv);
  auto replies = flush();
  if (!replies)
    return replies.error();
  auto& r = replies->front();
  if (r.is_error())
    return caf::make_error(errc::command_failed, r.error_text());
  return std::move(r);
}

void redis_connection::append(const std::vector<std::string_view>& argv) {
  if (!ok())
    return;
  append_argv(argv);
  pending_.emplace_back();
}

caf::expected<std::string> redis_connection::load_script(redis_script& script) {
  for (auto& [ptr, sha] : shas_)
    if (ptr == &script)
      return sha;
  append_argv({"SCRIPT", "LOAD", script.source});
  redisReply* raw = nullptr;
  if (redisGetReply(ctx_, reinterpret_cast<void**>(&raw)) != REDIS_OK)
    return io_error("SCRIPT LOAD");
  redis_reply r{raw};
  if (!r.is_string())
    return caf::make_error(errc::command_failed,
                           "SCRIPT LOAD failed: " + r.error_text());
  shas_.emplace_back(&script, std::string{r.as_string()});
  return shas_.back().second;
}

void redis_connection::append_eval(redis_script& script,
                                   const std::vector<std::string_view>& keys,
                                   const std::vector<std::string_view>& args) {
  if (!ok())
    return;
  std::string sha;
  for (auto& [ptr, s] : shas_)
    if (ptr == &script)
      sha = s;
  if (sha.empty()) {
    // Loading needs a round trip of its own, which cannot happen while
    // other replies are pending: callers preload their scripts.
    auto loaded = pending_.empty()
                    ? load_script(script)
                    : caf::expected<std::string>{caf::make_error(
                      errc::command_failed, "script not preloaded")};
    if (!loaded) {
      if (ctx_ != nullptr && ctx_->err == 0)
        ctx_->err = REDIS_ERR_OTHER;
      return;
    }
    sha = *loaded;
  }
  pending_command cmd;
  cmd.script = &script;
  size_t total = 0;
  for (auto k : keys)
    total += k.size();
  for (auto a : args)
    total += a.size();
  cmd.args.reserve(total + 8);
  cmd.ends.reserve(1 + keys.size() + args.size());
  auto add = [&cmd](std::string_view x) {
    cmd.args += x;
    cmd.ends.push_back(cmd.args.size());
  };
  char nkeys[24];
  auto res = std::to_chars(nkeys, nkeys + sizeof(nkeys), keys.size());
  add(std::string_view{nkeys, static_cast<size_t>(res.ptr - nkeys)});
  for (auto k : keys)
    add(k);
  for (auto a : args)
    add(a);
  append_evalsha(sha, cmd);
  pending_.push_back(std::move(cmd));
}

void redis_connection::append_evalsha(const std::string& sha,
                                      const pending_command& cmd) {
  std::vector<std::string_view> views;
  views.reserve(2 + cmd.ends.size());
  views.emplace_back("EVALSHA");
  views.emplace_back(sha);
  size_t begin = 0;
  for (auto end : cmd.ends) {
    views.emplace_back(cmd.args.data() + begin, end - begin);
    begin = end;
  }
  append_argv(views);
}

caf::expected<std::vector<redis_reply>> redis_connection::flush() {
  std::vector<redis_reply> replies;
  auto cmds = std::move(pending_);
  pending_.clear();
  if (!ok())
    return io_error("command");
  replies.reserve(cmds.size());
  for (size_t i = 0; i < cmds.size(); ++i) {
    redisReply* raw = nullptr;
    if (redisGetReply(ctx_, reinterpret_cast<void**>(&raw)) != REDIS_OK)
      return io_error("read reply");
    replies.push_back(redis_reply{raw});
  }
  // After a server restart the script cache is empty: load and run again.
  for (size_t i = 0; i < cmds.size(); ++i) {
    auto& r = replies[i];
    if (cmds[i].script == nullptr || !r.is_error()
        || !r.as_string().starts_with("NOSCRIPT"))
      continue;
    auto* script = cmds[i].script;
    std::erase_if(shas_, [&](auto& x) { return x.first == script; });
    auto sha = load_script(*script);
    if (!sha)
      return sha.error();
    append_evalsha(*sha, cmds[i]);
    redisReply* raw = nullptr;
    if (redisGetReply(ctx_, reinterpret_cast<void**>(&raw)) != REDIS_OK)
      return io_error("read reply");
    r.reset(raw);
  }
  return replies;
}

caf::error redis_connection::preload(redis_script& script) {
  if (!ok())
    return io_error("SCRIPT LOAD");
  auto sha = load_script(script);
  return sha ? caf::error{} : sha.error();
}

caf::expected<redis_reply>
redis_connection::eval(redis_script& script,
                       const std::vector<std::string_view>& keys,
                       const std::vector<std::string_view>& args) {
  append_eval(script, keys, args);
  if (!ok())
    return io_error("EVALSHA");
  auto replies = flush();
  if (!replies)
    return replies.error();
  if (replies->empty())
    return caf::make_error(errc::command_failed, "EVALSHA was not sent");
  auto& r = replies->front();
  if (r.is_error())
    return caf::make_error(errc::command_failed, r.error_text());
  return std::move(r);
}

} // namespace vigil

namespace vigil {

caf::expected<redis_reply>
redis_connection::next_push(std::chrono::milliseconds wait) {
  if (!ok())
    return caf::make_error(errc::connection_failed, "redis: not connected");
  // Sends what is queued (a SUBSCRIBE) first; then reads only when poll says
  // there are bytes, so an idle wait never trips the socket timeout.
  int done = 0;
  while (!done)
    if (redisBufferWrite(ctx_, &done) != REDIS_OK)
      return io_error("write");
  redisReply* raw = nullptr;
  if (redisGetReplyFromReader(ctx_, reinterpret_cast<void**>(&raw)) != REDIS_OK)
    return io_error("read");
  if (raw != nullptr)
    return redis_reply{raw};
  pollfd pfd{ctx_->fd, POLLIN, 0};
  int n = ::poll(&pfd, 1, static_cast<int>(wait.count()));
  if (n <= 0)
    return redis_reply{};
  if (redisBufferRead(ctx_) != REDIS_OK)
    return io_error("read");
  if (redisGetReplyFromReader(ctx_, reinterpret_cast<void**>(&raw)) != REDIS_OK)
    return io_error("read");
  return redis_reply{raw};
}

} // namespace vigil
