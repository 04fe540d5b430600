#pragma once

// The HTTP/1.1 server under vigil's web interface: Boost.Beast on Asio, one
// io_context per thread, each connection served by one thread from accept to
// close (no strands, no hand-overs between server threads; a handler that
// blocks holds up only its own thread's connections). It knows nothing of Sentry: it
// reads requests within size and time limits, hands each to a handler, and
// writes whatever the handler answers, from whichever thread answers.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <caf/expected.hpp>

namespace vigil {

/// Limits and timeouts of an `http_server`.
struct http_server_options {
  std::string host = "127.0.0.1";
  /// 0 = any free port (tests); `http_server::port` tells which.
  uint16_t port = 9001;
  /// Server threads; connections are dealt out to them in turn.
  size_t threads = 2;
  /// Request line plus headers; more gets 431 and the connection closed.
  size_t max_header_bytes = 16 * 1024;
  /// Body as sent; more gets 413 and the connection closed.
  size_t max_body_bytes = 20 * 1024 * 1024;
  /// Time a client may take to send one whole request.
  std::chrono::milliseconds read_timeout{30000};
  /// Time a keep-alive connection may sit idle between requests.
  std::chrono::milliseconds idle_timeout{75000};
  /// Open connections at most (0 = no bound). At the bound the server stops
  /// accepting (new clients wait in the kernel's listen backlog) until a
  /// connection closes.
  size_t max_connections = 4096;
  /// Request bodies being read or held by the handler, summed over all
  /// connections (0 = no bound). A request whose body does not fit gets 503
  /// with Retry-After and the connection closed.
  size_t max_buffered_bytes = 256 * 1024 * 1024;
  /// Time the handler has to answer a request (0 = no limit); after it the
  /// server answers 503 with Retry-After itself, closes the connection and
  /// drops the handler's late answer.
  std::chrono::milliseconds handler_timeout{30000};
};

/// One request as the handler sees it.
struct http_request {
  boost::beast::http::request<boost::beast::http::string_body> message;
  /// The client's address, e.g. "127.0.0.1".
  std::string remote_ip;

  /// The method, e.g. "POST".
  std::string_view method() const;
  /// The path without the query, e.g. "/api/1/store/".
  std::string_view path() const;
  /// The query without '?', or "".
  std::string_view query() const;
  /// A header's value, or "" when absent.
  std::string_view header(std::string_view name) const;
  std::string& body() { return message.body(); }
};

/// What the handler answers.
struct http_response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  /// Close the connection after this response.
  bool close = false;
};

/// Sends the answer to one request, from any thread. Only the first call
/// (of any copy) counts; later ones, and calls after the server answered
/// the request itself (web.handler-timeout) or stopped, are dropped.
using http_responder = std::function<void(http_response)>;

/// Handles one request; runs on a server thread and must not block for
/// long: slow work goes elsewhere and answers through the responder later.
/// An exception escaping it is caught, logged (at most once a minute, with
/// the method and path) and answered 500.
using http_handler = std::function<void(http_request&&, http_responder)>;

/// Returns `{"detail": text}` as a response with `status`. Never throws on
/// what `detail` holds: invalid UTF-8 becomes U+FFFD, and a detail over
/// 4 KiB is cut on a character boundary.
http_response json_error(unsigned status, std::string_view detail);

/// A running HTTP server; stops when destroyed.
class http_server {
public:
  /// Binds and starts serving; fails with a clear text when the address
  /// cannot be bound.
  static caf::expected<std::unique_ptr<http_server>>
  start(const http_server_options& opts, http_handler handler);

  virtual ~http_server();

  /// The port actually bound.
  virtual uint16_t port() const = 0;

  /// Stops accepting, closes connections and joins the threads.
  virtual void stop() = 0;

  /// Connections accepted and requests read since the start.
  virtual uint64_t connections() const = 0;
  virtual uint64_t requests() const = 0;

  /// Exceptions caught at the server's edges: those that escaped the
  /// handler (each answered 500) and those that escaped a server thread's
  /// event loop (which then went on).
  virtual uint64_t handler_errors() const = 0;

  /// Requests the server answered 503 itself: the handler did not answer
  /// within `handler_timeout`.
  virtual uint64_t handler_timeouts() const = 0;

  /// Requests refused with 503 because their body did not fit in
  /// `max_buffered_bytes`.
  virtual uint64_t buffer_refusals() const = 0;
};

/// Splits "host:port"; an empty host means 127.0.0.1.
caf::expected<std::pair<std::string, uint16_t>>
parse_bind_address(std::string_view text);

} // namespace vigil
