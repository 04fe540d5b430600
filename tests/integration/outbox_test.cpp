// The task outbox between the event store and the broker
// (actors/ingest_outbox.cpp): on the memory:// broker a row lives until its
// tasks are acknowledged; a new run republishes what the last one left.

#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

#include "actors/backends/broker.hpp"
#include "actors/backends/event_store.hpp"
#include "actors/ingest_outbox.hpp"
#include "messages/errors.hpp"

using namespace vigil;

namespace {

std::string outbox_db() {
  static int n = 0;
  auto dir = std::filesystem::path{"/tmp"}
             / ("vigil-outbox-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return "sqlite://" + (dir / ("o" + std::to_string(++n) + ".db")).string();
}

stored_event event_of(std::string id, bool transaction = false) {
  stored_event ev;
  ev.event_id = std::move(id);
  ev.project_id = 1;
  ev.grouping_hash = "h";
  ev.title = "t";
  ev.culprit = "c";
  ev.timestamp = 1;
  ev.json = "{}";
  ev.transaction = transaction;
  return ev;
}

/// One ingest batch as the actor runs it: store with the outbox, publish.
int64_t run_batch(task_outbox& box, event_store& store, broker& conn,
                  const std::vector<stored_event>& events) {
  box.drain();
  REQUIRE_FALSE(box.bound_recovery(store));
  auto w = box.prepare(events);
  auto out = store.store_batch(events, &w);
  REQUIRE(out);
  auto tasks = box.committed(w);
  auto err = conn.publish(tasks);
  box.published(w.written, std::move(tasks), err, conn.durable());
  return w.written;
}

size_t outbox_size(event_store& store) {
  return store.outbox_rows(0, int64_t{1} << 60, 1000).value().size();
}

/// Takes and acknowledges everything waiting on "celery"; returns the
/// post_process tasks' event ids.
std::vector<std::string> consume(broker& conn) {
  std::vector<raw_delivery> got;
  REQUIRE_FALSE(conn.fetch({"celery"}, 1000, got));
  std::vector<std::string> tags;
  std::vector<std::string> ids;
  for (auto& d : got) {
    auto msg = conn.decode(d);
    REQUIRE(msg);
    ids.push_back(msg->msg.kwargsrepr);
    tags.push_back(d.tag);
  }
  REQUIRE_FALSE(conn.ack(tags));
  return ids;
}

} // namespace

TEST_CASE("memory://: an outbox row lives until its tasks are acknowledged",
          "[outbox]") {
  auto url = outbox_db();
  auto store = event_store::open(url);
  REQUIRE(store);
  auto conn = make_memory_broker("memory://outbox-ack");
  REQUIRE(conn);
  REQUIRE_FALSE((*conn)->durable());
  task_outbox box{"celery"};
  box.watch(**conn, nullptr);
  auto row = run_batch(box, **store, **conn,
                       {event_of("a1"), event_of("tx", true), event_of("a2")});
  REQUIRE(row > 0);
  CHECK(box.tracked_rows() == 1);
  // Published, not yet run: the row stays (a kill now would lose the
  // tasks with the process's queues).
  CHECK(outbox_size(**store) == 1);
  auto ran = consume(**conn);
  // The transaction queued no task.
  REQUIRE(ran.size() == 2);
  CHECK(ran[0].find("'a1'") != std::string::npos);
  CHECK(ran[0].find("'is_new': True") != std::string::npos);
  // Acknowledged: the next batch's transaction deletes the row.
  run_batch(box, **store, **conn, {event_of("a3")});
  CHECK(box.tracked_rows() == 1);
  auto left = (*store)->outbox_rows(0, int64_t{1} << 60, 10).value();
  REQUIRE(left.size() == 1);
  CHECK(left[0].id > row);
  consume(**conn);
  box.drain();
  CHECK_FALSE(box.flush(**store));
  CHECK(outbox_size(**store) == 0);
  CHECK(box.deleted_rows() == 2);
}

TEST_CASE("a new run republishes the rows the last one left",
          "[outbox]") {
  auto url = outbox_db();
  {
    // The first run: stored and published, then "killed" before any task
    // ran (its memory queues are gone with it).
    auto store = event_store::open(url);
    REQUIRE(store);
    auto conn = make_memory_broker("memory://outbox-run1");
    REQUIRE(conn);
    task_outbox box{"celery"};
    box.watch(**conn, nullptr);
    run_batch(box, **store, **conn, {event_of("k1"), event_of("k2")});
    run_batch(box, **store, **conn, {event_of("k3")});
    CHECK(outbox_size(**store) == 2);
  }
  auto store = event_store::open(url);
  REQUIRE(store);
  auto conn = make_memory_broker("memory://outbox-run2");
  REQUIRE(conn);
  task_outbox box{"celery"};
  box.watch(**conn, nullptr);
  CHECK_FALSE(box.recovered());
  // The new run's first batch comes before the recovery: its row is not
  // taken for one of the last run's.
  run_batch(box, **store, **conn, {event_of("n1")});
  auto publish = [&](const std::vector<outgoing_task>& tasks) {
    return (*conn)->publish(tasks);
  };
  REQUIRE_FALSE(box.catch_up(**store, publish, false));
  CHECK(box.recovered());
  CHECK(box.recovered_tasks() == 3);
  auto ran = consume(**conn);
  CHECK(ran.size() == 4); // n1 once, k1..k3 republished
  box.drain();
  CHECK_FALSE(box.flush(**store));
  CHECK(outbox_size(**store) == 0);
}

TEST_CASE("a failed publish keeps the row for the upkeep", "[outbox]") {
  auto url = outbox_db();
  auto store = event_store::open(url);
  REQUIRE(store);
  // Room for one task: the batch of two does not fit.
  auto conn = make_memory_broker("memory://outbox-full?max-messages=1");
  REQUIRE(conn);
  task_outbox box{"celery"};
  box.watch(**conn, nullptr);
  run_batch(box, **store, **conn, {event_of("f1"), event_of("f2")});
  CHECK(box.unpublished() == 1);
  auto publish = [&](const std::vector<outgoing_task>& tasks) {
    return (*conn)->publish(tasks);
  };
  CHECK(box.catch_up(**store, publish, false) == errc::too_large);
  CHECK(outbox_size(**store) == 1);
  // A roomier broker on the same store (a restart with a bigger queue).
  auto roomy = make_memory_broker("memory://outbox-roomy");
  REQUIRE(roomy);
  box.watch(**roomy, nullptr); // already watching: no second listener
  auto publish2 = [&](const std::vector<outgoing_task>& tasks) {
    return (*roomy)->publish(tasks);
  };
  REQUIRE_FALSE(box.catch_up(**store, publish2, true));
  CHECK(box.unpublished() == 0);
  CHECK_FALSE(box.flush(**store));
  CHECK(outbox_size(**store) == 0);
}
