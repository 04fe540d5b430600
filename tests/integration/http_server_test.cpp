// The HTTP server (runtime/adapters/http): each connection lives on one
// server thread, answers may come from any thread, a blocked thread holds up
// only its own connections, and answers given after the server stopped are
// dropped safely.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
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

#include "runtime/adapters/http.hpp"

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
  auto server = http_server::start(
    test_options(2), [&](http_request&& req, http_responder respond) {
      if (req.query() == "block") {
        std::unique_lock<std::mutex> guard{mtx};
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
  std::this_thread::sleep_for(std::chrono::milliseconds{100});
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
