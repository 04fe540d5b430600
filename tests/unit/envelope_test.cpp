// Kombu's Redis envelope: golden messages captured from Python Celery 5.2.6
// decode, and what vigil encodes decodes back the same.

#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/task_body.hpp"

using namespace vigil;

namespace {

std::vector<nlohmann::json> fixture_lines(const std::string& name) {
  std::ifstream in{std::string{VIGIL_FIXTURES} + "/" + name};
  REQUIRE(in.good());
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty())
      out.push_back(nlohmann::json::parse(line));
  return out;
}

} // namespace

TEST_CASE("Celery 5.2 envelopes decode", "[envelope]") {
  auto lines = fixture_lines("celery_redis_envelopes.jsonl");
  REQUIRE(lines.size() >= 3);
  for (auto& line : lines) {
    INFO(line["label"].get<std::string>());
    auto d = decode_kombu_envelope(line["raw"].get<std::string>());
    REQUIRE(d);
    CHECK(!d->msg.task.empty());
    CHECK(!d->msg.id.empty());
    CHECK(!d->tag.empty());
    CHECK(d->queue == "celery");
    auto body = decode_task_body(d->msg.body, d->msg.content_type);
    REQUIRE(body);
  }
  auto plain = decode_kombu_envelope(lines[0]["raw"].get<std::string>());
  CHECK(plain->msg.task == "proj.add");
  CHECK(plain->msg.id == "11111111-2222-3333-4444-555555555555");
  CHECK(plain->msg.retries == 0);
  CHECK(plain->msg.eta_us == 0);
  auto body = decode_task_body(plain->msg.body, plain->msg.content_type);
  REQUIRE(body->args.size() == 2);
  CHECK(body->args[0].as_int() == 2);
  CHECK(body->args[1].as_int() == 3);
  auto timed = decode_kombu_envelope(lines[1]["raw"].get<std::string>());
  REQUIRE(timed);
  CHECK(timed->msg.eta_us == *parse_iso8601("2026-11-23T03:57:07.465807+00:00"));
  CHECK(timed->msg.expires_us > timed->msg.eta_us);
  CHECK(timed->msg.time_limit == 30);
  CHECK(timed->msg.soft_time_limit == 20);
  CHECK(timed->msg.priority == 5);
}

TEST_CASE("vigil's envelopes round-trip and keep unknown headers",
          "[envelope]") {
  task_message msg;
  msg.task = "vigil.echo";
  msg.id = new_uuid4();
  msg.retries = 2;
  msg.eta_us = 1795404664123456;
  msg.expires_us = 1795404764000000;
  msg.time_limit = 30;
  msg.priority = 6;
  msg.schema_version = 3;
  msg.argsrepr = "('caf\xc3\xa9', \"q\")";
  msg.extra_headers = R"({"custom": {"a": [1, null]}, "x-trace": "t1"})";
  msg.body = encode_task_body({value{"caf\xc3\xa9"}}, {{"k", value{true}}},
                              content_type_msgpack);
  auto env = encode_kombu_envelope(msg, "q\"uote", "tag-1");
  auto d = decode_kombu_envelope(env);
  REQUIRE(d);
  CHECK(d->tag == "tag-1");
  CHECK(d->queue == "q\"uote");
  CHECK(d->msg.task == msg.task);
  CHECK(d->msg.id == msg.id);
  CHECK(d->msg.root_id == msg.id);
  CHECK(d->msg.retries == 2);
  CHECK(d->msg.eta_us == msg.eta_us);
  CHECK(d->msg.expires_us == msg.expires_us);
  CHECK(d->msg.time_limit == 30);
  CHECK(d->msg.priority == 6);
  CHECK(d->msg.schema_version == 3);
  CHECK(d->msg.argsrepr == msg.argsrepr);
  CHECK(d->msg.body == msg.body);
  CHECK(d->msg.extra_headers == R"({"custom": {"a":[1,null]}, "x-trace": "t1"})");
  CHECK(kombu_queue_key("q", 0) == "q");
  CHECK(kombu_queue_key("q", 5) == "q\x06\x16" "3");
  CHECK(kombu_queue_key("q", 9) == "q\x06\x16" "9");
}

TEST_CASE("broken envelopes fail with a reason", "[envelope]") {
  auto reason = [](std::string_view json) {
    auto d = decode_kombu_envelope(json);
    REQUIRE_FALSE(d);
    return error_text(d.error());
  };
  CHECK(reason("{").find("JSON") != std::string::npos);
  CHECK(reason("[]").find("object") != std::string::npos);
  CHECK(reason(R"({"properties": {}})").find("delivery_tag")
        != std::string::npos);
  auto no_task = R"({"body": "", "headers": {"id": "x"}, "properties":
    {"delivery_tag": "t", "delivery_info": {"routing_key": "q"},
     "body_encoding": "base64"}})";
  CHECK(reason(no_task).find("'task'") != std::string::npos);
  auto bad_eta = R"({"body": "", "headers": {"id": "x", "task": "t",
    "eta": "tomorrow"}, "properties": {"delivery_tag": "t",
    "delivery_info": {"routing_key": "q"}, "body_encoding": "base64"}})";
  CHECK(reason(bad_eta).find("eta") != std::string::npos);
  auto bad_b64 = R"({"body": "%%%", "headers": {"id": "x", "task": "t"},
    "properties": {"delivery_tag": "t", "delivery_info": {"routing_key": "q"},
    "body_encoding": "base64"}})";
  CHECK(reason(bad_b64).find("base64") != std::string::npos);
  CHECK(find_delivery_tag(R"(garbage "delivery_tag": "abc" more)") == "abc");
  CHECK(find_delivery_tag("nothing").empty());
}

TEST_CASE("restored envelopes are marked redelivered", "[envelope]") {
  task_message msg;
  msg.task = std::string{"vigil.ping"};
  msg.id = new_uuid4();
  auto env = encode_kombu_envelope(msg, "q", "tag");
  auto marked = mark_redelivered(env);
  REQUIRE(marked);
  auto d = decode_kombu_envelope(*marked);
  REQUIRE(d);
  CHECK(d->redelivered);
  CHECK(d->tag == "tag");
  auto twice = mark_redelivered(*marked);
  REQUIRE(twice);
  CHECK(*twice == *marked);
}

TEST_CASE("ISO-8601 times parse as Celery's parser does", "[clock]") {
  auto t = parse_iso8601("2026-11-23T03:30:55.607329+00:00");
  REQUIRE(t);
  CHECK(format_iso8601(*t) == "2026-11-23T03:30:55.607329+00:00");
  CHECK(*parse_iso8601("2026-11-23T03:30:55Z") == *t - 607329);
  CHECK(*parse_iso8601("2026-11-23T05:30:55.607329+02:00") == *t);
  CHECK(*parse_iso8601("2026-11-23T03:30:55.6073291") == *t);
  CHECK(format_iso8601_naive(0) == "1970-01-01T00:00:00.000000");
  CHECK_FALSE(parse_iso8601("2026-13-01T00:00:00"));
  CHECK_FALSE(parse_iso8601("yesterday"));
  CHECK_FALSE(parse_iso8601(""));
  CHECK(new_uuid4().size() == 36);
  CHECK(new_uuid4()[14] == '4');
  CHECK(new_uuid4() != new_uuid4());
}
