// The ingest pipeline's pure parts: the bounded hand-over queue, how a
// pipeline answer becomes an HTTP response, the post_process task, and the
// bind address parser.

#include <limits>

#include <catch2/catch.hpp>

#include "actors/ingest.hpp"
#include "messages/task_body.hpp"
#include "runtime/adapters/http.hpp"
#include "runtime/ingest_endpoint.hpp"

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
  // make_post_process_task builds its msgpack body and kwargsrepr by hand
  // (it runs once per event on the writer thread): it must stay
  // byte-identical to encode_task_body and to_repr.
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
