// One contract for every broker backend: the same cases run against the
// in-process broker and a real redis-server (VIGIL_TEST_REDIS_URL, started by
// tests/run_all.py). Each case gets a fresh database / memory:// name.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <thread>

#include <unistd.h>

#include "actors/backends/broker.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/task_body.hpp"
#include "runtime/adapters/redis.hpp"

using namespace vigil;

namespace {

std::string redis_url(int db) {
  const char* base = std::getenv("VIGIL_TEST_REDIS_URL");
  if (base == nullptr)
    return {};
  std::string url = base;
  url = url.substr(0, url.rfind('/')) + "/" + std::to_string(db);
  return url;
}

// Returns the URLs to run a contract case against, each fresh.
std::vector<std::string> broker_urls() {
  static std::atomic<int> counter{0};
  int n = ++counter;
  std::vector<std::string> urls{"memory://contract-" + std::to_string(n)};
  auto url = redis_url(1 + n % 14);
  if (!url.empty()) {
    auto ep = parse_redis_url(url);
    auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
    REQUIRE(conn);
    REQUIRE(conn->command({"FLUSHDB"}));
    urls.push_back(url);
  } else {
    WARN("VIGIL_TEST_REDIS_URL is not set: the redis backend is not tested");
  }
  return urls;
}

std::unique_ptr<broker> open(const std::string& url) {
  auto b = connect_broker(url, std::chrono::seconds{2});
  REQUIRE(b);
  return std::move(*b);
}

outgoing_task make_task(std::string queue, int64_t n, int priority = 0) {
  outgoing_task out;
  out.queue = std::move(queue);
  out.msg.task = "vigil.echo";
  out.msg.id = new_uuid4();
  out.msg.priority = priority;
  out.msg.body = encode_task_body({value{n}}, {}, content_type_msgpack);
  return out;
}

int64_t arg_of(const raw_delivery& raw) {
  auto d = decode_kombu_envelope(raw.envelope);
  REQUIRE(d);
  auto body = decode_task_body(d->msg.body, d->msg.content_type);
  REQUIRE(body);
  return body->args.at(0).as_int();
}

} // namespace

TEST_CASE("brokers deliver in FIFO order and acks remove", "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    auto b = open(url);
    std::vector<outgoing_task> batch;
    for (int64_t i = 0; i < 10; ++i)
      batch.push_back(make_task("q1", i));
    REQUIRE_FALSE(b->publish(batch));
    CHECK(*b->queue_length("q1") == 10);
    std::vector<raw_delivery> got;
    REQUIRE_FALSE(b->fetch({"q1"}, 4, got));
    REQUIRE(got.size() == 4);
    REQUIRE_FALSE(b->fetch({"q1"}, 100, got));
    REQUIRE(got.size() == 10);
    for (int64_t i = 0; i < 10; ++i) {
      CHECK(arg_of(got[static_cast<size_t>(i)]) == i);
      CHECK(got[static_cast<size_t>(i)].queue == "q1");
    }
    CHECK(*b->unacked_count() == 10);
    std::vector<std::string> tags;
    for (auto& d : got)
      tags.push_back(d.tag);
    REQUIRE_FALSE(b->ack(tags));
    CHECK(*b->unacked_count() == 0);
    got.clear();
    REQUIRE_FALSE(b->fetch({"q1"}, 100, got));
    CHECK(got.empty());
  }
}

TEST_CASE("brokers serve priority buckets first, then queue order",
          "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    auto b = open(url);
    REQUIRE_FALSE(b->publish({make_task("a", 1, 9), make_task("b", 2, 0),
                              make_task("a", 3, 0), make_task("b", 4, 5)}));
    std::vector<raw_delivery> got;
    REQUIRE_FALSE(b->fetch({"a", "b"}, 10, got));
    REQUIRE(got.size() == 4);
    // Kombu on Redis: a lower number is served first.
    CHECK(arg_of(got[0]) == 3);
    CHECK(arg_of(got[1]) == 2);
    CHECK(arg_of(got[2]) == 4);
    CHECK(arg_of(got[3]) == 1);
  }
}

TEST_CASE("brokers restore deliveries past the visibility timeout",
          "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    auto b = open(url);
    REQUIRE_FALSE(b->publish({make_task("q", 1), make_task("q", 2)}));
    std::vector<raw_delivery> got;
    REQUIRE_FALSE(b->fetch({"q"}, 10, got));
    REQUIRE(got.size() == 2);
    REQUIRE_FALSE(b->ack({got[0].tag}));
    // Not yet expired with a long timeout.
    CHECK(*b->restore_expired(std::chrono::seconds{3600}) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
    CHECK(*b->restore_expired(std::chrono::milliseconds{1}) == 1);
    CHECK(*b->unacked_count() == 0);
    std::vector<raw_delivery> again;
    REQUIRE_FALSE(b->fetch({"q"}, 10, again));
    REQUIRE(again.size() == 1);
    CHECK(arg_of(again[0]) == 2);
    CHECK(again[0].tag == got[1].tag);
    auto d = decode_kombu_envelope(again[0].envelope);
    REQUIRE(d);
    CHECK(d->redelivered);
  }
}

TEST_CASE("brokers give back requeued deliveries at the head",
          "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    auto b = open(url);
    REQUIRE_FALSE(b->publish({make_task("q", 1), make_task("q", 2),
                              make_task("q", 3)}));
    std::vector<raw_delivery> got;
    REQUIRE_FALSE(b->fetch({"q"}, 1, got));
    REQUIRE_FALSE(b->requeue({got[0].tag}));
    CHECK(*b->unacked_count() == 0);
    std::vector<raw_delivery> again;
    REQUIRE_FALSE(b->fetch({"q"}, 10, again));
    REQUIRE(again.size() == 3);
    CHECK(arg_of(again[0]) == 1);
    CHECK(arg_of(again[2]) == 3);
  }
}

TEST_CASE("brokers keep dead letters and replay them", "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    auto b = open(url);
    REQUIRE_FALSE(b->publish({make_task("q", 7)}));
    std::vector<raw_delivery> got;
    REQUIRE_FALSE(b->fetch({"q"}, 10, got));
    REQUIRE(got.size() == 1);
    dead_letter x{new_uuid4(), "vigil.echo", "tid", "q", "bad argument",
                  now_unix_us(), got[0].envelope};
    REQUIRE_FALSE(b->dead_letter_batch({x}, {got[0].tag}));
    CHECK(*b->unacked_count() == 0);
    auto letters = b->list_dead_letters();
    REQUIRE(letters);
    REQUIRE(letters->size() == 1);
    CHECK(letters->front().id == x.id);
    CHECK(letters->front().reason == "bad argument");
    CHECK(letters->front().task == "vigil.echo");
    CHECK(*b->replay_dead_letters("no-such-id") == 0);
    CHECK(*b->replay_dead_letters(x.id) == 1);
    CHECK(b->list_dead_letters()->empty());
    std::vector<raw_delivery> again;
    REQUIRE_FALSE(b->fetch({"q"}, 10, again));
    REQUIRE(again.size() == 1);
    CHECK(arg_of(again[0]) == 7);
  }
}

TEST_CASE("brokers dead-letter messages without a delivery tag at fetch",
          "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    auto b = open(url);
    REQUIRE_FALSE(b->push_raw("q", "this is not an envelope"));
    REQUIRE_FALSE(b->publish({make_task("q", 5)}));
    std::vector<raw_delivery> got;
    REQUIRE_FALSE(b->fetch({"q"}, 10, got));
    REQUIRE(got.size() == 1);
    CHECK(arg_of(got[0]) == 5);
    auto letters = b->list_dead_letters();
    REQUIRE(letters);
    REQUIRE(letters->size() == 1);
    CHECK(letters->front().envelope == "this is not an envelope");
    CHECK(letters->front().reason.find("delivery_tag") != std::string::npos);
  }
}

TEST_CASE("brokers share queues between connections", "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    auto producer = open(url);
    auto consumer = open(url);
    REQUIRE_FALSE(producer->publish({make_task("shared", 42)}));
    std::vector<raw_delivery> got;
    REQUIRE_FALSE(consumer->fetch({"shared"}, 10, got));
    REQUIRE(got.size() == 1);
    CHECK(arg_of(got[0]) == 42);
  }
}

TEST_CASE("redis broker reports an unreachable server as an error",
          "[broker][redis]") {
  auto b = connect_broker("redis://127.0.0.1:1/0", std::chrono::seconds{1});
  REQUIRE_FALSE(b);
  CHECK(error_text(b.error()).find("127.0.0.1:1") != std::string::npos);
  auto secret = connect_broker("redis://:hunter2@127.0.0.1:1/0",
                               std::chrono::seconds{1});
  REQUIRE_FALSE(secret);
  CHECK(error_text(secret.error()).find("hunter2") == std::string::npos);
}

TEST_CASE("redis broker authenticates with a password in the URL",
          "[broker][redis]") {
  if (std::getenv("VIGIL_TEST_REDIS_URL") == nullptr) {
    WARN("VIGIL_TEST_REDIS_URL is not set: skipped");
    return;
  }
  // A private server with a password, on a port next to the shared one.
  auto ep = parse_redis_url(std::getenv("VIGIL_TEST_REDIS_URL"));
  REQUIRE(ep);
  auto port = std::to_string(ep->port + 1000 + (getpid() % 1000));
  auto dir = std::string{"/tmp/vigil-auth-"} + port;
  auto start = "mkdir -p " + dir + " && redis-server --port " + port
               + " --bind 127.0.0.1 --save '' --appendonly no --dir " + dir
               + " --requirepass 's3cret:pw' --daemonize yes >/dev/null";
  REQUIRE(std::system(start.c_str()) == 0);
  std::unique_ptr<broker> b;
  for (int i = 0; i < 100 && !b; ++i) {
    auto r = connect_broker("redis://:s3cret:pw@127.0.0.1:" + port + "/0",
                            std::chrono::seconds{1});
    if (r)
      b = std::move(*r);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  REQUIRE(b);
  CHECK(b->describe().find("s3cret") == std::string::npos);
  REQUIRE_FALSE(b->publish({make_task("q", 1)}));
  CHECK(*b->queue_length("q") == 1);
  auto wrong = connect_broker("redis://:nope@127.0.0.1:" + port + "/0",
                              std::chrono::seconds{1});
  REQUIRE_FALSE(wrong);
  CHECK(error_text(wrong.error()).find("nope") == std::string::npos);
  CHECK(error_text(wrong.error()).find("authentication") != std::string::npos);
  auto stop = "redis-cli -p " + port + " -a 's3cret:pw' --no-auth-warning "
              "shutdown nosave >/dev/null 2>&1; rm -rf " + dir;
  std::system(stop.c_str());
}
