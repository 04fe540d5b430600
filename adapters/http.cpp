#include "adapters/http.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "config/text.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/text_excerpt.hpp"

namespace vigil {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string_view http_request::method() const {
  auto m = message.method_string();
  return {m.data(), m.size()};
}

std::string_view http_request::path() const {
  auto t = message.target();
  std::string_view target{t.data(), t.size()};
  return target.substr(0, target.find('?'));
}

std::string_view http_request::query() const {
  auto t = message.target();
  std::string_view target{t.data(), t.size()};
  auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

std::string_view http_request::header(std::string_view name) const {
  auto it = message.find(beast::string_view{name.data(), name.size()});
  if (it == message.end())
    return {};
  auto v = it->value();
  return {v.data(), v.size()};
}

http_response json_error(unsigned status, std::string_view detail) {
  // A detail may quote the request (a path, a header): bounded, and
  // written by the encoder that replaces invalid UTF-8 instead of throwing.
  static constexpr size_t max_detail = 4096;
  http_response r;
  r.status = status;
  r.body.reserve(std::min(detail.size(), max_detail) + 16);
  r.body.append("{\"detail\":");
  append_json_string(r.body, detail, max_detail);
  r.body += '}';
  return r;
}

caf::expected<std::pair<std::string, uint16_t>>
parse_bind_address(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return caf::make_error(errc::bad_config,
                           "expected host:port, got '" + std::string{text}
                             + "'");
  std::string host{text.substr(0, colon)};
  if (host.size() > 1 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  int64_t port = 0;
  if (!parse_int(text.substr(colon + 1), port) || port < 0 || port > 65535)
    return caf::make_error(errc::bad_config,
                           "expected a port 0..65535 after ':', got '"
                             + std::string{text.substr(colon + 1)} + "'");
  return std::make_pair(host.empty() ? std::string{"127.0.0.1"} : host,
                        static_cast<uint16_t>(port));
}

namespace {

class session;

using steady = std::chrono::steady_clock;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           steady::now().time_since_epoch())
    .count();
}

/// True at most once per minute per `last` (a steady_ms() stamp): for
/// warnings a client can cause at will, which must not flood the log.
bool once_a_minute(std::atomic<int64_t>& last) {
  auto now = steady_ms();
  auto prev = last.load(std::memory_order_relaxed);
  return (prev == 0 || now - prev >= 60000)
         && last.compare_exchange_strong(prev, now);
}

struct server_shared {
  http_server_options opts;
  http_handler handler;
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> handler_errors{0};
  std::atomic<uint64_t> handler_timeouts{0};
  std::atomic<uint64_t> buffer_refusals{0};
  std::atomic<int64_t> last_handler_error_log{0};
  std::atomic<int64_t> last_accept_error_log{0};
  /// Connections open now (web.max-connections).
  std::atomic<size_t> open{0};
  /// Body bytes reserved by connections now (web.max-buffered-bytes).
  std::atomic<size_t> buffered{0};
  /// Set while the acceptor waits for a connection to close; `resume`
  /// (cleared when the server stops) restarts it.
  std::mutex accept_mtx;
  bool accept_paused = false;
  std::function<void()> resume;

  /// Reserves `n` body bytes within web.max-buffered-bytes.
  bool reserve(size_t n) {
    auto cap = opts.max_buffered_bytes;
    auto cur = buffered.load(std::memory_order_relaxed);
    do {
      if (cap > 0 && (n > cap || cur > cap - n))
        return false;
    } while (!buffered.compare_exchange_weak(cur, cur + n));
    return true;
  }

  void release(size_t n) {
    buffered.fetch_sub(n);
  }

  /// A connection closed: under web.max-connections again, a paused
  /// acceptor resumes.
  void connection_closed() {
    auto left = open.fetch_sub(1) - 1;
    if (opts.max_connections == 0 || left >= opts.max_connections)
      return;
    std::lock_guard<std::mutex> guard{accept_mtx};
    if (accept_paused && resume) {
      accept_paused = false;
      resume();
    }
  }
};

/// One server thread and what only it touches: its io_context runs every
/// handler of the connections it was given, so a connection needs no
/// strand and a server thread never hands work to another. Answers given
/// from other threads (the ingest actor answers a whole batch at once)
/// wait in the outbox for one wake-up of this thread per burst.
struct server_lane {
  /// Outlives every session of the lane (each holds the lane), so that a
  /// session whose answer is still pending elsewhere when the server stops
  /// can still close its socket.
  net::io_context ioc{1};
  std::mutex outbox_mtx;
  std::vector<std::pair<std::shared_ptr<session>, http_response>> outbox;
  /// Set once the server stopped: later answers are dropped.
  bool closed = false;
  /// The lane's open sessions, for closing them when the server stops and
  /// for the handler-timeout sweep.
  std::mutex sessions_mtx;
  std::set<session*> sessions;
  /// Ticks while web.handler-timeout is set: answers what is overdue.
  std::optional<net::steady_timer> sweep_timer;
};

/// The session whose handler call is running on this thread, if any: an
/// answer given from inside the handler needs no hand-over.
thread_local const session* handling_session = nullptr;

/// One connection: reads a request, hands it to the handler, writes the
/// answer, and reads the next one while the client keeps the connection.
class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, std::shared_ptr<server_shared> shared,
          std::shared_ptr<server_lane> lane)
    : lane_(std::move(lane)), stream_(std::move(socket)),
      shared_(std::move(shared)) {
    boost::system::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec)
      remote_ip_ = ep.address().to_string();
    chunk_header_ = [this](std::uint64_t size, beast::string_view,
                           beast::error_code& ec) {
      if (!admit_chunk(static_cast<size_t>(size)))
        ec = net::error::no_buffer_space;
    };
    std::lock_guard<std::mutex> guard{lane_->sessions_mtx};
    lane_->sessions.insert(this);
  }

  ~session() {
    {
      std::lock_guard<std::mutex> guard{lane_->sessions_mtx};
      lane_->sessions.erase(this);
    }
    release_body();
    shared_->connection_closed();
  }

  /// Closes the socket (also from a stopped server, whose threads are
  /// gone).
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  void start() {
    net::dispatch(stream_.get_executor(),
                  [self = shared_from_this()] { self->wait_for_request(); });
  }

  /// Answers 503 when the request with the handler is overdue (on the
  /// lane's thread, from the sweep).
  void expire(steady::time_point now) {
    auto seq = pending_.load();
    if (seq == 0 || now < deadline_)
      return;
    if (!pending_.compare_exchange_strong(seq, 0))
      return; // answered meanwhile
    ++shared_->handler_timeouts;
    spdlog::debug("http: {} not answered within web.handler-timeout",
                  printable_excerpt(route_));
    auto resp = json_error(
      503, "the request was not answered within web.handler-timeout ("
             + std::to_string(shared_->opts.handler_timeout.count())
             + " ms); retry later");
    resp.headers.emplace_back("Retry-After", "5");
    resp.close = true;
    write(std::move(resp));
  }

  bool has_pending() const {
    return pending_.load(std::memory_order_relaxed) != 0;
  }

private:
  // An idle keep-alive connection may wait `idle_timeout` for its next
  // request's first bytes; from then on the whole request must arrive
  // within `read_timeout`, which is what closes slow clients.
  void wait_for_request() {
    if (buffer_.size() > 0) {
      read_request();
      return;
    }
    stream_.expires_after(shared_->opts.idle_timeout);
    stream_.async_read_some(
      buffer_.prepare(4096),
      [self = shared_from_this()](beast::error_code ec, size_t n) {
        if (ec) {
          self->close();
          return;
        }
        self->buffer_.commit(n);
        self->read_request();
      });
  }

  void read_request() {
    parser_.emplace();
    parser_->header_limit(
      static_cast<std::uint32_t>(shared_->opts.max_header_bytes));
    parser_->body_limit(shared_->opts.max_body_bytes);
    parser_->eager(true);
    parser_->on_chunk_header(chunk_header_);
    over_budget_ = false;
    stream_.expires_after(shared_->opts.read_timeout);
    // The read that woke us usually brought the whole request: parse it
    // here. A composed read that needs no I/O still hands its completion
    // to the executor, which costs more than the parse. Whatever is
    // missing is read by the composed read, which carries on with the
    // same parser.
    beast::error_code ec;
    while (buffer_.size() > 0 && !parser_->is_done()) {
      auto used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec || used == 0)
        break;
    }
    if (parser_->is_done() || (ec && ec != bhttp::error::need_more)) {
      on_read(ec);
      return;
    }
    if (!parser_->is_header_done()) {
      bhttp::async_read_header(stream_, buffer_, *parser_,
                               [self = shared_from_this()](
                                 beast::error_code ec, size_t) {
                                 if (ec)
                                   self->on_read(ec);
                                 else
                                   self->read_body();
                               });
      return;
    }
    read_body();
  }

  // A client that sent `Expect: 100-continue` (curl does for bodies over
  // 1 KiB) waits for a go-ahead before it sends the body. The header passed
  // the limits already (a Content-Length over the body limit failed it).
  void read_body() {
    if (parser_->is_done()) {
      on_read({});
      return;
    }
    // A declared length is reserved before any of the body is read (and
    // before the go-ahead); chunks are reserved as their headers arrive.
    if (auto len = parser_->content_length();
        len && !admit_body(static_cast<size_t>(*len))) {
      refuse_body();
      return;
    }
    auto expect = parser_->get()[bhttp::field::expect];
    if (!continue_sent_ && beast::iequals(expect, "100-continue")) {
      continue_sent_ = true;
      static constexpr std::string_view go_ahead
        = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(go_ahead.data(), go_ahead.size()),
                       [self = shared_from_this()](beast::error_code ec,
                                                   size_t) {
                         if (ec)
                           self->close();
                         else
                           self->read_body();
                       });
      return;
    }
    continue_sent_ = false;
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec,
                                                  size_t) {
                        self->on_read(ec);
                      });
  }

  /// Reserves what the current request's body needs beyond what it holds
  /// already; false when web.max-buffered-bytes has no room for it.
  bool admit_body(size_t total) {
    if (total <= reserved_)
      return true;
    if (!shared_->reserve(total - reserved_)) {
      over_budget_ = true;
      return false;
    }
    reserved_ = total;
    return true;
  }

  /// Chunks add up: each chunk header asks for its size on top.
  bool admit_chunk(size_t size) {
    return admit_body(reserved_ + size);
  }

  void release_body() {
    if (reserved_ > 0)
      shared_->release(reserved_);
    reserved_ = 0;
  }

  void refuse_body() {
    ++shared_->buffer_refusals;
    auto resp = json_error(
      503, "the server holds too many request bodies (web.max-buffered-bytes "
             + std::to_string(shared_->opts.max_buffered_bytes)
             + " bytes); retry later");
    resp.headers.emplace_back("Retry-After", "1");
    keep_alive_ = false;
    write(std::move(resp));
  }

  void on_read(beast::error_code ec) {
    if (over_budget_) {
      refuse_body();
      return;
    }
    if (ec == bhttp::error::body_limit) {
      reject(413, "request body exceeds web.max-body-size ("
                    + std::to_string(shared_->opts.max_body_bytes)
                    + " bytes)");
      return;
    }
    if (ec == bhttp::error::header_limit) {
      reject(431, "request headers exceed web.max-header-size ("
                    + std::to_string(shared_->opts.max_header_bytes)
                    + " bytes)");
      return;
    }
    if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream
        || ec == net::error::eof || ec == net::error::connection_reset
        || ec == net::error::operation_aborted) {
      close();
      return;
    }
    if (ec) {
      // A framing error (a bad chunk, a bad Content-Length, a bad start
      // line): what follows on this connection cannot be told apart from
      // this request's rest, so the answer closes it.
      reject(400, "malformed HTTP request: " + ec.message());
      return;
    }
    stream_.expires_never();
    ++shared_->requests;
    // The body the whole-buffer parse read without a declared length.
    if (!admit_body(parser_->get().body().size())) {
      refuse_body();
      return;
    }
    auto& head = parser_->get();
    auto method = head.method_string();
    auto target = head.target();
    std::string_view path{target.data(), target.size()};
    path = path.substr(0, std::min(path.find('?'), max_route_bytes));
    route_.assign(method.data(), method.size());
    route_ += ' ';
    route_.append(path);
    http_request req{parser_->release(), remote_ip_};
    keep_alive_ = req.message.keep_alive();
    auto seq = ++seq_;
    deadline_ = steady::now() + shared_->opts.handler_timeout;
    pending_.store(seq);
    auto self = shared_from_this();
    http_responder respond = [self, seq](http_response resp) {
      self->answer(seq, std::move(resp));
    };
    handling_session = this;
    try {
      shared_->handler(std::move(req), std::move(respond));
    } catch (const std::exception& e) {
      handler_failed(seq, e.what());
    } catch (...) {
      handler_failed(seq, "an exception of unknown type");
    }
    handling_session = nullptr;
  }

  /// The handler's answer to request `seq`, from any thread: the first
  /// answer to the request still open wins, any other is dropped.
  void answer(uint64_t seq, http_response resp) {
    auto expected = seq;
    if (!pending_.compare_exchange_strong(expected, 0))
      return;
    auto self = shared_from_this();
    if (handling_session == this) {
      net::post(stream_.get_executor(),
                [self, resp = std::move(resp)]() mutable {
                  self->write(std::move(resp));
                });
      return;
    }
    deliver(self, std::move(resp));
  }

  /// An exception escaped the handler: the request gets 500 (unless it
  /// was answered before the throw), the count goes up, and the log says
  /// which route, once a minute at most (a client may repeat it at will).
  void handler_failed(uint64_t seq, const char* what) {
    auto n = ++shared_->handler_errors;
    if (once_a_minute(shared_->last_handler_error_log))
      spdlog::error("http: the handler threw on {} from {}: {} ({} handler "
                    "errors since the start)",
                    printable_excerpt(route_), remote_ip_,
                    printable_excerpt(what, 300), n);
    answer(seq, json_error(500, "internal error while handling the request"));
  }

  /// Queues an answer given from outside the server's threads; the first
  /// one of a burst schedules the connection's server thread, which then
  /// writes them all.
  static void deliver(const std::shared_ptr<session>& self,
                      http_response resp) {
    auto& lane = *self->lane_;
    bool first = false;
    {
      std::lock_guard<std::mutex> guard{lane.outbox_mtx};
      if (lane.closed)
        return;
      first = lane.outbox.empty();
      lane.outbox.emplace_back(self, std::move(resp));
      if (first)
        net::post(lane.ioc, [ln = self->lane_] { write_outbox(*ln); });
    }
  }

  /// Writes every queued answer, on the lane's own thread (the thread of
  /// each of these connections).
  static void write_outbox(server_lane& lane) {
    std::vector<std::pair<std::shared_ptr<session>, http_response>> batch;
    {
      std::lock_guard<std::mutex> guard{lane.outbox_mtx};
      batch.swap(lane.outbox);
    }
    for (auto& [s, resp] : batch)
      s->write(std::move(resp));
  }

  void reject(unsigned status, std::string detail) {
    spdlog::debug("http: {} from {}: {}", status, remote_ip_,
                  printable_excerpt(detail, 300));
    keep_alive_ = false;
    write(json_error(status, detail));
  }

  void write(http_response resp) {
    // The request is over: its body no longer counts.
    release_body();
    keep_alive_ = keep_alive_ && !resp.close;
    if (!serialize(resp)) {
      write_with_beast(std::move(resp));
      return;
    }
    stream_.expires_after(shared_->opts.read_timeout);
    std::array<net::const_buffer, 2> bufs{net::buffer(head_),
                                          net::buffer(body_)};
    net::async_write(stream_, bufs,
                     [self = shared_from_this()](beast::error_code ec,
                                                 size_t) {
                       self->on_written(ec);
                     });
  }

  /// Writes the head of `resp` into `head_` byte for byte as Beast's
  /// serializer would (status line, Server, Content-Type, the handler's
  /// headers, Connection, Content-Length), and moves the body to `body_`:
  /// Beast's buffer sequences and one allocated field per header cost more
  /// than the rest of an answer. False for the rare answers whose headers
  /// interact with what Beast adds itself; those go through Beast.
  bool serialize(http_response& resp) {
    auto st = bhttp::int_to_status(resp.status);
    if (st == bhttp::status::unknown
        || bhttp::to_status_class(st) == bhttp::status_class::informational
        || st == bhttp::status::no_content
        || st == bhttp::status::not_modified)
      return false;
    for (auto& h : resp.headers) {
      auto f = bhttp::string_to_field(h.first);
      if (f == bhttp::field::connection || f == bhttp::field::content_length
          || f == bhttp::field::transfer_encoding
          || f == bhttp::field::server || f == bhttp::field::content_type)
        return false;
    }
    // `set` replaces an earlier header of the same name: keep the last.
    auto superseded = [&](size_t i) {
      for (size_t j = i + 1; j < resp.headers.size(); ++j)
        if (beast::iequals(resp.headers[i].first, resp.headers[j].first))
          return true;
      return false;
    };
    auto reason = bhttp::obsolete_reason(st);
    char len[24];
    auto len_end = std::to_chars(len, len + sizeof(len), resp.body.size()).ptr;
    head_.clear();
    head_.append("HTTP/1.1 ");
    char code[8];
    auto code_end = std::to_chars(code, code + sizeof(code), resp.status).ptr;
    head_.append(code, code_end);
    head_ += ' ';
    head_.append(reason.data(), reason.size());
    head_.append("\r\nServer: vigil\r\nContent-Type: ");
    head_.append(resp.content_type);
    head_.append("\r\n");
    for (size_t i = 0; i < resp.headers.size(); ++i) {
      if (superseded(i))
        continue;
      head_.append(resp.headers[i].first);
      head_.append(": ");
      head_.append(resp.headers[i].second);
      head_.append("\r\n");
    }
    if (!keep_alive_)
      head_.append("Connection: close\r\n");
    head_.append("Content-Length: ");
    head_.append(len, len_end);
    head_.append("\r\n\r\n");
    body_ = std::move(resp.body);
    return true;
  }

  void write_with_beast(http_response resp) {
    res_ = {};
    res_.version(11);
    res_.result(resp.status);
    res_.set(bhttp::field::server, "vigil");
    res_.set(bhttp::field::content_type, resp.content_type);
    for (auto& [name, value] : resp.headers)
      res_.set(name, value);
    res_.keep_alive(keep_alive_);
    res_.body() = std::move(resp.body);
    res_.prepare_payload();
    keep_alive_ = res_.keep_alive();
    stream_.expires_after(shared_->opts.read_timeout);
    bhttp::async_write(stream_, res_,
                       [self = shared_from_this()](beast::error_code ec,
                                                   size_t) {
                         self->on_written(ec);
                       });
  }

  void on_written(beast::error_code ec) {
    if (ec) {
      close();
      return;
    }
    if (!keep_alive_) {
      linger();
      return;
    }
    wait_for_request();
  }

  // Closing a socket with unread input makes the kernel reset the
  // connection, and a client still sending (a rejected oversized request)
  // would never read our answer. So: stop sending, read and drop what
  // still arrives for a moment, then close.
  void linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      close();
      return;
    }
    stream_.expires_after(std::chrono::seconds{2});
    buffer_.consume(buffer_.size());
    drain();
  }

  void drain() {
    stream_.async_read_some(
      buffer_.prepare(65536),
      [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) {
          self->close();
          return;
        }
        self->drain();
      });
  }

  /// How much of the path a log line about the request quotes.
  static constexpr size_t max_route_bytes = 200;

  /// Declared first so that it goes last: the socket needs the lane's
  /// io_context until it is closed and destroyed.
  std::shared_ptr<server_lane> lane_;
  beast::tcp_stream stream_;
  std::shared_ptr<server_shared> shared_;
  beast::flat_buffer buffer_;
  /// Held here because the parser keeps only a reference to it.
  std::function<void(std::uint64_t, beast::string_view, beast::error_code&)>
    chunk_header_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  /// The answer being written: head and body.
  std::string head_;
  std::string body_;
  std::string remote_ip_;
  /// Method and path of the latest request, for log lines.
  std::string route_;
  /// Body bytes of the current request counted in web.max-buffered-bytes.
  size_t reserved_ = 0;
  /// The current request's body did not fit in web.max-buffered-bytes.
  bool over_budget_ = false;
  /// Number of the request with the handler, 0 when none is: the first
  /// of the handler's answer and the timeout sweep to swap it to 0 answers.
  std::atomic<uint64_t> pending_{0};
  uint64_t seq_ = 0;
  /// When the request with the handler is overdue.
  steady::time_point deadline_;
  bool keep_alive_ = true;
  /// The 100 Continue of the current request went out.
  bool continue_sent_ = false;
};

/// Resource errors of accept(2) that clear up only when descriptors or
/// memory are freed: retrying at once would spin.
bool resource_exhausted(const beast::error_code& ec) {
  namespace errc = boost::system::errc;
  return ec == errc::too_many_files_open
         || ec == errc::too_many_files_open_in_system
         || ec == errc::no_buffer_space || ec == errc::not_enough_memory;
}

class beast_server final : public http_server {
public:
  beast_server(std::shared_ptr<server_shared> shared)
    : shared_(std::move(shared)), lanes_(make_lanes(shared_->opts.threads)),
      acceptor_(lanes_.front()->ioc), backoff_timer_(lanes_.front()->ioc) {
    // nop
  }

  ~beast_server() override {
    stop();
    // The threads are gone: close the acceptor from here.
    boost::system::error_code ec;
    acceptor_.close(ec);
    backoff_timer_.cancel();
    // Every connection is closed, and the handlers left in the lanes run
    // once (they see their operation aborted and let go of their
    // sessions). A session still held by an answer that never came lives
    // on with its closed socket until that answer is dropped.
    for (auto& lane : lanes_) {
      if (lane->sweep_timer)
        lane->sweep_timer->cancel();
      std::vector<std::shared_ptr<session>> open;
      {
        std::lock_guard<std::mutex> guard{lane->sessions_mtx};
        for (auto* s : lane->sessions)
          if (auto sp = s->weak_from_this().lock())
            open.push_back(std::move(sp));
      }
      for (auto& s : open)
        s->close();
      open.clear();
      lane->ioc.restart();
      lane->ioc.poll();
    }
  }

  caf::error listen() {
    boost::system::error_code ec;
    auto addr = net::ip::make_address(shared_->opts.host, ec);
    if (ec)
      return caf::make_error(errc::bad_config,
                             "web.bind: '" + shared_->opts.host
                               + "' is not an IP address");
    tcp::endpoint ep{addr, shared_->opts.port};
    acceptor_.open(ep.protocol(), ec);
    if (!ec)
      acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec)
      acceptor_.bind(ep, ec);
    if (!ec)
      acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
      return caf::make_error(errc::connection_failed,
                             "cannot listen on " + shared_->opts.host + ":"
                               + std::to_string(shared_->opts.port) + ": "
                               + ec.message());
    port_ = acceptor_.local_endpoint(ec).port();
    {
      std::lock_guard<std::mutex> guard{shared_->accept_mtx};
      shared_->resume = [this] {
        net::post(acceptor_.get_executor(), [this] { next_accept(); });
      };
    }
    accept();
    for (auto& lane : lanes_) {
      if (shared_->opts.handler_timeout.count() > 0) {
        lane->sweep_timer.emplace(lane->ioc);
        sweep(lane);
      }
      threads_.emplace_back([ln = lane, sh = shared_] {
        // A lane waits for connections with no I/O of its own pending.
        auto busy = net::make_work_guard(ln->ioc);
        // The last line of defence: whatever a completion handler throws
        // costs that one operation, never the server thread.
        for (;;) {
          try {
            ln->ioc.run();
            return;
          } catch (const std::exception& e) {
            ++sh->handler_errors;
            if (once_a_minute(sh->last_handler_error_log))
              spdlog::error("http: a server thread caught '{}'; it goes on",
                            printable_excerpt(e.what(), 300));
          } catch (...) {
            ++sh->handler_errors;
            if (once_a_minute(sh->last_handler_error_log))
              spdlog::error("http: a server thread caught an exception of "
                            "unknown type; it goes on");
          }
        }
      });
    }
    return {};
  }

  uint16_t port() const override {
    return port_;
  }

  void stop() override {
    if (stopped_.exchange(true))
      return;
    {
      std::lock_guard<std::mutex> guard{shared_->accept_mtx};
      shared_->resume = nullptr;
    }
    net::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
    });
    for (auto& lane : lanes_)
      lane->ioc.stop();
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
    // Answers that came too late hold their sessions, which hold their lane.
    for (auto& lane : lanes_) {
      std::lock_guard<std::mutex> guard{lane->outbox_mtx};
      lane->closed = true;
      lane->outbox.clear();
    }
  }

  uint64_t connections() const override {
    return shared_->connections.load();
  }

  uint64_t requests() const override {
    return shared_->requests.load();
  }

  uint64_t handler_errors() const override {
    return shared_->handler_errors.load();
  }

  uint64_t handler_timeouts() const override {
    return shared_->handler_timeouts.load();
  }

  uint64_t buffer_refusals() const override {
    return shared_->buffer_refusals.load();
  }

private:
  static std::vector<std::shared_ptr<server_lane>> make_lanes(size_t n) {
    std::vector<std::shared_ptr<server_lane>> out;
    for (size_t i = 0; i < std::max<size_t>(1, n); ++i)
      out.push_back(std::make_shared<server_lane>());
    return out;
  }

  /// Answers each of the lane's overdue requests, on the lane's thread,
  /// and comes back a tenth of web.handler-timeout later (10 ms .. 1 s).
  void sweep(const std::shared_ptr<server_lane>& lane) {
    auto tick = std::clamp(shared_->opts.handler_timeout / 10,
                           std::chrono::milliseconds{10},
                           std::chrono::milliseconds{1000});
    lane->sweep_timer->expires_after(tick);
    lane->sweep_timer->async_wait([this, lane](beast::error_code ec) {
      if (ec || stopped_)
        return;
      std::vector<std::shared_ptr<session>> due;
      {
        std::lock_guard<std::mutex> guard{lane->sessions_mtx};
        for (auto* s : lane->sessions)
          if (s->has_pending())
            if (auto sp = s->weak_from_this().lock())
              due.push_back(std::move(sp));
      }
      auto now = steady::now();
      for (auto& s : due)
        s->expire(now);
      sweep(lane);
    });
  }

  // Connections are dealt out to the lanes in turn: each lives on one
  // thread from accept to close.
  void accept() {
    auto lane = lanes_[next_lane_++ % lanes_.size()];
    acceptor_.async_accept(
      lane->ioc, [this, lane](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open())
          return;
        if (ec && resource_exhausted(ec)) {
          back_off(ec);
          return;
        }
        if (ec) {
          if (once_a_minute(shared_->last_accept_error_log))
            spdlog::warn("http: accept failed: {}", ec.message());
        } else {
          backoff_ = std::chrono::milliseconds{0};
          ++shared_->connections;
          ++shared_->open;
          std::make_shared<session>(std::move(socket), shared_, lane)
            ->start();
        }
        next_accept();
      });
  }

  /// Accepts the next connection, unless web.max-connections are open:
  /// then the acceptor waits for a session to close (which resumes it).
  void next_accept() {
    if (!acceptor_.is_open())
      return;
    auto cap = shared_->opts.max_connections;
    if (cap > 0 && shared_->open.load() >= cap) {
      std::lock_guard<std::mutex> guard{shared_->accept_mtx};
      shared_->accept_paused = true;
      // A session closing before the flag was set did not see it.
      if (shared_->open.load() >= cap)
        return;
      shared_->accept_paused = false;
    }
    accept();
  }

  /// Out of descriptors or memory: wait 50 ms, doubling to 1 s while it
  /// lasts, before the next accept.
  void back_off(const beast::error_code& ec) {
    backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds{50},
                          std::chrono::milliseconds{1000});
    if (once_a_minute(shared_->last_accept_error_log))
      spdlog::warn("http: accept failed: {} ({} connections open); backing "
                   "off up to 1 s",
                   ec.message(), shared_->open.load());
    backoff_timer_.expires_after(backoff_);
    backoff_timer_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec)
        next_accept();
    });
  }

  std::shared_ptr<server_shared> shared_;
  std::vector<std::shared_ptr<server_lane>> lanes_;
  /// On the first lane's io_context: its thread accepts.
  tcp::acceptor acceptor_;
  net::steady_timer backoff_timer_;
  std::chrono::milliseconds backoff_{0};
  size_t next_lane_ = 0;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
};

} // namespace

http_server::~http_server() {
  // nop
}

caf::expected<std::unique_ptr<http_server>>
http_server::start(const http_server_options& opts, http_handler handler) {
  auto shared = std::make_shared<server_shared>();
  shared->opts = opts;
  shared->handler = std::move(handler);
  auto server = std::make_unique<beast_server>(std::move(shared));
  if (auto err = server->listen())
    return err;
  return std::unique_ptr<http_server>{std::move(server)};
}

} // namespace vigil
