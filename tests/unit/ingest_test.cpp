// The ingest pipeline's pure parts: the bounded hand-over queue, how a
// pipeline answer becomes an HTTP response, the post_process task, and the
// bind address parser; then the endpoint and the actor together on real
// threads (tests/unit/ingest_actor_test.cpp drives the actor alone on the
// deterministic scheduler).

#include <filesystem>
#include <future>
#include <limits>
#include <map>

#include <unistd.h>

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/backends/broker.hpp"
#include "actors/backends/event_store.hpp"
#include "actors/backends/quota.hpp"
#include "actors/ingest.hpp"
#include "messages/post_process_task.hpp"
#include "adapters/http.hpp"
#include "messages/errors.hpp"
#include "messages/sentry_envelope.hpp"
#include "messages/task_body.hpp"
#include "node/actor_system.hpp"
#include "tests/unit/ingest_test_support.hpp"
#include "web/ingest_endpoint.hpp"

using namespace vigil;

namespace {

ingest_job job_with_id(std::string id) {
  ingest_job job;
  job.event_id = std::move(id);
  job.done = [](ingest_result) {};
  return job;
}

std::string header_of(const http_response& r, std::string_view name) {
  for (auto& [k, v] : r.headers)
    if (k == name)
      return v;
  return {};
}

} // namespace

TEST_CASE("the ingest queue is bounded and hands out jobs in order",
          "[ingest]") {
  ingest_queue q{3};
  CHECK(q.push(job_with_id("a")));
  CHECK(q.push(job_with_id("b")));
  CHECK(q.push(job_with_id("c")));
  CHECK_FALSE(q.push(job_with_id("d"))); // full: the endpoint answers 503
  CHECK(q.size() == 3);
  auto first = q.take(2);
  REQUIRE(first.size() == 2);
  CHECK(first[0].event_id == "a");
  CHECK(first[1].event_id == "b");
  CHECK(q.push(job_with_id("e")));
  auto rest = q.take(10);
  REQUIRE(rest.size() == 2);
  CHECK(rest[0].event_id == "c");
  CHECK(rest[1].event_id == "e");
  CHECK(q.take(10).empty());
}

TEST_CASE("the ingest queue is bounded by bytes as well", "[ingest]") {
  auto sized = [](std::string id, size_t payload) {
    auto job = job_with_id(std::move(id));
    ingest_item item;
    item.category = "error";
    item.encoded.assign(payload, 'x');
    job.items.push_back(std::move(item));
    return job;
  };
  auto one = job_bytes(sized("a", 4000));
  ingest_queue q{100, 2 * one + one / 2};
  CHECK(q.push(sized("a", 4000)));
  CHECK(q.push(sized("b", 4000)));
  CHECK(q.bytes() == 2 * one);
  CHECK_FALSE(q.push(sized("c", 4000))); // over the bytes: 503
  CHECK(q.size() == 2);
  CHECK(q.take(1).size() == 1);
  CHECK(q.bytes() == one);
  CHECK(q.push(sized("c", 4000)));
  q.take(10);
  CHECK(q.bytes() == 0);
  // One job larger than the whole bound still enters an empty queue.
  CHECK(q.push(sized("huge", 20000)));
  CHECK_FALSE(q.push(sized("d", 10)));
}

TEST_CASE("an ingest reply answers exactly once, 503 when dropped",
          "[ingest]") {
  std::vector<ingest_result> got;
  {
    ingest_reply reply{[&](ingest_result r) { got.push_back(r); }};
    reply(ingest_result{ingest_result::outcome::accepted, "e1", 0, {}, {}});
    reply(ingest_result{ingest_result::outcome::accepted, "e2", 0, {}, {}});
  }
  REQUIRE(got.size() == 1);
  CHECK(got[0].event_id == "e1");
  got.clear();
  {
    // A job lost with a restarted pipeline still answers its client.
    ingest_reply reply{[&](ingest_result r) { got.push_back(r); }};
    ingest_reply moved = std::move(reply);
  }
  REQUIRE(got.size() == 1);
  CHECK(got[0].status == ingest_result::outcome::unavailable);
  got.clear();
  {
    ingest_reply reply{[&](ingest_result r) { got.push_back(r); }};
    reply.cancel();
  }
  CHECK(got.empty());
}

TEST_CASE("pipeline answers become Sentry's HTTP answers", "[ingest]") {
  SECTION("accepted: 200 with the id") {
    ingest_result res;
    res.event_id = "0123456789abcdef0123456789abcdef";
    auto r = to_http_response(res);
    CHECK(r.status == 200);
    CHECK(r.body == R"({"id":"0123456789abcdef0123456789abcdef"})");
    CHECK(header_of(r, "X-Sentry-Rate-Limits").empty());
  }
  SECTION("rate limited: 429, Retry-After and X-Sentry-Rate-Limits") {
    ingest_result res;
    res.status = ingest_result::outcome::rate_limited;
    res.retry_after = 1800;
    res.limits.push_back({1800, {"error"}, "key", "key_quota"});
    auto r = to_http_response(res);
    CHECK(r.status == 429);
    CHECK(header_of(r, "Retry-After") == "1800");
    CHECK(header_of(r, "X-Sentry-Rate-Limits") == "1800:error:key:key_quota");
    CHECK(r.body.find("\"detail\"") != std::string::npos);
  }
  SECTION("partly limited envelopes stay 200 but carry the limits") {
    ingest_result res;
    res.event_id = "x";
    res.limits.push_back({60, {"attachment"}, "organization", ""});
    auto r = to_http_response(res);
    CHECK(r.status == 200);
    CHECK(header_of(r, "X-Sentry-Rate-Limits").starts_with("60:attachment:"));
  }
  SECTION("unavailable: 503 with Retry-After and the reason") {
    ingest_result res;
    res.status = ingest_result::outcome::unavailable;
    res.detail = "event store unavailable, retry later";
    auto r = to_http_response(res);
    CHECK(r.status == 503);
    CHECK_FALSE(header_of(r, "Retry-After").empty());
    CHECK(r.body.find("event store unavailable") != std::string::npos);
  }
}

TEST_CASE("post_process tasks carry the event's ids as kwargs", "[ingest]") {
  auto t = make_post_process_task("events", "abc", 7, 42, true);
  CHECK(t.queue == "events");
  CHECK(t.msg.task == "vigil.events.post_process");
  CHECK(t.msg.content_type == "application/x-msgpack");
  auto body = decode_task_body(t.msg.body, t.msg.content_type);
  REQUIRE(body);
  CHECK(body->args.empty());
  value_map expected{{"event_id", value{"abc"}},
                     {"project_id", value{int64_t{7}}},
                     {"group_id", value{int64_t{42}}},
                     {"is_new", value{true}}};
  CHECK(to_repr(value{body->kwargs}) == to_repr(value{expected}));
}

TEST_CASE("the post_process fast path writes what the generic encoders "
          "write", "[ingest]") {
  // make_post_process_task packs its msgpack body itself and writes the
  // usual kwargsrepr by hand (it runs once per event on the writer
  // thread): both must stay byte-identical to encode_task_body and to_repr.
  for (int64_t group : {int64_t{0}, int64_t{1}, int64_t{127}, int64_t{128},
                        int64_t{65535}, int64_t{65536}, int64_t{1} << 40,
                        int64_t{-5}})
    for (uint64_t project :
         {uint64_t{1}, uint64_t{255}, uint64_t{1} << 33,
          std::numeric_limits<uint64_t>::max()})
      for (bool is_new : {true, false}) {
        std::string id = "0123456789abcdef0123456789abcdef";
        auto t = make_post_process_task("q", id, project, group, is_new);
        value_map kwargs{{"event_id", value{id}},
                         {"project_id", value{project}},
                         {"group_id", value{group}},
                         {"is_new", value{is_new}}};
        CHECK(t.msg.body
              == encode_task_body({}, kwargs, content_type_msgpack));
        CHECK(t.msg.kwargsrepr == to_repr(value{kwargs}));
      }
}

TEST_CASE("web.bind is host:port", "[ingest]") {
  auto a = parse_bind_address("127.0.0.1:9001");
  REQUIRE(a);
  CHECK(a->first == "127.0.0.1");
  CHECK(a->second == 9001);
  auto b = parse_bind_address(":0");
  REQUIRE(b);
  CHECK(b->first == "127.0.0.1");
  auto c = parse_bind_address("[::1]:80");
  REQUIRE(c);
  CHECK(c->first == "::1");
  CHECK_FALSE(parse_bind_address("localhost"));
  CHECK_FALSE(parse_bind_address("h:99999"));
  CHECK_FALSE(parse_bind_address("h:x"));
}

// -- the endpoint and the pipeline together ------------------------------------

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using vigil::testing::key_limited;
using vigil::testing::key_open;

/// An ingest endpoint and a real ingest actor on SQLite, the in-process
/// quota store and the memory broker: what `vigil run node` wires, minus
/// HTTP. Answers are awaited, never slept for.
struct pipeline {
  actor_system_config_ext cfg;
  caf::actor_system sys{cfg};
  fs::path dir;
  std::string db_url;
  std::shared_ptr<ingest_queue> queue = std::make_shared<ingest_queue>(100);
  quota_catalog catalog;
  std::unique_ptr<ingest_endpoint> open_ep;
  std::unique_ptr<ingest_endpoint> forwarded_ep;
  ingest_actor actor;

  explicit pipeline(const std::string& name) {
    dir = vigil::testing::fresh_test_dir("vigil-unit-" + name);
    db_url = "sqlite://" + (dir / "vigil.db").string();
    // Project 2: 5 errors per hour.
    catalog = vigil::testing::two_project_catalog(5);
    // Project 1's attachments: 2 KiB per hour.
    quota_config att;
    att.id = "pa";
    att.scope = quota_scope::project;
    att.scope_id = "1";
    att.categories = {"attachment"};
    att.limit = 2048;
    att.window = 3600;
    att.reason_code = "attachment_quota";
    catalog.extra.push_back(att);
    open_ep = std::make_unique<ingest_endpoint>(catalog, queue,
                                                ingest_limits{});
    forwarded_ep = std::make_unique<ingest_endpoint>(catalog, queue,
                                                     ingest_limits{}, true);
    ingest_options opts;
    opts.queue = queue;
    opts.open_local_quotas = [name] {
      quota_backend_options o;
      o.url = "memory://unit-pipeline-" + name;
      return make_memory_quota_backend(o);
    };
    opts.open_store = [url = db_url] { return event_store::open(url); };
    opts.open_broker = [name] {
      return connect_broker("memory://unit-pipeline-" + name, 1s);
    };
    actor = sys.spawn<caf::detached>(ingest_service, opts);
  }

  ~pipeline() {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  http_response post(std::string body, const std::string& key,
                     uint64_t project, bool envelope = true,
                     std::string remote = "127.0.0.1",
                     std::string forwarded = "", bool trust = false) {
    http_request req;
    req.message.method(boost::beast::http::verb::post);
    req.message.target("/api/" + std::to_string(project)
                       + (envelope ? "/envelope/" : "/store/"));
    req.message.set("X-Sentry-Auth",
                    "Sentry sentry_version=7, sentry_key=" + key);
    if (!forwarded.empty())
      req.message.set("X-Forwarded-For", forwarded);
    req.message.body() = std::move(body);
    req.remote_ip = std::move(remote);
    auto answer = std::make_shared<std::promise<http_response>>();
    auto got = answer->get_future();
    (trust ? *forwarded_ep : *open_ep)
      .handle(std::move(req), project, envelope,
              [answer](http_response r) { answer->set_value(std::move(r)); });
    REQUIRE(got.wait_for(20s) == std::future_status::ready);
    return got.get();
  }

  std::map<std::string, std::string> status() {
    caf::scoped_actor self{sys};
    std::map<std::string, std::string> out;
    self->request(actor, 10s, status_atom_v)
      .receive([&](actor_status& st) { out = st.extra; },
               [&](caf::error& err) { FAIL("no status: " << error_text(err)); });
    return out;
  }

  /// The stored event, parsed; null when unknown.
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

std::string item(const std::string& header, const std::string& payload) {
  return header + "\n" + payload + "\n";
}

std::string id_of(const http_response& r) {
  return nlohmann::json::parse(r.body).value("id", "");
}

} // namespace

TEST_CASE("sessions, spans, transactions and attachments never take a key's "
          "event limit", "[ingest]") {
  pipeline p{"categories"};
  std::string attachment(1024, 'x');
  std::vector<std::string> transactions;
  for (int i = 0; i < 6; ++i) {
    auto txn = "0000000000000000000000000000000" + std::to_string(i);
    transactions.push_back(txn);
    auto body
      = std::string{"{}\n"}
        + item(R"({"type":"session"})",
               R"({"sid":"s","init":true,"status":"exited"})")
        + item(R"({"type":"sessions"})", R"({"aggregates":[]})")
        + item(R"({"type":"attachment","length":1024})", attachment)
        + item(R"({"type":"transaction"})",
               R"({"event_id":")" + txn
                 + R"(","transaction":"/checkout","spans":[]})")
        + item(R"({"type":"span","item_count":3,"content_type":")"
                 + std::string{span_v2_content_type} + "\"}",
               R"({"items":[{"span_id":"1"},{"span_id":"2"},{"span_id":"3"}]})")
        + item(R"({"type":"client_report"})",
               R"({"discarded_events":[{"reason":"sample_rate",)"
               R"("category":"transaction","quantity":1}]})");
    auto r = p.post(body, key_limited, 2);
    INFO("envelope " << i << ": " << r.body);
    CHECK(r.status == 200);
    CHECK(id_of(r) == txn);
  }
  // The key's 5 errors are still all there.
  for (int i = 0; i < 5; ++i)
    CHECK(p.post(R"({"message":"error )" + std::to_string(i) + "\"}",
                 key_limited, 2, false)
            .status
          == 200);
  auto sixth = p.post(R"({"message":"one too many"})", key_limited, 2, false);
  CHECK(sixth.status == 429);
  CHECK(header_of(sixth, "X-Sentry-Rate-Limits").find(":error:key:key_quota")
        != std::string::npos);
  // Counted per category, in each category's unit.
  auto st = p.status();
  CHECK(st["accepted.session"] == "12");
  CHECK(st["accepted.attachment"] == std::to_string(6 * 1024));
  CHECK(st["accepted.transaction"] == "6");
  CHECK(st["accepted.span"] == "18");
  CHECK(st["accepted.client_report"] == "6");
  CHECK(st["accepted.error"] == "5");
  CHECK(st["rejected.error"] == "1");
  CHECK(st["rejected.session"] == "0");
  // Transactions are stored with their type and readable by id; sessions
  // and spans are not events.
  auto txn = p.stored(2, transactions[3]);
  REQUIRE(txn.is_object());
  CHECK(txn["type"] == "transaction");
  CHECK(txn["transaction"] == "/checkout");
  CHECK(st["events_stored"] == "11");
}

TEST_CASE("attachments are limited by bytes in their own category",
          "[ingest]") {
  pipeline p{"attachments"};
  auto envelope = [](size_t bytes) {
    return std::string{"{}\n"}
           + item(R"({"type":"attachment","length":)" + std::to_string(bytes)
                    + "}",
                  std::string(bytes, 'y'));
  };
  CHECK(p.post(envelope(1024), key_open, 1).status == 200);
  CHECK(p.post(envelope(1024), key_open, 1).status == 200);
  auto third = p.post(envelope(1024), key_open, 1);
  CHECK(third.status == 429);
  CHECK(header_of(third, "X-Sentry-Rate-Limits")
          .find(":attachment:project:attachment_quota")
        != std::string::npos);
  // Errors of the same project are not touched by the attachment quota.
  CHECK(p.post(R"({"message":"fine"})", key_open, 1, false).status == 200);
  auto st = p.status();
  CHECK(st["accepted.attachment"] == "2048");
  CHECK(st["rejected.attachment"] == "1024");
}

TEST_CASE("the envelope answer's id is the one the read API knows",
          "[ingest]") {
  pipeline p{"ids"};
  SECTION("a dashed upper-case header id comes back as 32 hex") {
    auto r = p.post(std::string{R"({"event_id":"8E0E3D6A-1F2B-4C3D-9E8F-0A1B2C3D4E5F"})"}
                      + "\n" + item(R"({"type":"event"})", R"({"message":"m"})"),
                    key_open, 1);
    REQUIRE(r.status == 200);
    CHECK(r.body == R"({"id":"8e0e3d6a1f2b4c3d9e8f0a1b2c3d4e5f"})");
    CHECK(p.stored(1, "8e0e3d6a1f2b4c3d9e8f0a1b2c3d4e5f").is_object());
  }
  SECTION("an envelope of sessions only answers the header's id") {
    auto r = p.post(std::string{R"({"event_id":"ABCDEF0123456789ABCDEF0123456789"})"}
                      + "\n" + item(R"({"type":"session"})", R"({"sid":"s"})"),
                    key_open, 1);
    REQUIRE(r.status == 200);
    CHECK(id_of(r) == "abcdef0123456789abcdef0123456789");
  }
  SECTION("the event's own id wins over the header's") {
    auto r = p.post(std::string{R"({"event_id":"ffffffffffffffffffffffffffffffff"})"}
                      + "\n"
                      + item(R"({"type":"event"})",
                             R"({"event_id":"0123456789abcdef0123456789abcdef"})"),
                    key_open, 1);
    REQUIRE(r.status == 200);
    CHECK(id_of(r) == "0123456789abcdef0123456789abcdef");
  }
}

TEST_CASE("{{auto}} takes the socket's address unless X-Forwarded-For is "
          "trusted", "[ingest]") {
  pipeline p{"auto-ip"};
  auto send = [&](std::string id, std::string forwarded, bool trust) {
    auto body = R"({"event_id":")" + id
                + R"(","user":{"ip_address":"{{auto}}"}})";
    auto r = p.post(body, key_open, 1, false, "10.9.8.7", forwarded, trust);
    REQUIRE(r.status == 200);
    return p.stored(1, id)["user"]["ip_address"];
  };
  CHECK(send(std::string(32, '1'), "", false) == "10.9.8.7");
  CHECK(send(std::string(32, '2'), "203.0.113.5, 10.0.0.1", false)
        == "10.9.8.7");
  CHECK(send(std::string(32, '3'), " 203.0.113.5 , 10.0.0.1", true)
        == "203.0.113.5");
  CHECK(send(std::string(32, '4'), "garbage", true) == "10.9.8.7");
}
