// One contract for every broker backend: the same cases run against the
// in-process broker and a real redis-server (VIGIL_TEST_REDIS_URL, started by
// tests/run_all.py). Each case gets a fresh database / memory:// name.
// With VIGIL_TEST_AMQP_URL (a private rabbitmq-server, also started by
// run_all.py) every case runs against RabbitMQ too: there is nothing to
// FLUSHDB, so each case starts by deleting the queues the cases use.
// RabbitMQ pushes deliveries asynchronously, so cases fetch until the
// expected count arrived (bounded); cases whose Redis semantics AMQP does
// not have say how they are adapted.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include <unistd.h>

#include "actors/backends/broker.hpp"
#include "adapters/redis.hpp"
#include "messages/base64.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/md5.hpp"
#include "messages/task_body.hpp"

#include "adapters/amqp.hpp"
#include "tests/integration/broker_test_support.hpp"
#include "tests/support/test_servers.hpp"

using namespace vigil;

namespace {

std::string redis_url(int db) {
  std::string url = vigil::testing::test_server_url("VIGIL_TEST_REDIS_URL");
  if (url.empty())
    return {};
  url = url.substr(0, url.rfind('/')) + "/" + std::to_string(db);
  return url;
}

bool is_amqp(const std::string& url) {
  return url.rfind("amqp://", 0) == 0;
}

// Every queue the cases use, and the dead letters.
const std::vector<std::string> amqp_case_queues{
  "q", "q1", "a", "b", "shared", "vigil.dead_letters"};

// The RabbitMQ URL, with the queues the cases use deleted; "" if unset.
std::string fresh_amqp_url() {
  auto url = vigil::testing::test_server_url("VIGIL_TEST_AMQP_URL");
  if (url.empty())
    return {};
  auto ep = parse_amqp_url(url);
  REQUIRE(ep);
  auto conn = amqp_connection::connect(*ep, std::chrono::seconds{5});
  REQUIRE(conn);
  for (auto& q : amqp_case_queues)
    REQUIRE_FALSE(conn->delete_queue(q));
  return url;
}

// Fetches until `got` holds `want` deliveries or 5 s passed. Memory and
// Redis hand out everything at once; AMQP hands out what has arrived.
void fetch_until(broker& b, const std::vector<std::string>& queues,
                 size_t want, std::vector<raw_delivery>& got) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  do {
    REQUIRE_FALSE(b.fetch(queues, want - got.size(), got));
  } while (got.size() < want && std::chrono::steady_clock::now() < deadline);
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
  if (auto amqp = fresh_amqp_url(); !amqp.empty())
    urls.push_back(amqp);
  return urls;
}

// A connection to the Redis database at `url`, emptied.
caf::expected<redis_connection> flushed_redis(const std::string& url) {
  auto ep = parse_redis_url(url);
  REQUIRE(ep);
  auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
  REQUIRE(conn);
  REQUIRE(conn->command({"FLUSHDB"}));
  return conn;
}

std::unique_ptr<broker> open(const std::string& url) {
  auto b = connect_broker(url, std::chrono::seconds{2});
  REQUIRE(b);
  return std::move(*b);
}

using test::make_task;
using test::arg_of;

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
    fetch_until(*b, {"q1"}, 4, got);
    REQUIRE(got.size() == 4);
    REQUIRE_FALSE(b->fetch({"q1"}, 100, got));
    fetch_until(*b, {"q1"}, 10, got);
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
    fetch_until(*b, {"a", "b"}, 4, got);
    REQUIRE(got.size() == 4);
    if (is_amqp(url)) {
      // Celery declares its queues without x-max-priority, so RabbitMQ
      // ignores the priority property: each queue is plain FIFO (how the
      // two queues interleave is up to RabbitMQ).
      std::vector<int64_t> a;
      std::vector<int64_t> b_args;
      for (auto& raw : got)
        (raw.queue == "a" ? a : b_args).push_back(arg_of(raw));
      CHECK(a == std::vector<int64_t>{1, 3});
      CHECK(b_args == std::vector<int64_t>{2, 4});
      continue;
    }
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
    fetch_until(*b, {"q"}, 2, got);
    REQUIRE(got.size() == 2);
    REQUIRE_FALSE(b->ack({got[0].tag}));
    if (is_amqp(url)) {
      // AMQP has no visibility timeout: RabbitMQ requeues what a connection
      // held unacknowledged when the connection closes, so restore_expired
      // has nothing to sweep. The restore is proven by closing the
      // consuming connection and fetching from a new one.
      CHECK(*b->restore_expired(std::chrono::milliseconds{1}) == 0);
      CHECK(*b->unacked_count() == 1);
      b.reset();
      auto c = open(url);
      std::vector<raw_delivery> again;
      fetch_until(*c, {"q"}, 1, again);
      REQUIRE(again.size() == 1);
      CHECK(arg_of(again[0]) == 2);
      auto d = c->decode(again[0]);
      REQUIRE(d);
      CHECK(d->redelivered);
      CHECK(d->queue == "q");
      CHECK(*c->unacked_count() == 1);
      REQUIRE_FALSE(c->ack({again[0].tag}));
      std::vector<raw_delivery> none;
      REQUIRE_FALSE(c->fetch({"q"}, 10, none));
      CHECK(none.empty());
      continue;
    }
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
    fetch_until(*b, {"q"}, 1, got);
    REQUIRE(got.size() == 1);
    REQUIRE_FALSE(b->requeue({got[0].tag}));
    CHECK(*b->unacked_count() == 0);
    std::vector<raw_delivery> again;
    fetch_until(*b, {"q"}, 3, again);
    REQUIRE(again.size() == 3);
    CHECK(arg_of(again[0]) == 1);
    CHECK(arg_of(again[2]) == 3);
  }
}

TEST_CASE("brokers give back at once what a dead holder held",
          "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    auto b = open(url);
    REQUIRE_FALSE(b->publish({make_task("q", 1), make_task("q", 2),
                              make_task("q", 3)}));
    std::vector<raw_delivery> got;
    fetch_until(*b, {"q"}, 3, got);
    REQUIRE(got.size() == 3);
    for (auto& raw : got)
      CHECK(raw.failed_deliveries == 0);
    // The holder of the first two died: they come back now, not after the
    // visibility timeout (AMQP: a nack with requeue, the default).
    CHECK(*b->restore_unacked({got[0].tag, got[1].tag}) == 2);
    CHECK(*b->unacked_count() == 1);
    std::vector<raw_delivery> again;
    fetch_until(*b, {"q"}, 2, again);
    REQUIRE(again.size() == 2);
    std::vector<int64_t> args{arg_of(again[0]), arg_of(again[1])};
    std::sort(args.begin(), args.end());
    CHECK(args == std::vector<int64_t>{1, 2});
    for (auto& raw : again) {
      auto d = b->decode(raw);
      REQUIRE(d);
      CHECK(d->redelivered);
      CHECK(d->queue == "q");
      CHECK(raw.failed_deliveries == 1);
    }
    // Tags that are no longer unacknowledged are skipped.
    REQUIRE_FALSE(b->ack({got[2].tag}));
    CHECK(*b->restore_unacked({got[2].tag, "no-such-tag"}) == 0);
    CHECK(*b->queue_length("q") == 0);
    REQUIRE_FALSE(b->ack({again[0].tag, again[1].tag}));
    CHECK(*b->unacked_count() == 0);
  }
}

TEST_CASE("brokers count failed deliveries per message until it leaves",
          "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    // AMQP keeps the count in RabbitMQ (a header on a copy of the message,
    // a marker queue per suspect run), so a counted message comes back
    // with another delivery tag; and it has no visibility timeout: a
    // holder presumed dead is a closed connection.
    bool amqp = is_amqp(url);
    auto b = open(url);
    REQUIRE_FALSE(b->publish({make_task("q", 5)}));
    auto take = [&] {
      std::vector<raw_delivery> got;
      fetch_until(*b, {"q"}, 1, got);
      REQUIRE(got.size() == 1);
      CHECK(arg_of(got[0]) == 5);
      return got[0];
    };
    auto expire_holder = [&] {
      if (!amqp) {
        CHECK(*b->restore_expired(std::chrono::seconds{0}) == 1);
        return;
      }
      b.reset();
      b = open(url);
    };
    auto first = take();
    CHECK(first.failed_deliveries == 0);
    // Its holder died: one failed delivery.
    REQUIRE(*b->restore_unacked({first.tag}) == 1);
    auto second = take();
    if (!amqp)
      CHECK(second.tag == first.tag);
    CHECK(second.failed_deliveries == 1);
    // Counted before it runs alone...
    CHECK(*b->count_delivery(second.tag) == 2);
    // ... so a death during that run adds nothing more.
    REQUIRE(*b->restore_unacked({second.tag}) == 1);
    auto third = take();
    CHECK(third.failed_deliveries == 2);
    // A clean give-back (a drain) keeps the count.
    REQUIRE_FALSE(b->requeue({third.tag}));
    auto fourth = take();
    CHECK(fourth.failed_deliveries == 2);
    // Past the visibility timeout its holder is presumed dead: a delivery
    // not counted yet gets one, a counted one keeps its count.
    expire_holder();
    auto fifth = take();
    CHECK(fifth.failed_deliveries == 2);
    CHECK(*b->count_delivery(fifth.tag) == 3);
    expire_holder();
    auto sixth = take();
    CHECK(sixth.failed_deliveries == 3);
    // Dead-lettered (acknowledged), the count goes with it: replayed, the
    // message starts afresh.
    dead_letter x{new_uuid4(), "vigil.echo", "tid", "q", "poisoned",
                  now_unix_us(), sixth.envelope, {}};
    REQUIRE_FALSE(b->dead_letter_batch({x}, {sixth.tag}));
    REQUIRE(*b->replay_dead_letters(x.id) == 1);
    auto seventh = take();
    if (!amqp)
      CHECK(seventh.tag == first.tag);
    CHECK(seventh.failed_deliveries == 0);
    // A message whose holder expired before any count was kept gets one.
    expire_holder();
    auto eighth = take();
    CHECK(eighth.failed_deliveries == 1);
    REQUIRE_FALSE(b->ack({eighth.tag}));
    REQUIRE_FALSE(b->publish({make_task("q", 5)}));
    CHECK(take().failed_deliveries == 0);
  }
}

TEST_CASE("redis broker keeps failed-delivery counts beside kombu's unacked "
          "hash",
          "[broker][redis]") {
  auto url = redis_url(46);
  if (url.empty()) {
    WARN("VIGIL_TEST_REDIS_URL is not set: skipped");
    return;
  }
  auto conn = flushed_redis(url);
  auto b = open(url);
  REQUIRE_FALSE(b->publish({make_task("q", 1), make_task("q", 2)}));
  std::vector<raw_delivery> got;
  REQUIRE_FALSE(b->fetch({"q"}, 10, got));
  REQUIRE(got.size() == 2);
  REQUIRE(*b->restore_unacked({got[0].tag}) == 1);
  // The count is in its own hash, keyed by delivery tag; kombu's keys hold
  // what kombu expects (the message is back in its list, out of unacked).
  auto count = conn->command({"HGET", "unacked_deliveries", got[0].tag});
  REQUIRE(count);
  CHECK(count->as_string() == "1");
  CHECK(conn->command({"HEXISTS", "unacked", got[0].tag})->as_int(-1) == 0);
  CHECK(conn->command({"ZSCORE", "unacked_index", got[0].tag})->is_nil());
  CHECK(conn->command({"HLEN", "unacked_deliveries"})->as_int(-1) == 1);
  auto listed = conn->command({"LRANGE", "q", "0", "-1"});
  REQUIRE(listed->size() == 1);
  auto d = decode_kombu_envelope((*listed)[0].as_string());
  REQUIRE(d);
  CHECK(d->redelivered);
  CHECK(d->tag == got[0].tag);
  // A clean requeue of the other one counts nothing.
  REQUIRE_FALSE(b->requeue({got[1].tag}));
  CHECK(conn->command({"HLEN", "unacked_deliveries"})->as_int(-1) == 1);
  std::vector<raw_delivery> again;
  REQUIRE_FALSE(b->fetch({"q"}, 10, again));
  REQUIRE(again.size() == 2);
  REQUIRE_FALSE(b->ack({again[0].tag, again[1].tag}));
  CHECK(conn->command({"EXISTS", "unacked_deliveries"})->as_int(-1) == 0);
}

TEST_CASE("brokers keep dead letters and replay them", "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    auto b = open(url);
    REQUIRE_FALSE(b->publish({make_task("q", 7)}));
    std::vector<raw_delivery> got;
    fetch_until(*b, {"q"}, 1, got);
    REQUIRE(got.size() == 1);
    dead_letter x{new_uuid4(), "vigil.echo", "tid", "q", "bad argument",
                  now_unix_us(), got[0].envelope, {}};
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
    fetch_until(*b, {"q"}, 1, again);
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
    if (is_amqp(url)) {
      // Every AMQP delivery has a delivery tag, so fetch hands the message
      // out like any other; decode() names what is wrong, the consumer
      // dead-letters it, and the bytes survive a replay.
      fetch_until(*b, {"q"}, 2, got);
      REQUIRE(got.size() == 2);
      auto bad = b->decode(got[0]);
      REQUIRE_FALSE(bad);
      CHECK(error_text(bad.error()).find("'task'") != std::string::npos);
      CHECK(arg_of(got[1]) == 5);
      dead_letter x{new_uuid4(), "", "", "q", error_text(bad.error()),
                    now_unix_us(), got[0].envelope, {}};
      REQUIRE_FALSE(b->dead_letter_batch({x}, {got[0].tag}));
      auto letters = b->list_dead_letters();
      REQUIRE(letters);
      REQUIRE(letters->size() == 1);
      CHECK(letters->front().reason.find("'task'") != std::string::npos);
      CHECK(*b->replay_dead_letters(x.id) == 1);
      std::vector<raw_delivery> again;
      fetch_until(*b, {"q"}, 1, again);
      REQUIRE(again.size() == 1);
      auto replayed = decode_json(again[0].envelope);
      REQUIRE(replayed);
      auto* body = replayed->find("body");
      REQUIRE(body != nullptr);
      CHECK(*base64_decode(body->as_text()) == "this is not an envelope");
      continue;
    }
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

TEST_CASE("brokers list and replay dead letters whose bytes are not UTF-8",
          "[broker][contract]") {
  for (auto& url : broker_urls()) {
    if (is_amqp(url))
      continue; // AMQP deliveries are re-wrapped as JSON: covered above.
    INFO("broker " << url);
    auto b = open(url);
    const std::string raw = "not\xff\xfe an envelope\x80";
    REQUIRE_FALSE(b->push_raw("q", raw));
    std::vector<raw_delivery> got;
    REQUIRE_FALSE(b->fetch({"q"}, 10, got));
    CHECK(got.empty());
    auto letters = b->list_dead_letters();
    REQUIRE(letters);
    REQUIRE(letters->size() == 1);
    CHECK(letters->front().envelope == raw);
    CHECK(letters->front().unreadable.empty());
    CHECK(*b->replay_dead_letters(letters->front().id) == 1);
    CHECK(b->list_dead_letters()->empty());
    // Replayed byte-exact: it dead-letters again with the same bytes.
    got.clear();
    REQUIRE_FALSE(b->fetch({"q"}, 10, got));
    auto again = b->list_dead_letters();
    REQUIRE(again->size() == 1);
    CHECK(again->front().envelope == raw);
  }
}

TEST_CASE("redis broker shows dead-letter records it cannot parse",
          "[broker][redis]") {
  auto url = redis_url(42);
  if (url.empty()) {
    WARN("VIGIL_TEST_REDIS_URL is not set: skipped");
    return;
  }
  auto conn = flushed_redis(url);
  // A record of an older version: raw invalid UTF-8 inside the JSON text.
  std::string old_record = "{\"id\":\"old-1\",\"task\":\"vigil.echo\","
                           "\"task_id\":\"t\",\"queue\":\"q\","
                           "\"reason\":\"bad\",\"time_us\":1,"
                           "\"envelope\":\"raw\xff bytes\"}";
  REQUIRE(conn->command({"LPUSH", "vigil.dead_letters", old_record}));
  REQUIRE(conn->command({"LPUSH", "vigil.dead_letters", "garbage \xff{"}));
  auto b = open(url);
  auto letters = b->list_dead_letters();
  REQUIRE(letters);
  REQUIRE(letters->size() == 2);
  const dead_letter* old_one = nullptr;
  const dead_letter* garbage = nullptr;
  for (auto& x : *letters)
    (x.unreadable.empty() ? old_one : garbage) = &x;
  REQUIRE(old_one != nullptr);
  REQUIRE(garbage != nullptr);
  CHECK(old_one->id == "old-1");
  CHECK(old_one->envelope == "raw\xff bytes");
  CHECK(garbage->id.rfind("unreadable-", 0) == 0);
  CHECK(garbage->envelope == "garbage \xff{");
  CHECK(*b->replay_dead_letters(garbage->id) == 0);
  CHECK(*b->replay_dead_letters("old-1") == 1);
  CHECK(*b->queue_length("q") == 1);
}

TEST_CASE("brokers share queues between connections", "[broker][contract]") {
  for (auto& url : broker_urls()) {
    INFO("broker " << url);
    auto producer = open(url);
    auto consumer = open(url);
    REQUIRE_FALSE(producer->publish({make_task("shared", 42)}));
    std::vector<raw_delivery> got;
    fetch_until(*consumer, {"shared"}, 1, got);
    REQUIRE(got.size() == 1);
    CHECK(arg_of(got[0]) == 42);
  }
}

TEST_CASE("memory broker holds at most max-messages waiting",
          "[broker][memory]") {
  auto url = std::string{"memory://bounded-"} + new_uuid4()
             + "?max-messages=3";
  auto b = open(url);
  std::vector<outgoing_task> two{make_task("q", 1), make_task("q", 2)};
  REQUIRE_FALSE(b->publish(two));
  // A batch that does not fit is refused whole, with a reason.
  auto err = b->publish(two);
  REQUIRE(err);
  CHECK(err == errc::too_large);
  CHECK_THAT(error_text(err), Catch::Contains("max-messages 3"));
  CHECK(*b->queue_length("q") == 2);
  REQUIRE_FALSE(b->publish({make_task("q", 3)}));
  // Taken, then given back: a requeue is never refused.
  std::vector<raw_delivery> got;
  fetch_until(*b, {"q"}, 3, got);
  REQUIRE(got.size() == 3);
  REQUIRE_FALSE(b->publish({make_task("q", 4)}));
  std::vector<std::string> tags;
  for (auto& d : got)
    tags.push_back(d.tag);
  REQUIRE_FALSE(b->requeue(tags));
  CHECK(*b->queue_length("q") == 4);
  CHECK(b->publish({make_task("q", 5)}) == errc::too_large);
  // Every handle on the same URL shares the bound.
  auto other = open(url);
  CHECK(other->publish({make_task("q", 6)}) == errc::too_large);
  auto bad = connect_broker("memory://x?max-messages=none",
                            std::chrono::seconds{1});
  REQUIRE_FALSE(bad);
  CHECK(error_text(bad.error())
        == "broker.url: max-messages expects an integer >= 1, got 'none'");
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
  auto shared = vigil::testing::test_server_url("VIGIL_TEST_REDIS_URL");
  if (shared.empty())
    return;
  // A private server with a password, on a port next to the shared one.
  auto ep = parse_redis_url(shared);
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

TEST_CASE("amqp broker reports unreachable servers and failed logins "
          "without the password",
          "[broker][amqp]") {
  auto b = connect_broker("amqp://guest:hunter2@127.0.0.1:1/%2F",
                          std::chrono::seconds{1});
  REQUIRE_FALSE(b);
  CHECK(error_text(b.error()).find("127.0.0.1:1") != std::string::npos);
  CHECK(error_text(b.error()).find("hunter2") == std::string::npos);
  auto url = vigil::testing::test_server_url("VIGIL_TEST_AMQP_URL");
  if (url.empty())
    return;
  auto ep = parse_amqp_url(url);
  REQUIRE(ep);
  auto base = ep->host + ":" + std::to_string(ep->port);
  auto wrong = connect_broker("amqp://guest:hunter2@" + base + "/%2F",
                              std::chrono::seconds{5});
  REQUIRE_FALSE(wrong);
  CHECK(error_text(wrong.error()).find("hunter2") == std::string::npos);
  CHECK(error_text(wrong.error()).find("ACCESS_REFUSED") != std::string::npos);
  auto vhost = connect_broker("amqp://guest:guest@" + base + "/no-such-vhost",
                              std::chrono::seconds{5});
  REQUIRE_FALSE(vhost);
  CHECK(error_text(vhost.error()).find("no-such-vhost") != std::string::npos);
  auto good = connect_broker(url, std::chrono::seconds{5});
  REQUIRE(good);
  CHECK((*good)->describe().find(":" + ep->password + "@")
        == std::string::npos);
}

TEST_CASE("amqp broker counts a suspect's run, not the suspects held beside "
          "it, on a copy that keeps the message whole",
          "[broker][amqp]") {
  auto url = fresh_amqp_url();
  if (url.empty())
    return;
  auto b = open(url);
  auto a = make_task("q", 1);
  a.msg.reply_to = "reply-queue";
  a.msg.extra_headers = R"({"custom": "kept"})";
  auto other = make_task("q", 2);
  REQUIRE_FALSE(b->publish({a, other}));
  auto take_both = [&] {
    std::vector<raw_delivery> got;
    fetch_until(*b, {"q"}, 2, got);
    REQUIRE(got.size() == 2);
    if (arg_of(got[0]) != 1)
      std::swap(got[0], got[1]);
    return got;
  };
  auto die = [&] {
    b.reset();
    b = open(url);
  };
  auto marker = [&](const std::string& id, int count) {
    return "vigil.running."
           + md5_hex({"q", "\n", id, "\n", std::to_string(count)});
  };
  auto admin_ep = parse_amqp_url(url);
  REQUIRE(admin_ep);
  auto admin = amqp_connection::connect(*admin_ep, std::chrono::seconds{5});
  REQUIRE(admin);
  // The process died with both in a batch: each counts one.
  take_both();
  die();
  auto got = take_both();
  CHECK(got[0].failed_deliveries == 1);
  CHECK(got[1].failed_deliveries == 1);
  // The first runs alone (marked before it runs) and takes the process
  // down; the second was held, not run.
  CHECK(*b->count_delivery(got[0].tag) == 2);
  CHECK(admin->message_count(marker(a.msg.id, 1))->has_value());
  die();
  got = take_both();
  CHECK(got[0].failed_deliveries == 2);
  CHECK(got[1].failed_deliveries == 1);
  CHECK_FALSE(admin->message_count(marker(a.msg.id, 1))->has_value());
  // The copy is the message as it was published, with its count only in
  // RabbitMQ: the consumer never sees the header.
  CHECK(got[0].envelope.find("x-vigil-deliveries") == std::string::npos);
  auto d = b->decode(got[0]);
  REQUIRE(d);
  CHECK(d->msg.id == a.msg.id);
  CHECK(d->msg.task == "vigil.echo");
  CHECK(d->msg.reply_to == "reply-queue");
  CHECK(d->msg.extra_headers.find("custom") != std::string::npos);
  CHECK(d->msg.extra_headers.find("x-vigil") == std::string::npos);
  // Run again, it succeeds: acknowledged, its marker goes too.
  CHECK(*b->count_delivery(got[0].tag) == 3);
  CHECK(admin->message_count(marker(a.msg.id, 2))->has_value());
  REQUIRE_FALSE(b->ack({got[0].tag}));
  CHECK_FALSE(admin->message_count(marker(a.msg.id, 2))->has_value());
  // A worker that dies in a living process gives its suspect back
  // counted; a clean give-back of a marked suspect keeps the count.
  CHECK(*b->count_delivery(got[1].tag) == 2);
  REQUIRE_FALSE(b->requeue({got[1].tag}));
  std::vector<raw_delivery> again;
  fetch_until(*b, {"q"}, 1, again);
  REQUIRE(again.size() == 1);
  CHECK(again[0].failed_deliveries == 1);
  CHECK(*b->count_delivery(again[0].tag) == 2);
  CHECK(*b->restore_unacked({again[0].tag}) == 1);
  again.clear();
  fetch_until(*b, {"q"}, 1, again);
  REQUIRE(again.size() == 1);
  CHECK(again[0].failed_deliveries == 2);
  REQUIRE_FALSE(b->ack({again[0].tag}));
  CHECK(*b->queue_length("q") == 0);
  CHECK(*b->unacked_count() == 0);
}

TEST_CASE("amqp broker ignores delivery tags of an earlier connection",
          "[broker][amqp]") {
  auto url = fresh_amqp_url();
  if (url.empty())
    return;
  // A consumer that reconnects still holds the old connection's tags;
  // RabbitMQ has requeued those messages already, and the new channel
  // numbers its deliveries from 1 again: acking an old tag there would ack
  // a different message.
  auto b = open(url);
  REQUIRE_FALSE(b->publish({make_task("q", 1), make_task("q", 2)}));
  std::vector<raw_delivery> old;
  fetch_until(*b, {"q"}, 2, old);
  REQUIRE(old.size() == 2);
  std::vector<std::string> old_tags{old[0].tag, old[1].tag};
  b.reset();
  auto c = open(url);
  std::vector<raw_delivery> got;
  fetch_until(*c, {"q"}, 2, got);
  REQUIRE(got.size() == 2);
  REQUIRE_FALSE(c->ack(old_tags));
  REQUIRE_FALSE(c->requeue(old_tags));
  CHECK(*c->unacked_count() == 2);
  REQUIRE_FALSE(c->ack({got[1].tag, got[0].tag}));
  CHECK(*c->unacked_count() == 0);
  CHECK(*c->queue_length("q") == 0);
}

TEST_CASE("amqp broker keeps its deliveries across channel errors of "
          "declarations",
          "[broker][amqp]") {
  auto url = fresh_amqp_url();
  if (url.empty())
    return;
  auto b = open(url);
  REQUIRE_FALSE(b->publish({make_task("q", 1), make_task("q", 2)}));
  std::vector<raw_delivery> got;
  fetch_until(*b, {"q"}, 1, got);
  REQUIRE(got.size() == 1);
  // A passive declare of a missing queue makes RabbitMQ close the channel
  // (404): that happens on the admin channel, not the one holding `got`.
  CHECK(*b->queue_length("vigil.contract.no-such-queue") == 0);
  REQUIRE_FALSE(b->ack({got[0].tag}));
  CHECK(*b->unacked_count() == 0);
  fetch_until(*b, {"q"}, 2, got);
  REQUIRE(got.size() == 2);
  CHECK(arg_of(got[1]) == 2);
  REQUIRE_FALSE(b->ack({got[1].tag}));
}

TEST_CASE("amqp broker uses a queue declared with x-max-priority as it is",
          "[broker][amqp]") {
  auto url = fresh_amqp_url();
  if (url.empty())
    return;
  // Celery with task_queue_max_priority declares its queues with
  // x-max-priority; declaring them again without it would be refused
  // (406), so vigil uses the queue as it is, and RabbitMQ then serves
  // higher priorities first.
  {
    auto ep = parse_amqp_url(url);
    REQUIRE(ep);
    auto conn = amqp_connection::connect(*ep, std::chrono::seconds{5});
    REQUIRE(conn);
    amqp_queue_options opts;
    opts.arguments = {{"x-max-priority", value{10}}};
    REQUIRE(conn->declare_queue("q", opts));
  }
  auto b = open(url);
  REQUIRE_FALSE(b->publish({make_task("q", 1, 1), make_task("q", 2, 9),
                            make_task("q", 3, 5)}));
  std::vector<raw_delivery> got;
  fetch_until(*b, {"q"}, 3, got);
  REQUIRE(got.size() == 3);
  CHECK(arg_of(got[0]) == 2);
  CHECK(arg_of(got[1]) == 3);
  CHECK(arg_of(got[2]) == 1);
}

TEST_CASE("amqp broker reports publishes to a queue deleted behind its back",
          "[broker][amqp]") {
  auto url = fresh_amqp_url();
  if (url.empty())
    return;
  auto b = open(url);
  REQUIRE_FALSE(b->publish({make_task("q", 1)}));
  {
    auto ep = parse_amqp_url(url);
    REQUIRE(ep);
    auto conn = amqp_connection::connect(*ep, std::chrono::seconds{5});
    REQUIRE(conn);
    REQUIRE_FALSE(conn->delete_queue("q"));
  }
  // The broker declared "q" once; RabbitMQ returns the unroutable message
  // instead of dropping it silently, and the next publish declares again.
  auto err = b->publish({make_task("q", 2)});
  REQUIRE(err);
  CHECK(error_text(err).find("route") != std::string::npos);
  REQUIRE_FALSE(b->publish({make_task("q", 3)}));
  CHECK(*b->queue_length("q") == 1);
  std::vector<raw_delivery> got;
  fetch_until(*b, {"q"}, 1, got);
  REQUIRE(got.size() == 1);
  CHECK(arg_of(got[0]) == 3);
}

TEST_CASE("amqp broker replaces an idle publishing connection the server "
          "closed",
          "[broker][amqp]") {
  auto url = fresh_amqp_url();
  if (url.empty())
    return;
  // Heartbeats of 1 s: RabbitMQ drops a connection it did not hear from
  // for 2 s. A publisher that sat idle that long (rabbitmq-c only answers
  // heartbeats when called) reconnects instead of failing its next publish.
  auto b = open(url + "?heartbeat=1");
  REQUIRE_FALSE(b->publish({make_task("q", 1)}));
  std::this_thread::sleep_for(std::chrono::milliseconds{3500});
  REQUIRE_FALSE(b->publish({make_task("q", 2)}));
  CHECK(*b->queue_length("q") == 2);
  // A consumer holding deliveries reports the loss instead: its tags are
  // gone with the connection.
  std::vector<raw_delivery> got;
  fetch_until(*b, {"q"}, 2, got);
  REQUIRE(got.size() == 2);
  std::this_thread::sleep_for(std::chrono::milliseconds{3500});
  auto err = b->publish({make_task("q", 3)});
  REQUIRE(err);
  CHECK(static_cast<errc>(err.code()) == errc::connection_failed);
}

TEST_CASE("amqp broker's prefetch is one limit per channel, as kombu's",
          "[broker][amqp]") {
  auto url = fresh_amqp_url();
  if (url.empty())
    return;
  auto b = open(url + "?prefetch=3");
  std::vector<outgoing_task> batch;
  for (int64_t i = 0; i < 4; ++i) {
    batch.push_back(make_task("a", i));
    batch.push_back(make_task("b", 10 + i));
  }
  REQUIRE_FALSE(b->publish(batch));
  // Two queues on one channel share the 3 deliveries (global=True).
  std::vector<raw_delivery> got;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds{300};
  caf::error err;
  while (!err && std::chrono::steady_clock::now() < until)
    err = b->fetch({"a", "b"}, 10, got);
  REQUIRE_FALSE(err);
  CHECK(got.size() == 3);
  CHECK(*b->queue_length("a") + *b->queue_length("b") == 5);
  std::vector<std::string> tags;
  for (auto& d : got)
    tags.push_back(d.tag);
  REQUIRE_FALSE(b->ack(tags));
  fetch_until(*b, {"a", "b"}, 6, got);
  CHECK(got.size() == 6);
}

TEST_CASE("redis broker restores the in-flight list of a dead consumer",
          "[broker][redis]") {
  auto url = redis_url(41);
  if (url.empty()) {
    WARN("VIGIL_TEST_REDIS_URL is not set: skipped");
    return;
  }
  auto conn = flushed_redis(url);
  task_message msg;
  msg.task = "vigil.echo";
  msg.id = new_uuid4();
  msg.body = encode_task_body({value{9}}, {}, content_type_msgpack);
  auto env = encode_kombu_envelope(msg, "q", "tag-9");
  // What a consumer killed between its two transactions leaves behind: a
  // member of vigil.inflight, its backup list, and a stale alive stamp.
  REQUIRE(conn->command({"SADD", "vigil.inflight", "vigil.inflight.dead"}));
  REQUIRE(conn->command({"RPUSH", "vigil.inflight.dead:0", env}));
  REQUIRE(conn->command({"SET", "vigil.inflight.dead.alive", "1"}));
  auto b = open(url);
  CHECK(*b->restore_expired(std::chrono::seconds{3600}) == 1);
  CHECK(*b->queue_length("q") == 1);
  std::vector<raw_delivery> got;
  REQUIRE_FALSE(b->fetch({"q"}, 10, got));
  REQUIRE(got.size() == 1);
  CHECK(arg_of(got[0]) == 9);
  auto left = conn->command({"EXISTS", "vigil.inflight.dead:0"});
  CHECK(left->as_int(-1) == 0);
  auto member = conn->command({"SISMEMBER", "vigil.inflight",
                               "vigil.inflight.dead"});
  CHECK(member->as_int(-1) == 0);
  // A live consumer's list is left alone.
  REQUIRE(conn->command({"SADD", "vigil.inflight", "vigil.inflight.live"}));
  REQUIRE(conn->command({"RPUSH", "vigil.inflight.live:0", env}));
  auto now_ms = std::to_string(now_unix_us() / 1000);
  REQUIRE(conn->command({"SET", "vigil.inflight.live.alive", now_ms}));
  CHECK(*b->restore_expired(std::chrono::seconds{3600}) == 0);
}

TEST_CASE("redis and amqp connect by host name; a bad name fails clearly",
          "[broker][resolve]") {
  // The harness's servers listen on 127.0.0.1; "localhost" may resolve to
  // ::1 first, and each resolved address is tried in turn.
  auto by_name = [](std::string url) {
    auto at = url.find("127.0.0.1");
    REQUIRE(at != std::string::npos);
    return url.replace(at, 9, "localhost");
  };
  if (auto url = redis_url(15); !url.empty()) {
    auto ep = parse_redis_url(by_name(url));
    REQUIRE(ep);
    auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
    REQUIRE(conn);
    auto pong = conn->command({"PING"});
    REQUIRE(pong);
  }
  if (auto amqp = vigil::testing::test_server_url("VIGIL_TEST_AMQP_URL");
      !amqp.empty()) {
    auto ep = parse_amqp_url(by_name(amqp));
    REQUIRE(ep);
    CHECK(amqp_connection::connect(*ep, std::chrono::seconds{5}));
  }
  auto bad = parse_redis_url("redis://:hunter2@no-such-host.invalid:6379/0");
  REQUIRE(bad);
  auto conn = redis_connection::connect(*bad, std::chrono::seconds{2});
  REQUIRE_FALSE(conn);
  CHECK_THAT(error_text(conn.error()), Catch::Contains("no-such-host.invalid"));
  CHECK_THAT(error_text(conn.error()), !Catch::Contains("hunter2"));
}
