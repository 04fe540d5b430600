// kombu's pidbox wire shapes (requests in, replies out), the direct
// exchange's binding table, and the revoked set's bounds.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "actors/revoked_set.hpp"
#include "messages/base64.hpp"
#include "messages/json_codec.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/pidbox_messages.hpp"

using namespace vigil;

namespace {

std::string request_envelope(std::string body) {
  return R"({"body":")" + base64_encode(body)
         + R"(","content-type":"application/json","headers":{"clock":41},)"
           R"("properties":{"body_encoding":"base64"}})";
}

} // namespace

TEST_CASE("a pidbox request decodes with its reply address", "[pidbox]") {
  auto req = decode_pidbox_envelope(request_envelope(
    R"({"method":"ping","arguments":{},"destination":["a@x"],)"
    R"("reply_to":{"exchange":"reply.celery.pidbox","routing_key":"oid"},)"
    R"("ticket":"t1"})"));
  REQUIRE(req);
  CHECK(req->method == "ping");
  CHECK(req->reply_exchange == "reply.celery.pidbox");
  CHECK(req->reply_routing_key == "oid");
  CHECK(req->ticket == "t1");
  CHECK(req->clock == 41);
  CHECK(pidbox_addressed_to(*req, "a@x"));
  CHECK_FALSE(pidbox_addressed_to(*req, "b@x"));
}

TEST_CASE("malformed pidbox requests fail without throwing", "[pidbox]") {
  for (auto bad : {std::string{""}, std::string{"[]"},
                   std::string{R"({"body":5})"},
                   std::string{R"({"body":"!!","properties":{"body_encoding":"base64"}})"},
                   request_envelope("not json"), request_envelope("{}"),
                   request_envelope(R"({"method":"ping","arguments":[1]})")})
    CHECK_FALSE(decode_pidbox_envelope(bad));
}

TEST_CASE("a pidbox reply carries the ticket and {hostname: reply}",
          "[pidbox]") {
  value_map ok;
  ok.emplace_back("ok", "pong");
  auto env = decode_json(encode_pidbox_reply("vigil@h", value{ok},
                                             "reply.celery.pidbox", "oid",
                                             "t1", 7, false));
  REQUIRE(env);
  CHECK(env->find("headers")->find("ticket")->as_text() == "t1");
  auto body = base64_decode(env->find("body")->as_text());
  REQUIRE(body);
  auto b = decode_json(*body);
  REQUIRE(b);
  CHECK(b->find("vigil@h")->find("ok")->as_text() == "pong");
}

TEST_CASE("direct exchange bindings route by routing key", "[pidbox]") {
  std::string sep{kombu_priority_sep};
  std::vector<std::string> table{"oid" + sep + sep + "oid.reply.celery.pidbox",
                                 "other" + sep + sep + "q2", "broken"};
  CHECK(kombu_direct_targets(table, "oid")
        == std::vector<std::string>{"oid.reply.celery.pidbox"});
  CHECK(kombu_direct_targets(table, "none").empty());
  CHECK(kombu_fanout_channel(3, "celery.pidbox") == "/3.celery.pidbox");
}

TEST_CASE("the revoked set forgets its oldest ids past its bound",
          "[pidbox]") {
  revoked_set s{2, std::chrono::seconds{3600}};
  s.add("a");
  s.add("b");
  s.add("c");
  CHECK_FALSE(s.contains("a"));
  CHECK(s.contains("b"));
  CHECK(s.contains("c"));
  s.add("b"); // revoked again: now the newest
  s.add("d");
  CHECK(s.ids() == std::vector<std::string>{"b", "d"});
  revoked_set expired{10, std::chrono::seconds{0}};
  expired.add("x");
  CHECK_FALSE(expired.contains("x"));
}
