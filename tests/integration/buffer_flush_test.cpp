// The write buffer end to end below the node: the buffer actor sums
// increments and acknowledges once its store holds them; the flush hands
// pending rows out in batches (process_pending) and applies each row once
// (process_incr), also when the database fails in between.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/buffer.hpp"
#include "actors/buffer_flush.hpp"
#include "actors/tsdb.hpp"
#include "messages/clock.hpp"
#include "node/actor_system.hpp"
#include "tests/integration/buffer_test_support.hpp"

using namespace vigil;
using namespace vigil::testing;
using namespace std::chrono_literals;

namespace {

// The bound only keeps a broken actor from hanging the run.
bool ask_incr(caf::scoped_actor& self, const buffer_actor& b,
              std::vector<buffer_incr> xs) {
  bool out = false;
  self->request(b, 10s, incr_atom_v, std::move(xs))
    .receive([&](bool ok) { out = ok; },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  return out;
}

bool ask_flush(caf::scoped_actor& self, const buffer_actor& b) {
  bool out = false;
  self->request(b, 10s, flush_atom_v)
    .receive([&](bool ok) { out = ok; },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  return out;
}

std::string figure(caf::scoped_actor& self, const buffer_actor& b,
                   const std::string& name) {
  std::string out;
  self->request(b, 10s, status_atom_v)
    .receive([&](const actor_status& st) { out = st.extra.at(name); },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  return out;
}

int64_t buffered_times_seen(buffer_backend& store, int64_t group) {
  auto got = store.get("sentry.group", {"times_seen"},
                       {{"id", buffer_value::of(group)}});
  REQUIRE(got);
  return (*got)["times_seen"];
}

buffer_flush_options flush_options(const buffer_backend_options& store,
                                   const std::string& db_url) {
  buffer_flush_options o;
  o.store = store;
  o.db_url = db_url;
  o.broker_url = "memory://buffer-flush-test";
  o.incr_batch_size = 2;
  return o;
}

} // namespace

TEST_CASE("the buffer actor sums a row's increments and answers once stored",
          "[buffer][actor]") {
  actor_system_config_ext cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  for (const auto& o : backends()) {
    INFO(o.backend);
    buffer_service_options opts;
    opts.store = o;
    opts.local_flush = 50ms;
    auto b = sys.spawn<caf::detached>(buffer_service, opts);
    auto store = open_buffer(o);
    // Three increments of one row and one of another, in one request.
    CHECK(ask_incr(self, b, {seen(1, 1, 1000000), seen(1, 2, 3000000),
                             seen(2, 5, 2000000), seen(1, 4, 2000000)}));
    // Answered: the store holds them, summed.
    CHECK(buffered_times_seen(*store, 1) == 7);
    CHECK(buffered_times_seen(*store, 2) == 5);
    CHECK(figure(self, b, "rows_written") == "2");
    // Told one by one: held and summed, written by the window or a flush.
    for (int i = 0; i < 1000; ++i)
      self->send(b, incr_atom_v, seen(3, 1, 1000000));
    CHECK(ask_flush(self, b));
    CHECK(buffered_times_seen(*store, 3) == 1000);
    CHECK(figure(self, b, "held_rows") == "0");
    self->send_exit(b, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("the buffer actor takes increments summed per row by the sender",
          "[buffer][actor]") {
  actor_system_config_ext cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  for (const auto& o : backends()) {
    INFO(o.backend);
    buffer_service_options opts;
    opts.store = o;
    auto b = sys.spawn<caf::detached>(buffer_service, opts);
    auto store = open_buffer(o);
    buffer_batch batch;
    auto one = batch.row("sentry.group", {{"id", buffer_value::of(11)}});
    auto two = batch.row("sentry.group", {{"id", buffer_value::of(12)}});
    CHECK(batch.row("sentry.group", {{"id", buffer_value::of(11)}}) == one);
    for (int i = 0; i < 500; ++i)
      batch.count(one, "times_seen");
    batch.count(two, "times_seen", 7);
    batch.set(one, "last_seen", buffer_value::of_datetime(2000000));
    batch.add(seen(12, 3, 1000000));
    CHECK(batch.rows.size() == 2);
    CHECK(batch.increments == 502);
    bool ok = false;
    self->request(b, 10s, incr_atom_v, std::move(batch))
      .receive([&](bool x) { ok = x; },
               [&](caf::error& err) { FAIL(caf::to_string(err)); });
    CHECK(ok);
    CHECK(buffered_times_seen(*store, 11) == 500);
    CHECK(buffered_times_seen(*store, 12) == 10);
    CHECK(figure(self, b, "increments") == "502");
    // The per-increment way in still sums into the same rows.
    CHECK(ask_incr(self, b, {seen(11, 1, 3000000)}));
    CHECK(buffered_times_seen(*store, 11) == 501);
    self->send_exit(b, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("the buffer actor holds what its store refuses and writes it later",
          "[buffer][actor]") {
  actor_system_config_ext cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  buffer_service_options opts;
  // Nothing listens on port 1: every write fails at once.
  opts.store.backend = "redis";
  opts.store.url = "redis://127.0.0.1:1/0";
  opts.store.timeout = 200ms;
  opts.local_flush = 10ms;
  opts.max_held_rows = 2;
  auto b = sys.spawn<caf::detached>(buffer_service, opts);
  CHECK_FALSE(ask_incr(self, b, {seen(1, 1, 0), seen(1, 1, 0)}));
  CHECK(figure(self, b, "held_rows") == "1");
  // The bound on rows held: a third row is refused, a known one is summed.
  CHECK_FALSE(ask_incr(self, b, {seen(2, 1, 0)}));
  CHECK_FALSE(ask_incr(self, b, {seen(3, 1, 0)}));
  CHECK(figure(self, b, "refused") == "1");
  CHECK_FALSE(ask_incr(self, b, {seen(1, 1, 0)}));
  CHECK(figure(self, b, "held_rows") == "2");
  CHECK_FALSE(ask_flush(self, b));
  self->send_exit(b, caf::exit_reason::user_shutdown);
}

TEST_CASE("the flush hands pending rows out in batches and applies each once",
          "[buffer][flush]") {
  for (const auto& url : buffer_db_urls()) {
    for (const auto& o : backends()) {
      INFO(url.substr(0, url.find(':')) << " / " << o.backend);
      auto f = buffer_flusher::open(flush_options(o, url));
      REQUIRE(f);
      auto& flusher = **f;
      std::vector<int64_t> groups;
      for (int i = 0; i < 5; ++i)
        groups.push_back(add_group(flusher.db(), o.backend + std::to_string(i)));
      std::vector<buffer_incr> batch;
      for (size_t i = 0; i < groups.size(); ++i)
        batch.push_back(seen(groups[i], static_cast<int64_t>(i + 1),
                             20000000));
      REQUIRE_FALSE(flusher.store().incr(batch, 100));
      // process_pending: five rows in batches of incr-batch-size 2.
      bool locked_out = true;
      auto batches = flusher.pending_batches(0, locked_out);
      REQUIRE(batches);
      CHECK_FALSE(locked_out);
      REQUIRE(batches->size() == 3);
      CHECK((*batches)[0].size() == 2);
      CHECK((*batches)[2].size() == 1);
      // process_incr for each batch; the first batch twice (a duplicate
      // task from the next process_pending): the row is gone, nothing
      // counts twice.
      for (const auto& keys : *batches)
        REQUIRE(flusher.apply_rows(keys));
      auto again = flusher.apply_rows((*batches)[0]);
      REQUIRE(again);
      CHECK(again->rows == 0);
      for (size_t i = 0; i < groups.size(); ++i)
        CHECK(counts_of(flusher.db(), groups[i])
              == std::pair<int64_t, double>{static_cast<int64_t>(i + 2),
                                            20.0});
      auto left = flusher.store().pending(0, 100);
      REQUIRE(left);
      CHECK(left->empty());
    }
  }
}

TEST_CASE("a flush whose database fails leaves the sums for its retry",
          "[buffer][flush]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    auto url = buffer_db_urls().front(); // SQLite
    auto f = buffer_flusher::open(flush_options(o, url));
    REQUIRE(f);
    auto& flusher = **f;
    auto g = add_group(flusher.db(), o.backend);
    REQUIRE_FALSE(flusher.store().incr({seen(g, 10, 0)}, 100));
    auto key = seen(g, 1, 0).row_key();
    // The database refuses writes: the apply fails after the take.
    REQUIRE_FALSE(flusher.db().exec_script("PRAGMA query_only = ON"));
    CHECK_FALSE(flusher.apply_rows({key}));
    // More increments arrive meanwhile.
    REQUIRE_FALSE(flusher.store().incr({seen(g, 5, 0)}, 101));
    REQUIRE_FALSE(flusher.db().exec_script("PRAGMA query_only = OFF"));
    // The retry applies the failed take and the new increments, once.
    auto r = flusher.apply_rows({key});
    REQUIRE(r);
    CHECK(r->rows == 2);
    CHECK(counts_of(flusher.db(), g).first == 16);
    CHECK(flusher.apply_rows({key})->rows == 0);
    auto all = flusher.flush_all();
    REQUIRE(all);
    CHECK(all->rows == 0);
    CHECK(counts_of(flusher.db(), g).first == 16);
  }
}

TEST_CASE("flush_all applies everything pending and every unfinished take",
          "[buffer][flush]") {
  for (const auto& o : backends(3)) {
    INFO(o.backend);
    auto url = buffer_db_urls().front();
    auto f = buffer_flusher::open(flush_options(o, url));
    REQUIRE(f);
    auto& flusher = **f;
    auto groups = pending_groups(flusher.db(), flusher.store(), o.backend, 20,
                                 3);
    // A take whose flush died before applying it.
    auto dead = flusher.store().take(seen(groups[0], 1, 0).row_key(), 100);
    REQUIRE(dead);
    REQUIRE(*dead);
    auto all = flusher.flush_all();
    REQUIRE(all);
    CHECK(all->rows == 20);
    for (auto g : groups)
      CHECK(counts_of(flusher.db(), g).first == 4);
  }
}

TEST_CASE("flush_pending applies what is pending under the same locks",
          "[buffer][flush]") {
  for (const auto& o : backends(2)) {
    INFO(o.backend);
    auto url = buffer_db_urls().front();
    auto f = buffer_flusher::open(flush_options(o, url));
    REQUIRE(f);
    auto& flusher = **f;
    auto groups = pending_groups(flusher.db(), flusher.store(),
                                 "fp" + o.backend, 30, 5);
    // Another holder has one row's lock: that row waits for the next flush.
    auto held = buffer_lock_key(seen(groups[0], 1, 0).row_key());
    REQUIRE(*flusher.store().try_lock(held, "someone-else", 10s));
    auto r = flusher.flush_pending(8, 1000ms);
    REQUIRE(r);
    CHECK(r->rows == 29);
    CHECK(r->skipped >= 1);
    CHECK(r->increments == 29 * 5);
    // A new group counts its first event: 1.
    CHECK(counts_of(flusher.db(), groups[0]).first == 1);
    for (size_t i = 1; i < groups.size(); ++i)
      CHECK(counts_of(flusher.db(), groups[i]).first == 6);
    size_t pending = 0;
    for (int p = 0; p < 2; ++p)
      pending += *flusher.store().pending_count(p);
    CHECK(pending == 1);
    REQUIRE_FALSE(flusher.store().unlock(held, "someone-else"));
    r = flusher.flush_pending(8, 1000ms);
    REQUIRE(r);
    CHECK(r->rows == 1);
    CHECK(counts_of(flusher.db(), groups[0]).first == 6);
  }
}

TEST_CASE("the tsdb actor writes counts in batches and answers queries",
          "[tsdb][actor]") {
  actor_system_config_ext cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  tsdb_backend_options o;
  o.backend = "memory";
  o.url = "memory://tsdb-actor-test";
  auto t = sys.spawn<caf::detached>(tsdb_service, o);
  auto now = now_unix_us() / 1000000;
  std::vector<tsdb_incr> incrs;
  for (int i = 0; i < 10; ++i)
    incrs.push_back({tsdb_model::group, tsdb_key::of(int64_t{7}), now, 1, {}});
  std::vector<tsdb_record> users{{tsdb_model::users_affected_by_group,
                                  tsdb_key::of(int64_t{7}),
                                  {"alice", "bob", "alice"}, now, {}}};
  self->send(t, record_atom_v, incrs, users);
  // A query sees every count sent before it.
  tsdb_query q;
  q.model = tsdb_model::group;
  q.keys = {tsdb_key::of(int64_t{7})};
  q.range = {now - 60, now, 10, std::nullopt};
  self->request(t, 10s, q).receive(
    [&](const tsdb_answer& a) {
      REQUIRE(a.series.size() == 1);
      CHECK(tsdb_sums(a.series).front() == 10);
    },
    [&](caf::error& err) { FAIL(caf::to_string(err)); });
  q.kind = tsdb_query_kind::distinct_totals;
  q.model = tsdb_model::users_affected_by_group;
  self->request(t, 10s, q).receive(
    [&](const tsdb_answer& a) { CHECK(a.totals == std::vector<int64_t>{2}); },
    [&](caf::error& err) { FAIL(caf::to_string(err)); });
  self->send_exit(t, caf::exit_reason::user_shutdown);
}
