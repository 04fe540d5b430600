// cancel_consumer on RabbitMQ (the AMQP broker's side): a queue dropped from
// fetch's list is cancelled, what RabbitMQ had pushed of it goes back ready
// and uncounted for other consumers, a delivery already handed out is
// acknowledged as usual, and listing the queue again consumes it again.
// Needs VIGIL_TEST_AMQP_URL (a private rabbitmq-server, started by
// tests/run_all.py); skipped without it. Waits poll for a positive
// condition, bounded.

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <set>
#include <thread>

#include "actors/backends/broker.hpp"
#include "adapters/amqp.hpp"
#include "messages/clock.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/task_body.hpp"
#include "tests/integration/broker_test_support.hpp"
#include "tests/support/test_servers.hpp"

using namespace vigil;

namespace {

const std::string queue_a = "vigil.cancel.a";
const std::string queue_b = "vigil.cancel.b";


// True once `cond` holds, polling for 10 s at most.
bool eventually(const std::function<bool()>& cond) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return true;
}

void fetch_n(broker& b, const std::vector<std::string>& queues, size_t want,
             std::vector<raw_delivery>& got) {
  INFO("fetching " << want << " from " << queues.back());
  REQUIRE(eventually([&] {
    REQUIRE_FALSE(b.fetch(queues, want - got.size(), got));
    return got.size() >= want;
  }));
  INFO("got " << got.size());
}

} // namespace

TEST_CASE("amqp broker stops consuming a queue dropped from fetch's list",
          "[broker][amqp]") {
  auto url = vigil::testing::test_server_url("VIGIL_TEST_AMQP_URL");
  if (url.empty()) {
    WARN("VIGIL_TEST_AMQP_URL is not set: AMQP cancel_consumer not tested");
    return;
  }
  auto ep = parse_amqp_url(url);
  REQUIRE(ep);
  auto admin = amqp_connection::connect(*ep, std::chrono::seconds{5});
  REQUIRE(admin);
  for (auto& q : {queue_a, queue_b})
    REQUIRE_FALSE(admin->delete_queue(q));
  auto ready = [&](const std::string& q) {
    auto n = admin->message_count(q);
    REQUIRE(n);
    return n->value_or(0);
  };
  auto opened = connect_broker(url, std::chrono::seconds{5});
  REQUIRE(opened);
  auto& b = **opened;

  std::vector<outgoing_task> batch;
  for (int64_t i = 1; i <= 5; ++i)
    batch.push_back(test::make_task(queue_a, i));
  REQUIRE_FALSE(b.publish(batch));
  std::vector<raw_delivery> held;
  fetch_n(b, {queue_a}, 1, held);
  CHECK(held[0].queue == queue_a);
  // RabbitMQ pushes the other four (prefetch 256): none ready any more.
  REQUIRE(eventually([&] { return ready(queue_a) == 0; }));

  // A second queue consumed, the first one dropped (cancel_consumer).
  REQUIRE_FALSE(b.publish({test::make_task(queue_b, 10), test::make_task(queue_b, 11)}));
  fetch_n(b, {queue_b}, 3, held);
  CHECK(held[1].queue == queue_b);
  CHECK(held[2].queue == queue_b);
  // The four pushed and not handed out are ready again in RabbitMQ.
  REQUIRE(eventually([&] { return ready(queue_a) == 4; }));

  // Another consumer gets them, not counted as failed deliveries.
  auto other_opened = connect_broker(url, std::chrono::seconds{5});
  REQUIRE(other_opened);
  auto& other = **other_opened;
  std::vector<raw_delivery> theirs;
  fetch_n(other, {queue_a}, 4, theirs);
  std::set<int64_t> args;
  std::vector<std::string> their_tags;
  for (auto& raw : theirs) {
    CHECK(raw.queue == queue_a);
    CHECK(raw.failed_deliveries == 0);
    args.insert(test::arg_of(raw));
    their_tags.push_back(raw.tag);
  }
  CHECK(args == std::set<int64_t>{2, 3, 4, 5});
  REQUIRE_FALSE(other.ack(their_tags));
  // It stops consuming (every queue dropped), or it would take what follows.
  std::vector<raw_delivery> none;
  REQUIRE_FALSE(other.fetch({}, 0, none));
  CHECK(none.empty());

  // What was handed out before the cancel is acknowledged as usual.
  std::vector<std::string> tags;
  for (auto& raw : held)
    tags.push_back(raw.tag);
  REQUIRE_FALSE(b.ack(tags));
  auto unacked = b.unacked_count();
  REQUIRE(unacked);
  CHECK(*unacked == 0);

  // Listed again: consumed again (a new basic.consume).
  REQUIRE_FALSE(b.publish({test::make_task(queue_a, 20)}));
  std::vector<raw_delivery> again;
  fetch_n(b, {queue_b, queue_a}, 1, again);
  CHECK(again[0].queue == queue_a);
  CHECK(test::arg_of(again[0]) == 20);
  CHECK(again[0].failed_deliveries == 0);

  // Every queue dropped (an empty list, nothing to take): the pushed
  // message goes back too.
  REQUIRE_FALSE(b.publish({test::make_task(queue_a, 30)}));
  REQUIRE(eventually([&] { return ready(queue_a) == 0; }));
  REQUIRE_FALSE(b.fetch({}, 0, none));
  CHECK(none.empty());
  REQUIRE(eventually([&] { return ready(queue_a) == 1; }));
  REQUIRE_FALSE(b.ack({again[0].tag}));
  for (auto& q : {queue_a, queue_b})
    REQUIRE_FALSE(admin->delete_queue(q));
}
