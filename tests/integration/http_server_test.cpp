// The HTTP server (adapters/http): each connection lives on one
// server thread, answers may come from any thread, a blocked thread holds up
// only its own connections, and answers given after the server stopped are
// dropped safely.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <stdexcept>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "adapters/http.hpp"

using namespace vigil;

namespace {

/// A blocking keep-alive client on one loopback connection.
class client {
public:
  explicit client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr),
                           sizeof(addr))
                 == 0;
  }

  ~client() {
    ::close(fd_);
  }

  bool connected() const {
    return connected_;
  }

  /// Sends `GET path` and returns the answer's body ("" on failure).
  std::string get(const std::string& path) {
    auto req = "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL)
        != static_cast<ssize_t>(req.size()))
      return {};
    std::string in;
    char buf[4096];
    for (;;) {
      auto head_end = in.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        auto at = in.find("Content-Length: ");
        if (at != std::string::npos && at < head_end) {
          auto len = std::stoul(in.substr(at + 16));
          if (in.size() >= head_end + 4 + len)
            return in.substr(head_end + 4, len);
        }
      }
      auto n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0)
        return {};
      in.append(buf, static_cast<size_t>(n));
    }
  }

private:
  int fd_ = -1;
  bool connected_ = false;
};

http_server_options test_options(size_t threads) {
  http_server_options opts;
  opts.port = 0;
  opts.threads = threads;
  return opts;
}

/// A handler that answers nothing itself: it keeps each responder for the
/// test to call later.
http_handler keep_responders(std::mutex& mtx,
                             std::vector<http_responder>& pending) {
  return [&mtx, &pending](http_request&&, http_responder r) {
    std::lock_guard<std::mutex> guard{mtx};
    pending.push_back(std::move(r));
  };
}

} // namespace

TEST_CASE("connections are dealt out to the server threads and stay on one",
          "[http]") {
  std::mutex mtx;
  std::set<std::thread::id> threads;
  std::map<std::string, std::set<std::thread::id>> per_connection;
  auto server = http_server::start(
    test_options(2), [&](http_request&& req, http_responder respond) {
      {
        std::lock_guard<std::mutex> guard{mtx};
        threads.insert(std::this_thread::get_id());
        per_connection[std::string{req.query()}].insert(
          std::this_thread::get_id());
      }
      http_response resp;
      resp.body = std::string{req.query()};
      respond(std::move(resp));
    });
  REQUIRE(server);
  std::vector<std::unique_ptr<client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<client>((*server)->port()));
    REQUIRE(clients.back()->connected());
  }
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < clients.size(); ++i) {
      auto q = std::to_string(i);
      CHECK(clients[i]->get("/?" + q) == q);
    }
  std::lock_guard<std::mutex> guard{mtx};
  CHECK(threads.size() == 2);
  for (auto& [conn, ids] : per_connection)
    CHECK(ids.size() == 1);
  CHECK((*server)->requests() == 12);
}

TEST_CASE("answers given later from another thread reach the client",
          "[http]") {
  std::mutex mtx;
  std::vector<http_responder> pending;
  auto server = http_server::start(test_options(2),
                                   keep_responders(mtx, pending));
  REQUIRE(server);
  std::atomic<bool> stop{false};
  // Answers a burst at a time, as the ingest actor does.
  std::thread answerer{[&] {
    while (!stop) {
      std::vector<http_responder> batch;
      {
        std::lock_guard<std::mutex> guard{mtx};
        batch.swap(pending);
      }
      for (auto& r : batch) {
        http_response resp;
        resp.body = "later";
        r(std::move(resp));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
  }};
  std::vector<std::thread> users;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i)
    users.emplace_back([&] {
      client c{(*server)->port()};
      for (int k = 0; k < 20; ++k)
        if (c.get("/") == "later")
          ++ok;
    });
  for (auto& t : users)
    t.join();
  stop = true;
  answerer.join();
  CHECK(ok == 80);
}

TEST_CASE("a blocked server thread holds up only its own connections",
          "[http]") {
  std::mutex mtx;
  std::condition_variable cv;
  bool release = false;
  bool blocking = false;
  auto server = http_server::start(
    test_options(2), [&](http_request&& req, http_responder respond) {
      if (req.query() == "block") {
        std::unique_lock<std::mutex> guard{mtx};
        blocking = true;
        cv.notify_all();
        cv.wait_for(guard, std::chrono::seconds{10}, [&] { return release; });
      }
      http_response resp;
      resp.body = std::string{req.query()};
      respond(std::move(resp));
    });
  REQUIRE(server);
  // Connections go to the threads in turn: the first to thread one, the
  // second to thread two.
  client first{(*server)->port()};
  client second{(*server)->port()};
  REQUIRE(first.get("/?warm") == "warm");
  REQUIRE(second.get("/?warm") == "warm");
  std::string blocked_answer;
  std::thread blocked{[&] { blocked_answer = first.get("/?block"); }};
  {
    // The first thread is inside the blocking handler before the second
    // connection asks.
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait_for(guard, std::chrono::seconds{10}, [&] { return blocking; });
    CHECK(blocking);
  }
  CHECK(second.get("/?free") == "free");
  {
    std::lock_guard<std::mutex> guard{mtx};
    release = true;
  }
  cv.notify_all();
  blocked.join();
  CHECK(blocked_answer == "block");
}

TEST_CASE("an answer given after the server is gone is dropped", "[http]") {
  std::mutex mtx;
  std::vector<http_responder> pending;
  auto server = http_server::start(test_options(2),
                                   keep_responders(mtx, pending));
  REQUIRE(server);
  {
    client c{(*server)->port()};
    REQUIRE(c.connected());
    std::thread sender{[&] { c.get("/"); }};
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> guard{mtx};
        if (!pending.empty())
          break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{2});
    }
    server->reset();
    sender.join(); // the connection was closed without an answer
  }
  std::lock_guard<std::mutex> guard{mtx};
  REQUIRE(pending.size() == 1);
  http_response resp;
  resp.body = "too late";
  pending.front()(std::move(resp)); // must neither crash nor write
  pending.clear();
}

namespace {

/// Sends raw bytes on a new connection and returns all the server sent
/// until it closed (or 5 s passed).
std::string raw_exchange(uint16_t port, const std::string& data) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string in;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    char buf[4096];
    for (;;) {
      auto n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0)
        break;
      in.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return in;
}

} // namespace

TEST_CASE("an exception escaping the handler is answered 500 and counted",
          "[http]") {
  auto server = http_server::start(
    test_options(1), [](http_request&& req, http_responder respond) {
      if (req.path() == "/throw")
        throw std::runtime_error("boom");
      if (req.path() == "/answer-then-throw") {
        http_response resp;
        resp.body = "first";
        respond(std::move(resp));
        throw std::logic_error("after the answer");
      }
      http_response resp;
      resp.body = "ok";
      respond(std::move(resp));
    });
  REQUIRE(server);
  client c{(*server)->port()};
  REQUIRE(c.connected());
  CHECK(c.get("/throw").find("internal error") != std::string::npos);
  // The first answer counts; the 500 after it is dropped.
  CHECK(c.get("/answer-then-throw") == "first");
  CHECK(c.get("/fine") == "ok");
  CHECK((*server)->handler_errors() == 2);
}

TEST_CASE("json_error never throws on invalid UTF-8", "[http]") {
  auto r = json_error(404, "no route for GET /\xff\xfe\xc3");
  CHECK(r.status == 404);
  CHECK(r.body == "{\"detail\":\"no route for GET /\xef\xbf\xbd\xef\xbf\xbd"
                  "\xef\xbf\xbd\"}");
  auto long_detail = json_error(400, std::string(10000, 'x'));
  CHECK(long_detail.body.size() < 4200);
}

TEST_CASE("a request the handler does not answer in time gets 503",
          "[http]") {
  std::mutex mtx;
  std::vector<http_responder> pending;
  auto opts = test_options(1);
  opts.handler_timeout = std::chrono::milliseconds{100};
  auto server = http_server::start(opts, keep_responders(mtx, pending));
  REQUIRE(server);
  auto answer = raw_exchange((*server)->port(),
                             "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(answer.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(answer.find("Retry-After: 5") != std::string::npos);
  CHECK(answer.find("Connection: close") != std::string::npos);
  CHECK((*server)->handler_timeouts() == 1);
  // The late answer (twice) is dropped, and the server goes on.
  std::lock_guard<std::mutex> guard{mtx};
  REQUIRE(pending.size() == 1);
  http_response late;
  late.body = "late";
  pending.front()(late);
  pending.front()(late);
}

TEST_CASE("framing errors are answered 400 and the connection closed",
          "[http]") {
  auto server = http_server::start(
    test_options(1), [](http_request&&, http_responder respond) {
      respond(http_response{});
    });
  REQUIRE(server);
  for (std::string bad :
       {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "zz\r\n{}\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{}",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        "Content-Length: 3\r\n\r\n{}x"}) {
    // raw_exchange returns once the server closed the connection.
    auto answer = raw_exchange((*server)->port(), bad);
    CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(answer.find("Connection: close") != std::string::npos);
  }
}

TEST_CASE("bodies beyond max_buffered_bytes get 503", "[http]") {
  auto opts = test_options(1);
  opts.max_buffered_bytes = 1000;
  auto server = http_server::start(
    opts, [](http_request&&, http_responder respond) {
      respond(http_response{});
    });
  REQUIRE(server);
  auto port = (*server)->port();
  auto big = raw_exchange(port, "POST / HTTP/1.1\r\nHost: x\r\n"
                                "Content-Length: 2000\r\n\r\n");
  CHECK(big.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(big.find("Retry-After") != std::string::npos);
  std::string chunked = "POST / HTTP/1.1\r\nHost: x\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 30; ++i)
    chunked += "40\r\n" + std::string(64, 'x') + "\r\n";
  chunked += "0\r\n\r\n";
  CHECK(raw_exchange(port, chunked).rfind("HTTP/1.1 503", 0) == 0);
  CHECK((*server)->buffer_refusals() == 2);
  // Released after each answer: a body that fits is served.
  auto small = raw_exchange(port, "POST / HTTP/1.1\r\nHost: x\r\n"
                                  "Connection: close\r\n"
                                  "Content-Length: 900\r\n\r\n"
                                  + std::string(900, 'y'));
  CHECK(small.rfind("HTTP/1.1 200", 0) == 0);
  auto again = raw_exchange(port, "POST / HTTP/1.1\r\nHost: x\r\n"
                                  "Connection: close\r\n"
                                  "Content-Length: 900\r\n\r\n"
                                  + std::string(900, 'y'));
  CHECK(again.rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("beyond max_connections a client is served once one closes",
          "[http]") {
  auto opts = test_options(1);
  opts.max_connections = 2;
  auto server = http_server::start(
    opts, [](http_request&&, http_responder respond) {
      http_response resp;
      resp.body = "hi";
      respond(std::move(resp));
    });
  REQUIRE(server);
  auto port = (*server)->port();
  auto first = std::make_unique<client>(port);
  client second{port};
  REQUIRE(first->get("/") == "hi");
  REQUIRE(second.get("/") == "hi");
  std::string third_answer;
  std::thread third{[&] {
    client c{port};
    third_answer = c.get("/");
  }};
  first.reset(); // closes: the acceptor resumes
  third.join();
  CHECK(third_answer == "hi");
  CHECK(second.get("/") == "hi");
}
