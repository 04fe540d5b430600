#include "adapters/amqp.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "adapters/amqp_properties.hpp"
#include "adapters/resolve.hpp"
#include "messages/errors.hpp"
#include "messages/percent_encoding.hpp"

namespace vigil {

namespace {

timeval to_timeval(std::chrono::microseconds t) {
  if (t.count() < 0)
    t = std::chrono::microseconds{0};
  timeval tv;
  tv.tv_sec = static_cast<time_t>(t.count() / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(t.count() % 1000000);
  return tv;
}

caf::error bad_url(std::string what) {
  return caf::make_error(errc::bad_config, "invalid amqp URL: " + what);
}


bool parse_u16(std::string_view text, uint16_t& out) {
  unsigned x = 0;
  auto res = std::from_chars(text.data(), text.data() + text.size(), x);
  if (res.ec != std::errc{} || res.ptr != text.data() + text.size()
      || x > 65535)
    return false;
  out = static_cast<uint16_t>(x);
  return true;
}

std::string_view to_view(amqp_bytes_t b) {
  return b.len == 0 ? std::string_view{}
                    : std::string_view{static_cast<const char*>(b.bytes), b.len};
}

amqp_bytes_t bytes_of(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

std::string server_text(uint16_t code, std::string_view text) {
  return std::to_string(code) + " " + std::string{text};
}

amqp_table_entry_t bool_entry(const char* key, bool x) {
  amqp_table_entry_t e;
  e.key = amqp_cstring_bytes(key);
  e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
  e.value.value.boolean = x ? 1 : 0;
  return e;
}

amqp_table_entry_t text_entry(const char* key, const char* x) {
  amqp_table_entry_t e;
  e.key = amqp_cstring_bytes(key);
  e.value.kind = AMQP_FIELD_KIND_UTF8;
  e.value.value.bytes = amqp_cstring_bytes(x);
  return e;
}

} // namespace

// -- URLs -----------------------------------------------------------------------

caf::expected<amqp_endpoint> parse_amqp_url(std::string_view url) {
  constexpr std::string_view scheme = "amqp://";
  if (url.substr(0, 8) == "amqps://")
    return caf::make_error(errc::unsupported,
                           "amqps:// (TLS) is not supported; use amqp://");
  if (url.substr(0, scheme.size()) != scheme)
    return bad_url("expected amqp://[user[:password]@]host[:port][/vhost]");
  auto rest = url.substr(scheme.size());
  amqp_endpoint ep;
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // The credentials end at the last '@' before the path, so that an
  // unescaped '@' in a password still parses.
  auto path_start = rest.find('/', rest.rfind('@') == std::string_view::npos
                                     ? 0
                                     : rest.rfind('@'));
  auto authority = rest.substr(0, path_start);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    auto creds = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = creds.find(':');
    if (!percent_decode(creds.substr(0, colon), ep.username))
      return bad_url("broken %-escape in the user name");
    if (colon != std::string_view::npos) {
      if (!percent_decode(creds.substr(colon + 1), ep.password))
        return bad_url("broken %-escape in the password");
    } else {
      ep.password.clear();
    }
  }
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return bad_url("unterminated '[' in the host");
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':' || !parse_u16(after.substr(1), ep.port)
          || ep.port == 0)
        return bad_url("port must be 1..65535, got '"
                       + std::string{after.substr(1)} + "'");
    }
  } else if (auto colon = authority.rfind(':');
             colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    auto port = authority.substr(colon + 1);
    if (!parse_u16(port, ep.port) || ep.port == 0)
      return bad_url("port must be 1..65535, got '" + std::string{port} + "'");
  }
  if (!host.empty())
    ep.host = std::string{host};
  if (path_start != std::string_view::npos) {
    std::string vhost;
    if (!percent_decode(rest.substr(path_start + 1), vhost))
      return bad_url("broken %-escape in the virtual host");
    ep.vhost = vhost.empty() ? "/" : vhost;
  }
  for (auto [name, val] : query_pairs(query)) {
    if (name == "prefetch" || name == "prefetch_count") {
      if (!parse_u16(val, ep.prefetch) || ep.prefetch == 0)
        return bad_url("prefetch must be 1..65535, got '" + std::string{val}
                       + "'");
    } else if (name == "heartbeat") {
      if (!parse_u16(val, ep.heartbeat))
        return bad_url("heartbeat must be 0..65535 seconds, got '"
                       + std::string{val} + "'");
    }
    // Other parameters (kombu's transport options) are ignored.
  }
  return ep;
}

std::string to_string(const amqp_endpoint& ep) {
  std::string out = "amqp://";
  if (!ep.username.empty())
    out += percent_encode(ep.username) + "@";
  if (ep.host.find(':') != std::string::npos)
    out += "[" + ep.host + "]";
  else
    out += ep.host;
  out += ':';
  out += std::to_string(ep.port);
  out += '/';
  out += percent_encode(ep.vhost);
  return out;
}

// -- amqp_connection --------------------------------------------------------------

amqp_connection::amqp_connection(amqp_connection&& other) noexcept
  : state_(other.state_),
    pool_(other.pool_),
    ep_(std::move(other.ep_)),
    timeout_(other.timeout_),
    broken_(std::move(other.broken_)) {
  other.state_ = nullptr;
  other.pool_ = nullptr;
}

amqp_connection& amqp_connection::operator=(amqp_connection&& other) noexcept {
  if (this != &other) {
    close();
    state_ = other.state_;
    pool_ = other.pool_;
    ep_ = std::move(other.ep_);
    timeout_ = other.timeout_;
    broken_ = std::move(other.broken_);
    other.state_ = nullptr;
    other.pool_ = nullptr;
  }
  return *this;
}

amqp_connection::~amqp_connection() {
  close();
}

void amqp_connection::close() {
  if (pool_ != nullptr) {
    empty_amqp_pool(pool_);
    delete pool_;
    pool_ = nullptr;
  }
  if (state_ == nullptr)
    return;
  if (ok()) {
    // A clean close makes the server requeue what we hold at once; keep it
    // short when the server is slow to answer.
    auto t = to_timeval(std::min<std::chrono::microseconds>(
      timeout_, std::chrono::seconds{1}));
    amqp_set_rpc_timeout(state_, &t);
    amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(state_);
  state_ = nullptr;
}

caf::expected<amqp_connection>
amqp_connection::connect(const amqp_endpoint& ep,
                         std::chrono::milliseconds timeout) {
  amqp_connection conn;
  conn.ep_ = ep;
  conn.timeout_ = timeout;
  conn.state_ = amqp_new_connection();
  if (conn.state_ == nullptr)
    return caf::make_error(errc::connection_failed,
                           "out of memory creating an AMQP connection");
  auto* sock = amqp_tcp_socket_new(conn.state_);
  if (sock == nullptr)
    return caf::make_error(errc::connection_failed,
                           "cannot create a socket for " + to_string(ep));
  auto tv = to_timeval(timeout);
  auto addresses = resolve_host(ep.host, timeout);
  if (!addresses) {
    conn.broken_ = error_text(addresses.error());
    return connect_failure(addresses.error(), to_string(ep));
  }
  // The first address that answers, as rabbitmq-c would try them itself.
  int rc = AMQP_STATUS_SOCKET_ERROR;
  for (const auto& address : *addresses)
    if (rc = amqp_socket_open_noblock(sock, address.c_str(), ep.port, &tv);
        rc == AMQP_STATUS_OK)
      break;
  if (rc != AMQP_STATUS_OK) {
    conn.broken_ = amqp_error_string2(rc);
    return caf::make_error(errc::connection_failed,
                           "cannot connect to " + to_string(ep) + ": "
                             + amqp_error_string2(rc));
  }
  amqp_set_handshake_timeout(conn.state_, &tv);
  amqp_set_rpc_timeout(conn.state_, &tv);
  // consumer_cancel_notify: a deleted queue cancels our consumer visibly,
  // and the next fetch declares and consumes it again.
  amqp_table_entry_t caps[] = {bool_entry("consumer_cancel_notify", true),
                               bool_entry("publisher_confirms", true),
                               bool_entry("authentication_failure_close",
                                          true)};
  amqp_table_entry_t props[3];
  props[0] = text_entry("product", "vigil");
  props[1] = text_entry("connection_name", "vigil");
  props[2].key = amqp_cstring_bytes("capabilities");
  props[2].value.kind = AMQP_FIELD_KIND_TABLE;
  props[2].value.value.table = amqp_table_t{3, caps};
  amqp_table_t client_props{3, props};
  auto login = amqp_login_with_properties(
    conn.state_, ep.vhost.c_str(), 0, 131072, ep.heartbeat, &client_props,
    AMQP_SASL_METHOD_PLAIN, ep.username.c_str(), ep.password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    std::string why;
    if (login.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION
        && login.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
      auto* m = static_cast<amqp_connection_close_t*>(login.reply.decoded);
      why = server_text(m->reply_code, to_view(m->reply_text));
      amqp_connection_close_ok_t close_ok{};
      amqp_send_method(conn.state_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD,
                       &close_ok);
    } else if (login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
      why = amqp_error_string2(login.library_error);
      if (login.library_error == AMQP_STATUS_CONNECTION_CLOSED
          || login.library_error == AMQP_STATUS_SOCKET_ERROR)
        why += " (wrong user name or password, or unknown virtual host?)";
    } else {
      why = "unexpected reply";
    }
    conn.broken_ = why;
    return caf::make_error(errc::connection_failed,
                           "authentication or login to " + to_string(ep)
                             + " failed: " + why);
  }
  amqp_channel_open(conn.state_, work_channel);
  if (auto err = conn.check_rpc(work_channel, "channel.open"))
    return err;
  amqp_confirm_select(conn.state_, work_channel);
  if (auto err = conn.check_rpc(work_channel, "confirm.select"))
    return err;
  if (auto err = conn.open_admin_channel())
    return err;
  amqp_channel_open(conn.state_, get_channel);
  if (auto err = conn.check_rpc(get_channel, "channel.open"))
    return err;
  amqp_maybe_release_buffers(conn.state_);
  return conn;
}

caf::error amqp_connection::open_admin_channel() {
  amqp_channel_open(state_, admin_channel);
  auto r = amqp_get_rpc_reply(state_);
  if (r.reply_type == AMQP_RESPONSE_NORMAL)
    return {};
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
    return fail(r.library_error, "opening the admin channel");
  return fail("the server refused to open the admin channel");
}

caf::error amqp_connection::broken_error() const {
  return caf::make_error(errc::connection_failed,
                         "AMQP connection to " + to_string(ep_) + " lost: "
                           + (broken_.empty() ? "not connected" : broken_));
}

caf::error amqp_connection::fail(int status, std::string_view what) {
  auto text = std::string{what} + ": " + amqp_error_string2(status);
  if (broken_.empty())
    broken_ = text;
  if (status == AMQP_STATUS_TIMEOUT)
    return caf::make_error(errc::timeout, "AMQP server " + to_string(ep_)
                                            + " did not answer in time ("
                                            + text + ")");
  return broken_error();
}

caf::error amqp_connection::fail_timeout(std::string_view what) {
  return fail(AMQP_STATUS_TIMEOUT, what);
}

caf::error amqp_connection::fail(std::string_view reason) {
  if (broken_.empty())
    broken_ = std::string{reason};
  return broken_error();
}

caf::error amqp_connection::check_rpc(uint16_t channel, std::string_view what,
                                      uint16_t* server_code) {
  if (!ok())
    return broken_error();
  auto r = amqp_get_rpc_reply(state_);
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return {};
    case AMQP_RESPONSE_NONE:
      return fail(std::string{what} + ": no reply from the server");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return fail(r.library_error, what);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      break;
  }
  caf::error err;
  if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
    err = on_close(0, m->reply_code, to_view(m->reply_text));
  } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
    if (server_code != nullptr)
      *server_code = m->reply_code;
    err = on_close(channel, m->reply_code, to_view(m->reply_text));
  }
  if (!err)
    return fail(std::string{what} + ": unexpected server reply");
  return caf::make_error(static_cast<errc>(err.code()),
                         std::string{what} + ": " + error_text(err));
}

caf::error amqp_connection::on_close(uint16_t channel, uint16_t reply_code,
                                     std::string_view reply_text) {
  auto text = server_text(reply_code, reply_text);
  if (channel == 0) {
    amqp_connection_close_ok_t close_ok{};
    amqp_send_method(state_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &close_ok);
    return fail("the server closed the connection: " + text);
  }
  amqp_channel_close_ok_t close_ok{};
  if (auto rc = amqp_send_method(state_, channel,
                                 AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
      rc != AMQP_STATUS_OK)
    return fail(rc, "answering channel.close");
  if (channel != admin_channel)
    return fail("the server closed channel " + std::to_string(channel) + ": "
                + text);
  if (auto err = open_admin_channel())
    return err;
  return caf::make_error(errc::command_failed, text);
}

amqp_pool_t_& amqp_connection::scratch() {
  if (pool_ == nullptr) {
    pool_ = new amqp_pool_t;
    init_amqp_pool(pool_, 4096);
  } else {
    recycle_amqp_pool(pool_);
  }
  return *pool_;
}

caf::error amqp_connection::set_prefetch(bool global) {
  if (!ok())
    return broken_error();
  amqp_basic_qos(state_, work_channel, 0, ep_.prefetch, global ? 1 : 0);
  return check_rpc(work_channel, "basic.qos");
}

caf::error amqp_connection::declare_exchange(std::string_view name,
                                             std::string_view type,
                                             const amqp_exchange_options& opts,
                                             uint16_t* refused) {
  if (!ok())
    return broken_error();
  auto args = amqp_empty_table;
  if (!opts.arguments.empty())
    to_native_table(opts.arguments, scratch(), args);
  amqp_exchange_declare(state_, admin_channel, bytes_of(name), bytes_of(type),
                        opts.passive ? 1 : 0, opts.durable ? 1 : 0,
                        opts.auto_delete ? 1 : 0, opts.internal ? 1 : 0, args);
  if (auto err = check_rpc(admin_channel, "exchange.declare", refused))
    return err;
  amqp_maybe_release_buffers(state_);
  return {};
}

caf::expected<uint32_t>
amqp_connection::declare_queue(std::string_view name,
                               const amqp_queue_options& opts,
                               uint16_t* refused) {
  if (!ok())
    return broken_error();
  auto args = amqp_empty_table;
  if (!opts.arguments.empty())
    to_native_table(opts.arguments, scratch(), args);
  auto* r = amqp_queue_declare(state_, admin_channel, bytes_of(name),
                               opts.passive ? 1 : 0, opts.durable ? 1 : 0,
                               opts.exclusive ? 1 : 0,
                               opts.auto_delete ? 1 : 0, args);
  if (auto err = check_rpc(admin_channel,
                           opts.passive ? "queue.declare (passive)"
                                        : "queue.declare",
                           refused))
    return err;
  auto n = r != nullptr ? r->message_count : 0;
  amqp_maybe_release_buffers(state_);
  return n;
}

caf::error amqp_connection::bind_queue(std::string_view queue,
                                       std::string_view exchange,
                                       std::string_view routing_key,
                                       const value_map& arguments,
                                       uint16_t* refused) {
  if (!ok())
    return broken_error();
  auto args = amqp_empty_table;
  if (!arguments.empty())
    to_native_table(arguments, scratch(), args);
  amqp_queue_bind(state_, admin_channel, bytes_of(queue), bytes_of(exchange),
                  bytes_of(routing_key), args);
  if (auto err = check_rpc(admin_channel, "queue.bind", refused))
    return err;
  amqp_maybe_release_buffers(state_);
  return {};
}

caf::expected<std::optional<uint32_t>>
amqp_connection::message_count(std::string_view queue) {
  amqp_queue_options passive;
  passive.passive = true;
  passive.durable = false;
  uint16_t code = 0;
  auto n = declare_queue(queue, passive, &code);
  if (!n) {
    if (code == 404 && ok())
      return std::optional<uint32_t>{};
    return n.error();
  }
  return std::optional<uint32_t>{*n};
}

caf::error amqp_connection::delete_queue(std::string_view queue) {
  if (!ok())
    return broken_error();
  amqp_queue_delete(state_, admin_channel, bytes_of(queue), 0, 0);
  uint16_t code = 0;
  if (auto err = check_rpc(admin_channel, "queue.delete", &code);
      err && (code != 404 || !ok()))
    return err;
  amqp_maybe_release_buffers(state_);
  return {};
}

void amqp_connection::cork(bool on) {
  if (state_ == nullptr)
    return;
  int flag = on ? 1 : 0;
  // Best effort: without it, publishes only go out in smaller segments.
  ::setsockopt(amqp_get_sockfd(state_), IPPROTO_TCP, TCP_CORK, &flag,
               sizeof flag);
}

caf::error amqp_connection::wait_writable(
  std::chrono::steady_clock::time_point deadline) {
  if (!ok())
    return broken_error();
  pollfd p{amqp_get_sockfd(state_), POLLOUT, 0};
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    auto n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (n > 0) {
      if ((p.revents & POLLOUT) != 0)
        return {};
      return fail("socket error while writing");
    }
    if (n == 0)
      return fail(AMQP_STATUS_TIMEOUT, "writing to the server");
    if (errno != EINTR)
      return fail(AMQP_STATUS_SOCKET_ERROR, "polling the socket");
  }
}

} // namespace vigil
