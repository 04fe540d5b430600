// adapters/redis's reply type against a real redis-server
// (VIGIL_TEST_REDIS_URL, started by tests/run_all.py; db 50): every kind,
// the accessors asked for the wrong kind, pipelines that keep error replies
// in place, and a script run again after the server forgot it.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "adapters/redis.hpp"
#include "messages/errors.hpp"

using namespace vigil;

namespace {

// A connection to db 50, emptied; nullopt (with a warning) without a server.
std::optional<redis_connection> fresh_connection() {
  const char* base = std::getenv("VIGIL_TEST_REDIS_URL");
  if (base == nullptr) {
    WARN("VIGIL_TEST_REDIS_URL is not set: skipped");
    return std::nullopt;
  }
  std::string url = base;
  url = url.substr(0, url.rfind('/')) + "/50";
  auto ep = parse_redis_url(url);
  REQUIRE(ep);
  auto conn = redis_connection::connect(*ep, std::chrono::seconds{5});
  REQUIRE(conn);
  REQUIRE(conn->command({"FLUSHDB"}));
  return std::move(*conn);
}

} // namespace

TEST_CASE("a default reply is nil and answers every accessor emptily",
          "[redis][reply]") {
  redis_reply r;
  CHECK(r.kind() == redis_kind::nil);
  CHECK(r.is_nil());
  CHECK(r.as_int() == 0);
  CHECK(r.as_int(-7) == -7);
  CHECK(r.as_string().empty());
  CHECK(r.error_text().empty());
  CHECK(r.size() == 0);
  CHECK(r[0].is_nil());
  CHECK(r.elements().empty());
  CHECK(r.elements().begin() == r.elements().end());
}

TEST_CASE("replies of every kind read as what they are", "[redis][reply]") {
  auto conn = fresh_connection();
  if (!conn)
    return;
  conn->append({"SET", "s", "hello"});
  conn->append({"GET", "s"});
  conn->append({"INCRBY", "n", "-42"});
  conn->append({"GET", "missing"});
  conn->append({"RPUSH", "l", "a", "", "c"});
  conn->append({"LRANGE", "l", "0", "-1"});
  conn->append({"LRANGE", "missing", "0", "-1"});
  conn->append({"HINCRBY", "s", "f", "1"}); // WRONGTYPE: an error reply
  conn->append({"PING"});
  auto replies = conn->flush();
  REQUIRE(replies);
  REQUIRE(replies->size() == 9);
  auto& r = *replies;

  CHECK(r[0].kind() == redis_kind::status);
  CHECK(r[0].as_string() == "OK");
  CHECK(r[0].error_text().empty());

  CHECK(r[1].kind() == redis_kind::string);
  CHECK(r[1].as_string() == "hello");
  CHECK(r[1].as_int(5) == 5); // a string is not an integer, even "42"
  CHECK(r[1].size() == 0);
  CHECK(r[1][0].is_nil());

  CHECK(r[2].kind() == redis_kind::integer);
  CHECK(r[2].as_int() == -42);
  CHECK(r[2].as_string().empty());

  CHECK(r[3].kind() == redis_kind::nil);
  CHECK(r[3].as_string().empty());

  CHECK(r[4].as_int() == 3);
  REQUIRE(r[5].is_array());
  REQUIRE(r[5].size() == 3);
  CHECK(r[5][0].as_string() == "a");
  CHECK(r[5][1].is_string());
  CHECK(r[5][1].as_string().empty());
  CHECK(r[5][2].as_string() == "c");
  CHECK(r[5][3].is_nil()); // past the end
  std::vector<std::string> seen;
  for (auto element : r[5].elements())
    seen.emplace_back(element.as_string());
  CHECK(seen == std::vector<std::string>{"a", "", "c"});

  CHECK(r[6].is_array());
  CHECK(r[6].size() == 0);

  // The error stays in its place; the command after it still answers.
  CHECK(r[7].kind() == redis_kind::error);
  CHECK(r[7].error_text().rfind("WRONGTYPE", 0) == 0);
  CHECK(r[7].as_string() == r[7].error_text());
  CHECK(r[8].as_string() == "PONG");

  auto err = check_replies(r, "pipeline");
  REQUIRE(err);
  CHECK(err == errc::command_failed);
  CHECK(error_text(err).find("pipeline: WRONGTYPE") != std::string::npos);
  r.erase(r.begin() + 7);
  CHECK_FALSE(check_replies(r, "pipeline"));
}

TEST_CASE("nested arrays read element by element", "[redis][reply]") {
  auto conn = fresh_connection();
  if (!conn)
    return;
  REQUIRE(conn->command({"SET", "k1", "v"}));
  auto page = conn->command({"SCAN", "0", "MATCH", "k*", "COUNT", "1000"});
  REQUIRE(page);
  REQUIRE(page->size() == 2);
  CHECK((*page)[0].as_string() == "0");
  REQUIRE((*page)[1].size() == 1);
  CHECK((*page)[1][0].as_string() == "k1");
  // A script's table of integers and strings.
  redis_script script{"return {1, 'two', {3}}"};
  auto r = conn->eval(script, {}, {});
  REQUIRE(r);
  REQUIRE(r->size() == 3);
  CHECK(r->elements()[0].as_int() == 1);
  CHECK(r->elements()[1].as_string() == "two");
  CHECK((*r)[2][0].as_int() == 3);
}

TEST_CASE("a command's error reply is an error, and a moved reply is nil",
          "[redis][reply]") {
  auto conn = fresh_connection();
  if (!conn)
    return;
  auto bad = conn->command({"NO-SUCH-COMMAND"});
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == errc::command_failed);
  CHECK(conn->ok()); // an error reply leaves the connection usable
  auto r = conn->command({"ECHO", "kept"});
  REQUIRE(r);
  redis_reply moved = std::move(*r);
  CHECK(moved.as_string() == "kept");
  CHECK(r->is_nil());
  redis_reply other;
  other = std::move(moved);
  CHECK(other.as_string() == "kept");
  CHECK(moved.is_nil());
}

TEST_CASE("a pipelined script runs again after SCRIPT FLUSH",
          "[redis][reply]") {
  auto conn = fresh_connection();
  if (!conn)
    return;
  redis_script script{"return redis.call('INCRBY', KEYS[1], ARGV[1])"};
  REQUIRE_FALSE(conn->preload(script));
  REQUIRE(conn->command({"SCRIPT", "FLUSH"}));
  conn->append_eval(script, {"c"}, {"2"});
  conn->append({"GET", "c"});
  conn->append_eval(script, {"c"}, {"3"});
  auto replies = conn->flush();
  REQUIRE(replies);
  REQUIRE(replies->size() == 3);
  CHECK((*replies)[0].as_int() == 2);
  // The GET ran before the scripts were run again.
  CHECK((*replies)[1].is_nil());
  CHECK((*replies)[2].as_int() == 5);
}
