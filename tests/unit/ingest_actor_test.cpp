// The ingest actor on CAF's deterministic scheduler: requests go in through
// the real endpoint and queue, the actor runs only when the test runs the
// scheduler, and time passes only when the test advances the clock. The
// store is a real SQLite database in a temporary directory; the broker, and
// in some cases the quota actor or the in-process quota store, are stubs
// the test steers. No sleeps: after `sched.run()` everything that can
// happen has happened, so what did not happen is known not to.

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/backends/broker.hpp"
#include "actors/backends/event_store.hpp"
#include "actors/backends/quota.hpp"
#include "actors/ingest.hpp"
#include "actors/quota.hpp"
#include "actors/tsdb.hpp"
#include "adapters/http.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/task_body.hpp"
#include "tests/unit/deterministic_config.hpp"
#include "tests/unit/ingest_test_support.hpp"
#include "web/ingest_endpoint.hpp"

using namespace vigil;
using namespace std::chrono_literals;

namespace {

namespace fs = std::filesystem;

using vigil::testing::key_limited;
using vigil::testing::key_open;
using vigil::testing::count_of;

// -- stubs --------------------------------------------------------------------

/// What the stub broker does and saw.
struct broker_control {
  /// The next `fail_publishes` publishes fail with `failure`.
  int fail_publishes = 0;
  errc failure = errc::connection_failed;
  int connects = 0;
  int publish_calls = 0;
  std::vector<outgoing_task> published;
  /// Called at each successful publish, before the tasks are kept.
  std::function<void()> on_publish;
};

/// A durable broker (Redis-like: a publish that returned is kept) that
/// keeps what it was given for the test to read.
class stub_broker final : public broker {
public:
  explicit stub_broker(std::shared_ptr<broker_control> ctl)
    : ctl_(std::move(ctl)) {
    // nop
  }

  std::string describe() const override {
    return "stub://broker";
  }

  caf::error publish(const std::vector<outgoing_task>& batch) override {
    ++ctl_->publish_calls;
    if (ctl_->fail_publishes > 0) {
      --ctl_->fail_publishes;
      return caf::make_error(ctl_->failure, "the stub broker refuses");
    }
    if (ctl_->on_publish)
      ctl_->on_publish();
    ctl_->published.insert(ctl_->published.end(), batch.begin(), batch.end());
    return {};
  }

  caf::error push_raw(std::string_view, std::string_view) override {
    return caf::make_error(errc::unsupported, "stub");
  }

  caf::error fetch(const std::vector<std::string>&, size_t,
                   std::vector<raw_delivery>&) override {
    return {};
  }

  caf::error ack(const std::vector<std::string>&) override {
    return {};
  }

  caf::error requeue(const std::vector<std::string>&) override {
    return {};
  }

  caf::expected<size_t>
  restore_expired(std::chrono::duration<double>) override {
    return size_t{0};
  }

  caf::error dead_letter_batch(const std::vector<dead_letter>&,
                               const std::vector<std::string>&) override {
    return {};
  }

  caf::expected<std::vector<dead_letter>> list_dead_letters() override {
    return std::vector<dead_letter>{};
  }

  caf::expected<size_t> replay_dead_letters(std::string_view) override {
    return size_t{0};
  }

  caf::expected<size_t> queue_length(std::string_view) override {
    return ctl_->published.size();
  }

  caf::expected<size_t> unacked_count() override {
    return size_t{0};
  }

private:
  std::shared_ptr<broker_control> ctl_;
};

/// How the test's event store opens.
struct store_control {
  /// Opening fails (the database is unreachable).
  bool open_fails = false;
  /// Opens read-only: reads work, the batch's transaction fails.
  bool read_only = false;
  int opens = 0;
};

/// An in-process quota store that is down.
class failing_quota_backend final : public quota_backend {
public:
  std::string describe() const override {
    return "stub quotas (down)";
  }

  caf::expected<std::vector<quota_decision>>
  check_batch(const std::vector<quota_check>&) override {
    return caf::make_error(errc::connection_failed, "the stub store is down");
  }

  caf::error refund(const quota_scoping&, const std::vector<quota_config>&,
                    int64_t) override {
    return caf::make_error(errc::connection_failed, "the stub store is down");
  }

  caf::expected<int64_t> get_usage(const quota_scoping&,
                                   const quota_config&) override {
    return caf::make_error(errc::connection_failed, "the stub store is down");
  }
};

/// A quota actor that holds every batch until the test releases it (a
/// slow store), then accepts or rejects all of it.
using stub_quota_actor
  = quota_actor::extend<caf::reacts_to<caf::ok_atom, bool>>;

struct stub_quota_state {
  static inline const char* name = "test.stub_quota";
  struct held {
    caf::typed_response_promise<std::vector<quota_decision>> rp;
    size_t n = 0;
  };
  std::vector<held> waiting;
  size_t requests = 0;
};

stub_quota_actor::behavior_type
stub_quota(stub_quota_actor::stateful_pointer<stub_quota_state> self) {
  return {
    [=](quota_check&) -> caf::result<quota_decision> {
      return quota_decision{};
    },
    [=](std::vector<quota_check>& cs)
      -> caf::result<std::vector<quota_decision>> {
      ++self->state.requests;
      auto rp = self->make_response_promise<std::vector<quota_decision>>();
      self->state.waiting.push_back({rp, cs.size()});
      return rp;
    },
    [=](refund_atom, const quota_scoping&, const std::vector<quota_config>&,
        int64_t) -> caf::result<bool> { return true; },
    [=](usage_atom, const quota_scoping&,
        const quota_config&) -> caf::result<quota_usage> {
      return quota_usage{};
    },
    [=](batch_atom) {
      // nop
    },
    [=](status_atom) -> caf::result<actor_status> { return actor_status{}; },
    // Answers every held batch: all accepted, or all rejected by key_quota.
    [=](caf::ok_atom, bool accept) {
      quota_decision d;
      if (!accept) {
        d.accepted = false;
        d.retry_after = 3600;
        d.reason_code = "key_quota";
      }
      for (auto& h : self->state.waiting)
        h.rp.deliver(std::vector<quota_decision>(h.n, d));
      self->state.waiting.clear();
    },
  };
}

// -- the fixture ----------------------------------------------------------------

std::atomic<int> fixture_count{0};

struct ingest_fixture : vigil::testing::deterministic_fixture {
  fs::path dir;
  std::string db_url;
  std::string name;
  std::shared_ptr<store_control> store_ctl
    = std::make_shared<store_control>();
  std::shared_ptr<broker_control> broker_ctl
    = std::make_shared<broker_control>();
  quota_catalog catalog;
  std::shared_ptr<ingest_queue> queue;
  std::unique_ptr<ingest_endpoint> endpoint;
  ingest_actor actor;
  caf::actor quotas; // the quota actor, real or stub, when one is spawned
  /// The HTTP answers, in the order they were given.
  std::vector<http_response> answers;

  ingest_fixture() {
    name = std::to_string(::getpid()) + "-" + std::to_string(++fixture_count);
    dir = vigil::testing::fresh_test_dir("vigil-ingest-actor-" + name);
    db_url = "sqlite://" + (dir / "vigil.db").string();
    // Project 2: 2 errors per hour.
    catalog = vigil::testing::two_project_catalog(2);
  }

  ~ingest_fixture() {
    if (actor)
      self->send_exit(actor, caf::exit_reason::user_shutdown);
    if (quotas)
      self->send_exit(quotas, caf::exit_reason::user_shutdown);
    sched.run();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  /// The actor's options, on a queue of `queue_size` jobs and `queue_bytes`
  /// bytes; no quotas chosen yet.
  ingest_options
  options(size_t queue_size = 100,
          size_t queue_bytes = ingest_queue::default_byte_capacity) {
    queue = std::make_shared<ingest_queue>(queue_size, queue_bytes);
    endpoint = std::make_unique<ingest_endpoint>(catalog, queue,
                                                 ingest_limits{});
    ingest_options o;
    o.queue = queue;
    o.task_queue = "events";
    o.open_store = [url = db_url, ctl = store_ctl]()
      -> caf::expected<std::unique_ptr<event_store>> {
      ++ctl->opens;
      if (ctl->open_fails)
        return caf::make_error(errc::connection_failed,
                               "the test's database is down");
      auto store = event_store::open(url);
      if (store && ctl->read_only)
        if (auto err = (*store)->db().exec_script("PRAGMA query_only = ON"))
          return err;
      return store;
    };
    o.open_broker = [ctl = broker_ctl]()
      -> caf::expected<std::unique_ptr<broker>> {
      ++ctl->connects;
      return std::unique_ptr<broker>{std::make_unique<stub_broker>(ctl)};
    };
    return o;
  }

  /// The real quota actor on an in-process store of its own.
  quota_actor real_quotas() {
    quota_actor_options qo;
    qo.backend.url = "memory://ingest-actor-test-" + name;
    auto q = sys.spawn(quota_service, qo);
    quotas = caf::actor_cast<caf::actor>(q);
    return q;
  }

  /// The stub that holds every batch until `release_quotas`.
  quota_actor slow_quotas() {
    auto q = sys.spawn(stub_quota);
    quotas = caf::actor_cast<caf::actor>(q);
    return q;
  }

  void release_quotas(bool accept = true) {
    self->send(caf::actor_cast<stub_quota_actor>(quotas), caf::ok_atom_v,
               accept);
  }

  void start(ingest_options o) {
    actor = sys.spawn(ingest_service, std::move(o));
    sched.run();
  }

  /// Posts an error event to /api/{project}/store/ of `ep`; its answer
  /// lands in `answers` when the pipeline gives it.
  void post_to(ingest_endpoint& ep, const std::string& event_id,
               uint64_t project, const std::string& message) {
    post_json_to(ep, {{"event_id", event_id}, {"message", message}}, project);
  }

  /// Posts the event document `ev` to /api/{project}/store/ of `ep`.
  void post_json_to(ingest_endpoint& ep, const nlohmann::json& ev,
                    uint64_t project) {
    http_request req;
    req.message.method(boost::beast::http::verb::post);
    req.message.target("/api/" + std::to_string(project) + "/store/");
    req.message.set("X-Sentry-Auth",
                    "Sentry sentry_version=7, sentry_key="
                      + (project == 2 ? key_limited : key_open));
    req.message.body() = dump_json(ev);
    req.remote_ip = "127.0.0.1";
    ep.handle(std::move(req), project, false, [this](http_response r) {
      answers.push_back(std::move(r));
    });
  }

  /// Posts to the pipeline's endpoint.
  void post(const std::string& event_id, uint64_t project = 1,
            const std::string& message = "boom") {
    post_to(*endpoint, event_id, project, message);
  }

  /// The actor's status figures, with its error count and last error.
  std::map<std::string, std::string> status() {
    self->send(actor, status_atom_v);
    sched.run();
    std::map<std::string, std::string> out;
    self->receive(
      [&](actor_status& st) {
        out = st.extra;
        out["errors"] = std::to_string(st.errors);
        out["last_error"] = st.last_error;
        out["processed"] = std::to_string(st.processed);
      },
      // The answer is in the mailbox once the scheduler is idle.
      caf::after(0s) >> [] { FAIL("the ingest actor did not answer"); });
    return out;
  }

  /// The stored event, or null when the store does not have it.
  nlohmann::json stored(uint64_t project, const std::string& id) {
    auto store = event_store::open(db_url);
    REQUIRE(store);
    auto text = (*store)->get_event(project, id);
    REQUIRE(text);
    if (!*text)
      return nullptr;
    return nlohmann::json::parse(**text);
  }
};

std::string header_of(const http_response& r, std::string_view name) {
  for (auto& [k, v] : r.headers)
    if (k == name)
      return v;
  return {};
}

std::string id(char c) {
  return std::string(32, c);
}

/// The kwargs of a published post_process task.
value_map kwargs_of(const outgoing_task& t) {
  auto body = decode_task_body(t.msg.body, t.msg.content_type);
  REQUIRE(body);
  return body->kwargs;
}

const value& kwarg(const value_map& kw, std::string_view key) {
  for (auto& [k, v] : kw)
    if (k == key)
      return v;
  FAIL("no kwarg " << key);
  static value none;
  return none;
}

} // namespace

TEST_CASE_METHOD(ingest_fixture,
                 "an accepted batch is decided, stored, published, then "
                 "answered", "[ingest][actor]") {
  auto o = options();
  o.quotas = real_quotas();
  start(std::move(o));
  // What the store and the answers looked like when the tasks went out.
  size_t answers_at_publish = 99;
  bool stored_at_publish = false;
  broker_ctl->on_publish = [&] {
    answers_at_publish = answers.size();
    stored_at_publish = stored(2, id('b')).is_object();
  };
  // Key limit 2 per hour: the third event of the batch is over it.
  post(id('a'), 2);
  post(id('b'), 2);
  post(id('c'), 2);
  // Nothing moves until the scheduler runs the actors.
  CHECK(answers.empty());
  sched.run();
  REQUIRE(answers.size() == 3);
  CHECK(answers[0].status == 200);
  CHECK(answers[0].body == R"({"id":")" + id('a') + R"("})");
  CHECK(answers[1].status == 200);
  CHECK(answers[2].status == 429);
  CHECK(header_of(answers[2], "X-Sentry-Rate-Limits")
          .find(":error:key:key_quota")
        != std::string::npos);
  // One publish for the batch, after its commit and before any answer.
  CHECK(broker_ctl->publish_calls == 1);
  CHECK(answers_at_publish == 0);
  CHECK(stored_at_publish);
  REQUIRE(broker_ctl->published.size() == 2);
  auto& first = broker_ctl->published[0];
  CHECK(first.queue == "events");
  CHECK(first.msg.task == "vigil.events.post_process");
  auto kw0 = kwargs_of(first);
  auto kw1 = kwargs_of(broker_ctl->published[1]);
  CHECK(kwarg(kw0, "event_id").as_text() == id('a'));
  CHECK(kwarg(kw0, "project_id").as_int() == 2);
  CHECK(kwarg(kw0, "is_new").as_bool());
  // Same message, same group: the second event joins the first's group.
  CHECK(kwarg(kw1, "event_id").as_text() == id('b'));
  CHECK(kwarg(kw1, "group_id").as_int() == kwarg(kw0, "group_id").as_int());
  CHECK_FALSE(kwarg(kw1, "is_new").as_bool());
  CHECK(stored(2, id('a')).is_object());
  CHECK(stored(2, id('c')).is_null());
  auto st = status();
  CHECK(st["batches"] == "1");
  CHECK(st["events_stored"] == "2");
  CHECK(st["items_rejected"] == "1");
  CHECK(st["accepted.error"] == "2");
  CHECK(st["rejected.error"] == "1");
  CHECK(st["unavailable"] == "0");
  CHECK(st["failed_open"] == "0");
  CHECK(st["errors"] == "0");
  CHECK(endpoint->figures().accepted == 2);
  CHECK(endpoint->figures().rate_limited == 1);
}

TEST_CASE_METHOD(ingest_fixture,
                 "a full queue answers 503 while the actor waits on quotas",
                 "[ingest][actor]") {
  SECTION("full by count") {
    auto o = options(2);
    o.quotas = slow_quotas();
    start(std::move(o));
    post(id('a'));
    sched.run(); // the actor took a; its quota request is out
    CHECK(queue->size() == 0);
    post(id('b'));
    post(id('c'));
    CHECK(queue->size() == 2);
    CHECK(answers.empty());
    post(id('d')); // refused at once, on the HTTP thread
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].status == 503);
    CHECK(answers[0].body.find("ingest.queue-size 2") != std::string::npos);
    CHECK(header_of(answers[0], "Retry-After") == "1");
    CHECK(endpoint->figures().queue_full == 1);
    // The quotas answer: a is answered, b and c go out as the next batch.
    release_quotas();
    sched.run();
    REQUIRE(answers.size() == 2);
    CHECK(answers[1].status == 200);
    CHECK(answers[1].body.find(id('a')) != std::string::npos);
    CHECK(queue->size() == 0);
    release_quotas();
    sched.run();
    REQUIRE(answers.size() == 4);
    CHECK(answers[2].status == 200);
    CHECK(answers[3].status == 200);
    CHECK(stored(1, id('c')).is_object());
    CHECK(stored(1, id('d')).is_null());
    // Room again.
    post(id('e'));
    sched.run();
    release_quotas();
    sched.run();
    REQUIRE(answers.size() == 5);
    CHECK(answers[4].status == 200);
    CHECK(broker_ctl->published.size() == 4);
  }
  SECTION("full by bytes") {
    std::string large(20000, 'x');
    // What one large request holds in a queue, measured on a queue of its
    // own (its job, dropped unanswered with it, answers 503 to no one).
    size_t large_bytes = 0;
    {
      auto measure = std::make_shared<ingest_queue>(10);
      ingest_endpoint ep{catalog, measure, ingest_limits{}};
      post_to(ep, id('m'), 1, large);
      large_bytes = measure->bytes();
    }
    answers.clear();
    REQUIRE(large_bytes > 20000);
    // Room for one large request and a small one, not for two large ones.
    auto cap = large_bytes + large_bytes / 2;
    auto o = options(100, cap);
    o.quotas = slow_quotas();
    start(std::move(o));
    post(id('a'), 1, large);
    sched.run(); // taken: the queue is empty again
    post(id('b'), 1, large);
    CHECK(queue->size() == 1);
    // (Not exactly large_bytes: the normalized event's timestamp varies.)
    CHECK(queue->bytes() > 20000);
    post(id('c'), 1, large);
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].status == 503);
    CHECK(answers[0].body.find("ingest.queue-bytes " + std::to_string(cap))
          != std::string::npos);
    post(id('d'), 1, "small");
    CHECK(queue->size() == 2);
    CHECK(answers.size() == 1);
    CHECK(endpoint->figures().queue_full == 1);
    release_quotas();
    sched.run();
    release_quotas();
    sched.run();
    REQUIRE(answers.size() == 4);
    for (size_t i = 1; i < 4; ++i)
      CHECK(answers[i].status == 200);
    CHECK(stored(1, id('b')).is_object());
    CHECK(stored(1, id('c')).is_null());
    CHECK(stored(1, id('d')).is_object());
  }
}

TEST_CASE_METHOD(ingest_fixture,
                 "a failing store answers 503 and publishes nothing",
                 "[ingest][actor]") {
  auto o = options();
  o.quotas = real_quotas();
  SECTION("the database cannot be opened") {
    store_ctl->open_fails = true;
    start(std::move(o));
    post(id('a'));
    sched.run();
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].status == 503);
    CHECK(answers[0].body.find("event store unavailable") != std::string::npos);
    CHECK(header_of(answers[0], "Retry-After") == "5");
    auto st = status();
    CHECK(st["unavailable"] == "1");
    CHECK(st["events_stored"] == "0");
    CHECK(st["last_error"].find("event store unavailable")
          != std::string::npos);
  }
  SECTION("the batch's transaction fails") {
    store_ctl->read_only = true;
    start(std::move(o));
    post(id('a'));
    post(id('b'));
    sched.run();
    REQUIRE(answers.size() == 2);
    CHECK(answers[0].status == 503);
    CHECK(answers[1].status == 503);
    CHECK(stored(1, id('a')).is_null());
    CHECK(stored(1, id('b')).is_null());
    auto st = status();
    CHECK(st["unavailable"] == "2");
    CHECK(st["last_error"].find("store:") != std::string::npos);
    CHECK(st["outbox_unpublished"] == "0");
  }
  CHECK(broker_ctl->published.empty());
  CHECK(broker_ctl->publish_calls == 0);
  // The store comes back: the next request is stored and published.
  store_ctl->open_fails = false;
  store_ctl->read_only = false;
  auto opens = store_ctl->opens;
  post(id('f'));
  sched.run();
  REQUIRE(answers.size() >= 2);
  CHECK(answers.back().status == 200);
  CHECK(store_ctl->opens > opens); // a failed store is opened anew
  CHECK(stored(1, id('f')).is_object());
  REQUIRE(broker_ctl->published.size() == 1);
  CHECK(kwarg(kwargs_of(broker_ctl->published[0]), "event_id").as_text()
        == id('f'));
}

TEST_CASE_METHOD(ingest_fixture,
                 "a failing publish answers 503 and the outbox publishes "
                 "the stored event's task later", "[ingest][actor]") {
  auto o = options();
  o.quotas = real_quotas();
  start(std::move(o));
  SECTION("the broker is down: one reconnect, then the outbox keeps it") {
    broker_ctl->fail_publishes = 2;
    auto connects = broker_ctl->connects;
    post(id('a'));
    sched.run();
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].status == 503);
    CHECK(answers[0].body.find("task broker unavailable") != std::string::npos);
    CHECK(broker_ctl->publish_calls == 2);
    CHECK(broker_ctl->connects == connects + 1);
  }
  SECTION("the broker is full: no reconnect, the outbox keeps it") {
    broker_ctl->fail_publishes = 1;
    broker_ctl->failure = errc::too_large;
    post(id('a'));
    sched.run();
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].status == 503);
    CHECK(answers[0].body.find("task queue is full") != std::string::npos);
    CHECK(broker_ctl->publish_calls == 1);
  }
  // The event was committed with its outbox row before the publish.
  CHECK(stored(1, id('a')).is_object());
  CHECK(broker_ctl->published.empty());
  auto st = status();
  CHECK(st["outbox_unpublished"] == "1");
  CHECK(st["unavailable"] == "1");
  CHECK(st["last_error"].find("publish:") != std::string::npos);
  // The broker takes tasks again; a second later the upkeep republishes.
  sched.run();
  CHECK(broker_ctl->published.empty()); // not before the second is up
  sched.clock().advance_time(1s);
  sched.run();
  REQUIRE(broker_ctl->published.size() == 1);
  auto kw = kwargs_of(broker_ctl->published[0]);
  CHECK(kwarg(kw, "event_id").as_text() == id('a'));
  CHECK(kwarg(kw, "is_new").as_bool());
  st = status();
  CHECK(st["outbox_unpublished"] == "0");
  // Durable broker: the row is settled and, the actor being idle, deleted.
  CHECK(st["outbox_deleted"] == "1");
  // The client's retry is a new request: stored once, a second task.
  post(id('a'));
  sched.run();
  REQUIRE(answers.size() == 2);
  CHECK(answers[1].status == 200);
  CHECK(broker_ctl->published.size() == 2);
}

TEST_CASE_METHOD(ingest_fixture,
                 "a quota actor that does not answer in time fails open or "
                 "closed as quotas.fail-open says", "[ingest][actor]") {
  auto o = options();
  o.quotas = slow_quotas();
  o.quota_timeout = 5s;
  bool fail_open = GENERATE(true, false);
  INFO("fail_open " << fail_open);
  o.fail_open = fail_open;
  start(std::move(o));
  post(id('a'));
  sched.run();
  CHECK(answers.empty()); // the quota request is out
  sched.clock().advance_time(4s);
  sched.run();
  CHECK(answers.empty()); // not timed out yet
  sched.clock().advance_time(1s);
  sched.run();
  REQUIRE(answers.size() == 1);
  auto st = status();
  CHECK(st["failed_open"] == "1");
  CHECK(st["last_error"].find("quota check failed: quota actor:")
        != std::string::npos);
  if (fail_open) {
    CHECK(answers[0].status == 200);
    CHECK(stored(1, id('a')).is_object());
    CHECK(broker_ctl->published.size() == 1);
    CHECK(st["accepted.error"] == "1");
  } else {
    CHECK(answers[0].status == 429);
    CHECK(header_of(answers[0], "Retry-After") == "60");
    CHECK(header_of(answers[0], "X-Sentry-Rate-Limits")
          == "60:error:key:quota_unavailable");
    CHECK(stored(1, id('a')).is_null());
    CHECK(broker_ctl->published.empty());
    CHECK(st["rejected.error"] == "1");
  }
  // The late answer finds no one waiting: nothing is answered twice.
  release_quotas(false);
  sched.run();
  CHECK(answers.size() == 1);
  // The next request goes to the quota actor again.
  post(id('b'));
  sched.run();
  release_quotas();
  sched.run();
  REQUIRE(answers.size() == 2);
  CHECK(answers[1].status == 200);
}

TEST_CASE_METHOD(ingest_fixture,
                 "a failing in-process quota store fails open or closed as "
                 "quotas.fail-open says", "[ingest][actor]") {
  auto o = options();
  o.open_local_quotas = [] {
    return std::unique_ptr<quota_backend>{
      std::make_unique<failing_quota_backend>()};
  };
  bool fail_open = GENERATE(true, false);
  INFO("fail_open " << fail_open);
  o.fail_open = fail_open;
  start(std::move(o));
  post(id('a'));
  post(id('b'));
  sched.run();
  REQUIRE(answers.size() == 2);
  for (auto& a : answers)
    CHECK(a.status == (fail_open ? 200 : 429));
  auto st = status();
  // The quota actor's rule, log line and figures (quota_unavailable_decisions).
  CHECK(st["failed_open"] == "2");
  CHECK(st["last_error"]
        == "quota check failed: quota store: the stub store is down");
  CHECK(broker_ctl->published.size() == (fail_open ? 2u : 0u));
}

// -- group counts through the write buffer, counts to the TSDB -----------------

namespace {

/// A buffer actor the test steers: requests are held until `release`
/// (answered true or false), or answered at once with `auto_answer`.
using stub_buffer_actor
  = buffer_actor::extend<caf::reacts_to<caf::ok_atom, bool>>;

/// What the stub buffer saw (shared with the test).
struct buffer_seen {
  std::vector<std::vector<buffer_incr>> requests;
};

struct stub_buffer_state {
  static inline const char* name = "test.stub_buffer";
  std::vector<caf::typed_response_promise<bool>> waiting;
};

stub_buffer_actor::behavior_type
stub_buffer(stub_buffer_actor::stateful_pointer<stub_buffer_state> self,
            std::shared_ptr<buffer_seen> seen) {
  return {
    [=](incr_atom, std::vector<buffer_incr>& xs) -> caf::result<bool> {
      seen->requests.push_back(std::move(xs));
      auto rp = self->make_response_promise<bool>();
      self->state.waiting.push_back(rp);
      return rp;
    },
    [=](incr_atom, buffer_batch& batch) -> caf::result<bool> {
      seen->requests.push_back(std::move(batch.rows));
      auto rp = self->make_response_promise<bool>();
      self->state.waiting.push_back(rp);
      return rp;
    },
    [=](incr_atom, buffer_incr&) {},
    [=](batch_atom) {},
    [=](poll_atom) {},
    [=](flush_atom) -> caf::result<bool> { return true; },
    [=](status_atom) -> caf::result<actor_status> { return actor_status{}; },
    [=](caf::ok_atom, bool held) {
      for (auto& rp : self->state.waiting)
        rp.deliver(held);
      self->state.waiting.clear();
    },
  };
}

/// What the stub TSDB was told (shared with the test).
struct tsdb_seen {
  std::vector<std::pair<std::vector<tsdb_incr>, std::vector<tsdb_record>>>
    told;
};

/// A TSDB actor that keeps what it was told.
tsdb_actor::behavior_type stub_tsdb(std::shared_ptr<tsdb_seen> seen) {
  return {
    [=](record_atom, std::vector<tsdb_incr>& incrs,
        std::vector<tsdb_record>& records) {
      seen->told.emplace_back(std::move(incrs), std::move(records));
    },
    [=](batch_atom) {},
    [=](tsdb_query&) -> caf::result<tsdb_answer> { return tsdb_answer{}; },
    [=](status_atom) -> caf::result<actor_status> { return actor_status{}; },
  };
}

struct counters_fixture : ingest_fixture {
  stub_buffer_actor buffer;
  tsdb_actor tsdb;

  ~counters_fixture() {
    if (buffer)
      self->send_exit(buffer, caf::exit_reason::user_shutdown);
    if (tsdb)
      self->send_exit(tsdb, caf::exit_reason::user_shutdown);
    sched.run();
  }

  std::shared_ptr<buffer_seen> buffer_saw = std::make_shared<buffer_seen>();
  std::shared_ptr<tsdb_seen> tsdb_saw = std::make_shared<tsdb_seen>();

  buffer_seen& buffer_state() {
    return *buffer_saw;
  }

  tsdb_seen& tsdb_state() {
    return *tsdb_saw;
  }

  /// Options with the stub buffer (group counts through it when
  /// `buffered`) and the stub TSDB.
  ingest_options counter_options(bool buffered) {
    auto o = options();
    o.quotas = real_quotas();
    buffer = sys.spawn(stub_buffer, buffer_saw);
    tsdb = sys.spawn(stub_tsdb, tsdb_saw);
    o.buffer = caf::actor_cast<buffer_actor>(buffer);
    o.buffer_group_counts = buffered;
    o.buffer_timeout = 5s;
    o.tsdb = tsdb;
    return o;
  }

  void release_buffer(bool held) {
    self->send(buffer, caf::ok_atom_v, held);
  }

  /// Posts an event document to /api/{project}/store/.
  void post_json(const nlohmann::json& ev, uint64_t project = 1) {
    post_json_to(*endpoint, ev, project);
  }

  std::optional<group_row> group_of(uint64_t project) {
    auto store = event_store::open(db_url);
    REQUIRE(store);
    auto groups = (*store)->list_groups(project);
    REQUIRE(groups);
    if (groups->empty())
      return std::nullopt;
    return groups->front();
  }
};

} // namespace

TEST_CASE_METHOD(counters_fixture,
                 "an existing group's counts go through the buffer, and the "
                 "answer waits for it", "[ingest][actor][buffer]") {
  start(counter_options(true));
  // A new group is inserted by the batch's transaction, counted there.
  post(id('a'));
  sched.run();
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].status == 200);
  CHECK(buffer_state().requests.empty());
  auto g = group_of(1);
  REQUIRE(g);
  CHECK(g->times_seen == 1);
  // Two more of it: one increment of times_seen 2, and no answer before the
  // buffer holds it; the row is not written by the batch.
  post(id('b'));
  post(id('c'));
  sched.run();
  CHECK(answers.size() == 1);
  REQUIRE(buffer_state().requests.size() == 1);
  auto& incrs = buffer_state().requests[0];
  REQUIRE(incrs.size() == 1);
  CHECK(incrs[0].model == "sentry.group");
  CHECK(incrs[0].columns == std::map<std::string, int64_t>{{"times_seen", 2}});
  CHECK(incrs[0].filters.at("id") == buffer_value::of(g->id));
  REQUIRE(incrs[0].extra.count("last_seen") == 1);
  CHECK(incrs[0].extra.at("last_seen").type == "dt");
  CHECK(group_of(1)->times_seen == 1);
  // The stored events' tasks went out before the answer waits.
  CHECK(broker_ctl->published.size() == 3);
  // Meanwhile the next batch goes on: a new group, answered at once.
  post(id('d'), 1, "other");
  sched.run();
  REQUIRE(answers.size() == 2);
  CHECK(answers[1].body.find(id('d')) != std::string::npos);
  release_buffer(true);
  sched.run();
  REQUIRE(answers.size() == 4);
  CHECK(answers[2].status == 200);
  CHECK(answers[3].status == 200);
  // A retry of a stored event counts nothing: no increment, answered.
  post(id('b'));
  sched.run();
  REQUIRE(answers.size() == 5);
  CHECK(answers[4].status == 200);
  CHECK(buffer_state().requests.size() == 1);
  auto st = status();
  CHECK(st["group_counts"] == "buffer");
  CHECK(st["buffer_incrs"] == "1");
  CHECK(st["buffer_unconfirmed"] == "0");
  CHECK(st["errors"] == "0");
}

TEST_CASE_METHOD(counters_fixture,
                 "a buffer that refuses or does not answer still gets the "
                 "batch answered 200", "[ingest][actor][buffer]") {
  start(counter_options(true));
  post(id('a'));
  sched.run();
  REQUIRE(answers.size() == 1);
  SECTION("refused") {
    post(id('b'));
    sched.run();
    CHECK(answers.size() == 1);
    release_buffer(false);
    sched.run();
  }
  SECTION("timed out") {
    post(id('b'));
    sched.run();
    sched.clock().advance_time(4s);
    sched.run();
    CHECK(answers.size() == 1); // not timed out yet
    sched.clock().advance_time(1s);
    sched.run();
  }
  REQUIRE(answers.size() == 2);
  CHECK(answers[1].status == 200);
  CHECK(stored(1, id('b')).is_object());
  auto st = status();
  CHECK(st["buffer_unconfirmed"] == "1");
  CHECK(st["last_error"].find("buffer:") != std::string::npos);
  // A late answer finds no one waiting: nothing is answered twice.
  release_buffer(true);
  sched.run();
  CHECK(answers.size() == 2);
}

TEST_CASE_METHOD(counters_fixture,
                 "with buffer.ingest-counters transaction the batch counts "
                 "its groups itself", "[ingest][actor][buffer]") {
  start(counter_options(false));
  post(id('a'));
  post(id('b'));
  sched.run();
  post(id('c'));
  sched.run();
  REQUIRE(answers.size() == 3);
  CHECK(buffer_state().requests.empty());
  CHECK(group_of(1)->times_seen == 3);
  CHECK(status()["group_counts"] == "transaction");
}

TEST_CASE_METHOD(counters_fixture,
                 "each batch tells the TSDB its counts and users",
                 "[ingest][actor][tsdb]") {
  start(counter_options(true));
  auto before = now_unix_us() / 1000000;
  // Project 2 (organization 1, key 3) takes 2 errors an hour.
  post_json({{"event_id", id('a')}, {"message", "boom"},
             {"user", {{"id", 42}, {"email", "a@example.com"}}}},
            2);
  post_json({{"event_id", id('b')}, {"message", "boom"},
             {"user", {{"email", "b@example.com"}}}},
            2);
  post_json({{"event_id", id('c')}, {"message", "boom"}}, 2);
  sched.run();
  auto after = now_unix_us() / 1000000;
  REQUIRE(answers.size() == 3);
  CHECK(answers[2].status == 429);
  REQUIRE(tsdb_state().told.size() == 1);
  auto& [incrs, records] = tsdb_state().told[0];
  for (auto& x : incrs) {
    CHECK(x.timestamp >= before);
    CHECK(x.timestamp <= after);
    CHECK(!x.environment_id);
  }
  auto group = group_of(2);
  REQUIRE(group);
  using m = tsdb_model;
  CHECK(count_of(incrs, m::project, tsdb_key::of(2)) == 2);
  CHECK(count_of(incrs, m::group, tsdb_key::of(group->id)) == 2);
  // Received counts every outcome; rejected is the part a quota refused.
  CHECK(count_of(incrs, m::project_total_received, tsdb_key::of(2)) == 3);
  CHECK(count_of(incrs, m::project_total_rejected, tsdb_key::of(2)) == 1);
  CHECK(count_of(incrs, m::organization_total_received, tsdb_key::of(1)) == 3);
  CHECK(count_of(incrs, m::organization_total_rejected, tsdb_key::of(1)) == 1);
  CHECK(count_of(incrs, m::key_total_received, tsdb_key::of(3)) == 3);
  CHECK(count_of(incrs, m::key_total_rejected, tsdb_key::of(3)) == 1);
  CHECK(count_of(incrs, m::project_total_blacklisted, tsdb_key::of(2)) == 0);
  CHECK(count_of(incrs, m::organization_outcomes,
                 tsdb_key::of(std::string{"1:error:accepted"}))
        == 2);
  CHECK(count_of(incrs, m::organization_outcomes,
                 tsdb_key::of(std::string{"1:error:rate_limited"}))
        == 1);
  std::map<int, std::vector<std::string>> users;
  for (auto& r : records) {
    if (r.model == m::users_affected_by_group)
      CHECK(r.key.id == group->id);
    else
      CHECK(r.key.id == 2);
    users[static_cast<int>(r.model)] = r.values;
  }
  std::vector<std::string> want{"id:42", "email:b@example.com"};
  CHECK(users[static_cast<int>(m::users_affected_by_group)] == want);
  CHECK(users[static_cast<int>(m::users_affected_by_project)] == want);
  // A retry of a stored event was counted when it was first stored.
  post_json({{"event_id", id('a')}, {"message", "boom"}}, 1);
  post_json({{"event_id", id('a')}, {"message", "boom"}}, 1);
  sched.run();
  REQUIRE(tsdb_state().told.size() == 2);
  auto& [incrs2, records2] = tsdb_state().told[1];
  CHECK(count_of(incrs2, m::project, tsdb_key::of(1)) == 1);
  CHECK(count_of(incrs2, m::project_total_received, tsdb_key::of(1)) == 1);
  CHECK(records2.empty());
  CHECK(status()["tsdb_batches"] == "2");
}
