// The Sentry protocol pieces of ingestion: X-Sentry-Auth, DSNs, envelopes,
// event normalization and grouping, and the rate-limit header. The fixtures
// are real request bodies from Debian's python3-sentry-sdk 1.9.10, captured
// by tests/fixtures/capture_sentry_sdk.py.

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "messages/errors.hpp"
#include "messages/percent_encoding.hpp"
#include "messages/sentry_auth.hpp"
#include "messages/sentry_envelope.hpp"
#include "messages/sentry_event.hpp"
#include "messages/sentry_rate_limits.hpp"

using namespace vigil;
using json = nlohmann::json;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in{std::string{VIGIL_FIXTURES} + "/" + name,
                   std::ios::binary};
  REQUIRE(in.good());
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

errc code_of(const caf::error& err) {
  return static_cast<errc>(err.code());
}

constexpr double received = 1795404664.5;

normalized_event normalize_ok(std::string_view text, uint64_t project = 42) {
  auto ev = normalize_event(text, project, received);
  if (!ev)
    FAIL("normalize_event failed: " << error_text(ev.error()));
  return std::move(*ev);
}

/// The stored document re-parsed; also checks it is valid JSON.
json stored(const normalized_event& ev) {
  json out;
  REQUIRE_NOTHROW(out = json::parse(ev.json));
  REQUIRE(out.is_object());
  return out;
}

/// Every member of `original` is in `doc` unchanged.
void require_superset(const json& original, const json& doc,
                      std::initializer_list<std::string> rewritten = {}) {
  for (auto& [key, value] : original.items()) {
    if (std::find(rewritten.begin(), rewritten.end(), key) != rewritten.end())
      continue;
    INFO("key " << key);
    REQUIRE(doc.contains(key));
    REQUIRE(doc[key] == value);
  }
}

bool is_hex32(std::string_view s) {
  return s.size() == 32
         && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

} // namespace

// -- X-Sentry-Auth, query, DSN ------------------------------------------------

TEST_CASE("X-Sentry-Auth as the Python SDK sends it", "[sentry]") {
  auto a = parse_sentry_auth(
    "Sentry sentry_key=0123456789abcdef0123456789abcdef, sentry_version=7, "
    "sentry_client=sentry.python/1.9.10");
  REQUIRE(a);
  CHECK(a->public_key == "0123456789abcdef0123456789abcdef");
  CHECK(a->version == "7");
  CHECK(a->client == "sentry.python/1.9.10");
}

TEST_CASE("X-Sentry-Auth variants", "[sentry]") {
  SECTION("no prefix, no spaces, unknown and secret fields") {
    auto a = parse_sentry_auth("sentry_version=7,sentry_timestamp=1.5,"
                               "sentry_key=abc,sentry_secret=s3cret");
    REQUIRE(a);
    CHECK(a->public_key == "abc");
    CHECK(a->version == "7");
    CHECK(a->client.empty());
  }
  SECTION("lower-case prefix, quoted values, extra separators") {
    auto a = parse_sentry_auth(
      "  sentry  sentry_key=\"k1\" ,,  sentry_client=\"raven-js/3.0 x\" ");
    REQUIRE(a);
    CHECK(a->public_key == "k1");
    CHECK(a->client == "raven-js/3.0 x");
  }
  SECTION("a key named like the prefix is not the prefix") {
    auto a = parse_sentry_auth("sentry_key=abc");
    REQUIRE(a);
    CHECK(a->public_key == "abc");
  }
  SECTION("missing key") {
    auto a = parse_sentry_auth("Sentry sentry_version=7");
    REQUIRE(!a);
    CHECK(code_of(a.error()) == errc::missing_field);
    CHECK(!parse_sentry_auth(""));
    CHECK(!parse_sentry_auth("Sentry"));
    CHECK(!parse_sentry_auth("Sentry sentry_key="));
  }
  SECTION("garbage") {
    auto a = parse_sentry_auth("Sentry what");
    REQUIRE(!a);
    CHECK(code_of(a.error()) == errc::malformed);
    CHECK(!parse_sentry_auth("Sentry sentry_key=\"abc"));
  }
}

TEST_CASE("query parameters", "[sentry]") {
  CHECK(query_param("sentry_key=abc&sentry_version=7", "sentry_key")
        == "abc");
  CHECK(query_param("?sentry_version=7&sentry_key=abc", "sentry_key")
        == "abc");
  CHECK(query_param("/api/1/store/?sentry_key=a%2Fb+c", "sentry_key")
        == "a/b c");
  CHECK(query_param("x=1&sentry_key", "sentry_key") == "");
  CHECK(query_param("x=1&sentry_key=a&sentry_key=b", "sentry_key") == "a");
  CHECK(query_param("sentry_keyx=1", "sentry_key") == std::nullopt);
  CHECK(query_param("", "sentry_key") == std::nullopt);
  CHECK(query_param("a=%zz%4", "a") == "%zz%4");
  CHECK(query_param("a=1#sentry_key=b", "sentry_key") == std::nullopt);
  using pairs = std::vector<std::pair<std::string_view, std::string_view>>;
  CHECK(query_pairs("a=1&&b&c=x=y&") == pairs{{"a", "1"}, {"b", ""},
                                               {"c", "x=y"}});
  CHECK(query_pairs("").empty());
}

TEST_CASE("DSN parsing", "[sentry]") {
  SECTION("the one the issue gives") {
    auto d = parse_dsn("http://0123456789abcdef0123456789abcdef@127.0.0.1:9001"
                       "/42");
    REQUIRE(d);
    CHECK(d->public_key == "0123456789abcdef0123456789abcdef");
    CHECK(d->host == "127.0.0.1");
    CHECK(d->port == 9001);
    CHECK(d->project_id == 42);
  }
  SECTION("https, secret, path prefix, default port, trailing slash") {
    auto d = parse_dsn("https://pub:secret@sentry.example.com/prefix/x/7/");
    REQUIRE(d);
    CHECK(d->public_key == "pub");
    CHECK(d->host == "sentry.example.com");
    CHECK(d->port == 443);
    CHECK(d->project_id == 7);
    auto h = parse_dsn("http://k@h/1");
    REQUIRE(h);
    CHECK(h->port == 80);
  }
  SECTION("IPv6") {
    auto d = parse_dsn("http://k@[::1]:9001/3");
    REQUIRE(d);
    CHECK(d->host == "[::1]");
    CHECK(d->port == 9001);
    auto e = parse_dsn("http://k@[::1]/3");
    REQUIRE(e);
    CHECK(e->port == 80);
  }
  SECTION("errors never show the secret") {
    for (auto bad : {"ftp://k@h/1", "http://h/1", "http://k@h", "http://k@/1",
                     "http://k@h:0/1", "http://k@h:70000/1", "http://k@h:x/1",
                     "http://k@h/", "http://k@h/0", "http://k@h/abc",
                     "http://:topsecret@h/1", "http://k:topsecret@h/-1",
                     "http://k@[::1/1", "", "http://"}) {
      INFO(bad);
      auto d = parse_dsn(bad);
      REQUIRE(!d);
      CHECK(code_of(d.error()) == errc::malformed);
      CHECK(error_text(d.error()).find("topsecret") == std::string::npos);
    }
  }
}

TEST_CASE("public keys", "[sentry]") {
  CHECK(is_public_key("0123456789abcdef0123456789ABCDEF"));
  CHECK(!is_public_key("0123456789abcdef0123456789abcde"));
  CHECK(!is_public_key("0123456789abcdef0123456789abcdeg"));
  CHECK(!is_public_key(""));
}

// -- envelopes ----------------------------------------------------------------

TEST_CASE("envelope from the SDK: event with an attachment", "[sentry]") {
  auto body = fixture("sentry_sdk_attachment.envelope");
  auto env = parse_envelope(body);
  REQUIRE(env);
  REQUIRE(env->event_id);
  CHECK(is_hex32(*env->event_id));
  CHECK(!env->dsn);
  REQUIRE(env->items.size() == 2);
  CHECK(env->items[0].type == "event");
  CHECK(env->items[0].content_type == "application/json");
  CHECK(item_category(env->items[0].type) == "error");
  CHECK(env->items[1].type == "attachment");
  CHECK(env->items[1].payload == "line one\nline two\n");
  CHECK(env->items[1].content_type == "text/plain");
  CHECK(env->items[1].filename == "notes.txt");
  // The SDK sends no attachment_type for a plain attachment.
  CHECK(env->items[1].attachment_type.empty());
  CHECK(item_category(env->items[1].type) == "attachment");
  // The event payload is the whole event and normalizes.
  auto doc = json::parse(env->items[0].payload);
  CHECK(doc["event_id"] == *env->event_id);
  auto ev = normalize_ok(env->items[0].payload);
  CHECK(ev.event_id == *env->event_id);
  CHECK(ev.title == "ZeroDivisionError: division by zero");
}

TEST_CASE("envelope from the SDK: transaction", "[sentry]") {
  auto env = parse_envelope(fixture("sentry_sdk_transaction.envelope"));
  REQUIRE(env);
  REQUIRE(env->items.size() == 1);
  CHECK(env->items[0].type == "transaction");
  CHECK(item_category("transaction") == "transaction");
  auto doc = json::parse(env->items[0].payload);
  CHECK(doc["transaction"] == "process-orders");
  auto ev = normalize_ok(env->items[0].payload);
  CHECK(ev.culprit == "process-orders");
  CHECK(ev.title == "process-orders");
  CHECK(ev.level == "info");
  CHECK(ev.transaction);
  CHECK(stored(ev)["level"] == "info");
  CHECK_FALSE(normalize_ok(R"({"message":"type: transaction"})").transaction);
}

TEST_CASE("envelope framing", "[sentry]") {
  SECTION("items without length run to the end of the line") {
    auto env = parse_envelope("{\"dsn\":\"http://k@h/1\"}\n"
                              "{\"type\":\"event\"}\n{\"message\":\"a\"}\n"
                              "{\"type\":\"session\"}\n{\"sid\":1}");
    REQUIRE(env);
    CHECK(env->dsn == "http://k@h/1");
    CHECK(!env->event_id);
    REQUIRE(env->items.size() == 2);
    CHECK(env->items[0].payload == "{\"message\":\"a\"}");
    CHECK(env->items[1].payload == "{\"sid\":1}");
  }
  SECTION("length payloads may hold newlines; the '\\n' after is optional") {
    auto env = parse_envelope("{}\n{\"type\":\"attachment\",\"length\":3}\n"
                              "a\nb{\"type\":\"attachment\",\"length\":0}\n\n"
                              "{\"type\":\"x\",\"length\":2}\nzz");
    REQUIRE(env);
    REQUIRE(env->items.size() == 3);
    CHECK(env->items[0].payload == "a\nb");
    CHECK(env->items[1].payload.empty());
    CHECK(env->items[2].payload == "zz");
  }
  SECTION("empty lines and trailing newlines are fine") {
    auto env = parse_envelope("{}\n\n{\"type\":\"event\",\"length\":2}\n{}\n"
                              "\n\n");
    REQUIRE(env);
    REQUIRE(env->items.size() == 1);
    CHECK(env->items[0].payload == "{}");
  }
  SECTION("a header alone, with or without newline") {
    auto a = parse_envelope("{}");
    REQUIRE(a);
    CHECK(a->items.empty());
    CHECK(parse_envelope("{\"event_id\":\"x\"}\n"));
  }
  SECTION("item header at the very end without a payload") {
    auto env = parse_envelope("{}\n{\"type\":\"client_report\"}");
    REQUIRE(env);
    REQUIRE(env->items.size() == 1);
    CHECK(env->items[0].payload.empty());
    CHECK(item_category("client_report").empty());
  }
  SECTION("CRLF line ends") {
    auto env = parse_envelope("{}\r\n{\"type\":\"event\"}\r\n{\"a\":1}\r\n");
    REQUIRE(env);
    REQUIRE(env->items.size() == 1);
    CHECK(env->items[0].type == "event");
  }
}

TEST_CASE("envelope errors", "[sentry]") {
  auto fails = [](std::string_view body, errc code, std::string_view text) {
    auto env = parse_envelope(body, 3);
    INFO(body);
    REQUIRE(!env);
    CHECK(code_of(env.error()) == code);
    INFO(error_text(env.error()));
    CHECK(error_text(env.error()).find(text) != std::string::npos);
  };
  fails("", errc::malformed, "header line is empty");
  fails("\n{}", errc::malformed, "header line is empty");
  fails("[1]\n", errc::malformed, "envelope header is not a JSON object");
  fails("{bad\n", errc::malformed, "envelope header is not valid JSON");
  fails("{}\n{\"type\":\"event\",\"length\":10}\n{}\n", errc::malformed,
        "envelope item 0 (event): length 10 exceeds the remaining 3 bytes");
  fails("{}\n{\"type\":\"a\"}\nx\n{\"type\":\"event\",\"length\":5}",
        errc::malformed, "envelope item 1 (event): length 5 exceeds");
  fails("{}\n{\"length\":1}\nx", errc::malformed,
        "envelope item 0 header has no \"type\"");
  fails("{}\n{\"type\":7}\nx", errc::malformed, "has no \"type\"");
  fails("{}\n{\"type\":\"a\"}\nx\n[]\n", errc::malformed,
        "envelope item 1 header is not a JSON object");
  fails("{}\n{\"type\":\"a\",\"length\":-1}\n", errc::malformed,
        "\"length\" is not a non-negative integer");
  fails("{}\n{\"type\":\"a\",\"length\":1.5}\nx", errc::malformed,
        "\"length\" is not");
  fails("{}\n{\"type\":\"a\"}\n1\n{\"type\":\"a\"}\n2\n{\"type\":\"a\"}\n3\n"
        "{\"type\":\"a\"}\n4\n",
        errc::too_large, "more than 3 items");
  CHECK(parse_envelope("{}\n{\"type\":\"a\"}\n1\n{\"type\":\"a\"}\n2\n"
                       "{\"type\":\"a\"}\n3\n",
                       3));
}

TEST_CASE("item categories", "[sentry]") {
  CHECK(item_category("event") == "error");
  CHECK(item_category("security") == "security");
  CHECK(item_category("session") == "session");
  CHECK(item_category("sessions") == "session");
  CHECK(item_category("profile") == "profile");
  CHECK(item_category("replay_recording") == "replay");
  CHECK(item_category("check_in") == "monitor");
  CHECK(item_category("user_report") == "user_report");
  CHECK(item_category("form_data").empty());
  CHECK(item_category("no_such_type").empty());
  CHECK(item_category("").empty());
}

// -- events -------------------------------------------------------------------

TEST_CASE("message event from the SDK", "[sentry]") {
  auto text = fixture("sentry_sdk_message.json");
  auto original = json::parse(text);
  auto ev = normalize_ok(text);
  CHECK(ev.event_id == original["event_id"]);
  CHECK(ev.title == "Disk quota at 91%");
  CHECK(ev.culprit.empty());
  CHECK(ev.level == "info");
  CHECK(ev.platform == "python");
  CHECK(ev.timestamp > 1.7e9);
  CHECK(is_hex32(ev.grouping_hash));
  auto doc = stored(ev);
  require_superset(original, doc);
  CHECK(doc["project"] == 42);
  CHECK(doc["received"] == received);
  // Same message, other details: same group; another message: another.
  auto other = original;
  other["event_id"] = "00000000000000000000000000000001";
  other["tags"]["shop"] = "south";
  CHECK(normalize_ok(other.dump()).grouping_hash == ev.grouping_hash);
  other["message"] = "Disk quota at 92%";
  CHECK(normalize_ok(other.dump()).grouping_hash != ev.grouping_hash);
}

TEST_CASE("exception event from the SDK", "[sentry]") {
  auto text = fixture("sentry_sdk_exception.json");
  auto original = json::parse(text);
  auto ev = normalize_ok(text, 7);
  CHECK(ev.event_id == original["event_id"]);
  CHECK(ev.title == "ZeroDivisionError: division by zero");
  CHECK(ev.culprit == "__main__ in compute_discount");
  CHECK(ev.level == "error");
  CHECK(ev.platform == "python");
  auto doc = stored(ev);
  require_superset(original, doc);
  CHECK(doc["project"] == 7);
  CHECK(doc["breadcrumbs"]["values"].size() == 2);
  CHECK(doc["tags"]["order"] == "o-99");
  CHECK(doc["fingerprint"][1] == "discounts");

  // The attachment envelope carries the same exception raised from another
  // line: without fingerprints both group together ...
  auto env = parse_envelope(fixture("sentry_sdk_attachment.envelope"));
  REQUIRE(env);
  auto second = json::parse(env->items[0].payload);
  auto first = original;
  first.erase("fingerprint");
  CHECK(normalize_ok(first.dump()).grouping_hash
        == normalize_ok(second.dump()).grouping_hash);
  // ... and "{{ default }}" + "discounts" is a different group than the
  // default alone, but the same one for both events.
  second["fingerprint"] = original["fingerprint"];
  CHECK(normalize_ok(second.dump()).grouping_hash == ev.grouping_hash);
  CHECK(normalize_ok(first.dump()).grouping_hash != ev.grouping_hash);
}

TEST_CASE("grouping hash pinned values", "[sentry]") {
  // md5 over length-prefixed components; python3:
  // hashlib.md5(b'7:message5:hello').hexdigest()
  CHECK(normalize_ok(R"({"message":"hello"})").grouping_hash
        == "e46e3b7b4456dd36835bcc5ec48158dd");
  CHECK(normalize_ok(R"({})").grouping_hash
        == "1b0e8c8d3a195979dfdef19322ac0b03");
  CHECK(normalize_ok(R"({"fingerprint":["a","b"],"message":"x"})")
          .grouping_hash
        == "1f706b655ea6f49140628ab119faf358");
  CHECK(normalize_ok(R"({"fingerprint":["ab"]})").grouping_hash
        != normalize_ok(R"({"fingerprint":["a","b"]})").grouping_hash);
  // The three message spellings group alike.
  auto h = normalize_ok(R"({"message":"hello"})").grouping_hash;
  CHECK(normalize_ok(R"({"logentry":{"formatted":"hello","message":"h%s"}})")
          .grouping_hash
        == h);
  CHECK(normalize_ok(R"({"logentry":{"message":"hello"}})").grouping_hash
        == h);
  CHECK(normalize_ok(R"({"message":{"formatted":"hello"}})").grouping_hash
        == h);
  // "{{default}}" without spaces is the marker too.
  CHECK(normalize_ok(R"({"fingerprint":["{{default}}"],"message":"m"})")
          .grouping_hash
        == normalize_ok(R"({"fingerprint":["{{ default }}"],"message":"m"})")
             .grouping_hash);
}

TEST_CASE("exception grouping uses in-app frames", "[sentry]") {
  auto event = [](const std::string& frames) {
    return R"({"exception":{"values":[{"type":"E","value":"v",)"
           R"("stacktrace":{"frames":[)"
           + frames + "]}}]}}";
  };
  auto lib = R"({"module":"lib","function":"call","in_app":false})";
  auto lib2 = R"({"module":"lib2","function":"other","in_app":false})";
  auto app = R"({"module":"app","function":"run","in_app":true,"lineno":1})";
  auto app_moved = R"({"module":"app","function":"run","in_app":true,)"
                   R"("lineno":99})";
  auto h1 = normalize_ok(event(std::string{lib} + "," + app)).grouping_hash;
  CHECK(normalize_ok(event(std::string{lib2} + "," + app_moved)).grouping_hash
        == h1);
  // Without any in-app frame, all frames count.
  CHECK(normalize_ok(event(lib)).grouping_hash
        != normalize_ok(event(lib2)).grouping_hash);
  // The value is part of the hash.
  auto other_value = event(app);
  other_value.replace(other_value.find("\"v\""), 3, "\"w\"");
  CHECK(normalize_ok(other_value).grouping_hash
        != normalize_ok(event(app)).grouping_hash);
  auto ev = normalize_ok(event(std::string{app} + "," + lib));
  CHECK(ev.culprit == "app in run");
  CHECK(ev.title == "E: v");
}

TEST_CASE("exception shapes, title and culprit", "[sentry]") {
  SECTION("exception as a list; the last value gives the title") {
    auto ev = normalize_ok(
      R"({"exception":[{"type":"KeyError","value":"'a'"},)"
      R"({"type":"RuntimeError","value":"wrapped","stacktrace":{"frames":[)"
      R"({"filename":"a.py","function":"f","in_app":true}]}}]})");
    CHECK(ev.title == "RuntimeError: wrapped");
    CHECK(ev.culprit == "a.py in f");
  }
  SECTION("type only, value only") {
    CHECK(normalize_ok(R"({"exception":{"values":[{"type":"E"}]}})").title
          == "E");
    CHECK(normalize_ok(R"({"exception":{"values":[{"value":"v"}]}})").title
          == "v");
  }
  SECTION("transaction wins as culprit") {
    auto ev = normalize_ok(
      R"({"transaction":"/api/x","exception":{"values":[{"type":"E",)"
      R"("stacktrace":{"frames":[{"module":"m","in_app":true}]}}]}})");
    CHECK(ev.culprit == "/api/x");
  }
  SECTION("missing function") {
    auto ev = normalize_ok(
      R"({"exception":{"values":[{"type":"E",)"
      R"("stacktrace":{"frames":[{"module":"m","in_app":true}]}}]}})");
    CHECK(ev.culprit == "m in ?");
  }
  SECTION("message titles: first line, 100 code points") {
    std::string long_msg(150, 'x');
    CHECK(normalize_ok(json{{"message", long_msg}}.dump()).title
          == std::string(100, 'x'));
    std::string accents;
    for (int i = 0; i < 120; ++i)
      accents += "\xC3\xA9"; // é
    auto title = normalize_ok(json{{"message", accents}}.dump()).title;
    CHECK(title.size() == 200);
    CHECK(normalize_ok(R"({"message":"a\r\nb"})").title == "a\r");
  }
  SECTION("nothing to name") {
    auto ev = normalize_ok(R"({"extra":{"a":1}})");
    CHECK(ev.title == "<unlabeled event>");
    CHECK(ev.culprit.empty());
  }
}

TEST_CASE("event fields added to the stored document", "[sentry]") {
  SECTION("empty object") {
    auto ev = normalize_ok("{}", 3);
    CHECK(is_hex32(ev.event_id));
    CHECK(ev.level == "error");
    CHECK(ev.platform == "other");
    CHECK(ev.timestamp == received);
    auto doc = stored(ev);
    CHECK(doc["event_id"] == ev.event_id);
    CHECK(doc["project"] == 3);
    CHECK(doc["received"] == received);
    CHECK(doc["timestamp"] == received);
    CHECK(doc["level"] == "error");
    CHECK(doc["platform"] == "other");
  }
  SECTION("whitespace around and inside is kept valid") {
    auto ev = normalize_ok(" \n{ \"a\" : [1, {\"}\": \"{\"}] , \"b\":\"\\\"}\""
                           " }\n ");
    auto doc = stored(ev);
    CHECK(doc["a"][1]["}"] == "{");
    CHECK(doc["b"] == "\"}");
  }
  SECTION("dashed upper-case event id is normalized in place") {
    auto ev = normalize_ok(
      R"({"event_id":"8E0E3D6A-1F2B-4C3D-9E8F-0A1B2C3D4E5F","x":1})");
    CHECK(ev.event_id == "8e0e3d6a1f2b4c3d9e8f0a1b2c3d4e5f");
    auto doc = stored(ev);
    CHECK(doc["event_id"] == ev.event_id);
    CHECK(ev.json.find("8E0E") == std::string::npos);
    CHECK(ev.json.find("event_id") == ev.json.rfind("event_id"));
  }
  SECTION("invalid event id: the hint, else a new one") {
    auto hint = std::string_view{"ABCDEF0123456789ABCDEF0123456789"};
    auto a = normalize_event(R"({"event_id":"nope"})", 1, received, hint);
    REQUIRE(a);
    CHECK(a->event_id == "abcdef0123456789abcdef0123456789");
    CHECK(stored(*a)["event_id"] == a->event_id);
    auto b = normalize_event(R"({"event_id":5})", 1, received, "bad hint");
    REQUIRE(b);
    CHECK(is_hex32(b->event_id));
    CHECK(b->event_id != a->event_id);
    auto c = normalize_event(R"({})", 1, received, hint);
    REQUIRE(c);
    CHECK(c->event_id == a->event_id);
  }
  SECTION("the event's own id beats the hint") {
    auto a = normalize_event(
      R"({"event_id":"0123456789abcdef0123456789abcdef"})", 1, received,
      "ffffffffffffffffffffffffffffffff");
    REQUIRE(a);
    CHECK(a->event_id == "0123456789abcdef0123456789abcdef");
  }
  SECTION("timestamps: numeric, ISO-8601, numeric text, junk") {
    CHECK(normalize_ok(R"({"timestamp":1700000000.25})").timestamp
          == 1700000000.25);
    CHECK(normalize_ok(R"({"timestamp":"2023-11-14T22:13:20.5Z"})").timestamp
          == 1700000000.5);
    CHECK(normalize_ok(R"({"timestamp":"2023-11-14T22:13:20"})").timestamp
          == 1700000000);
    CHECK(normalize_ok(R"({"timestamp":"1700000000"})").timestamp
          == 1700000000);
    auto junk = normalize_ok(R"({"timestamp":"yesterday","level":null})");
    CHECK(junk.timestamp == received);
    auto doc = stored(junk);
    CHECK(doc["timestamp"] == received);
    CHECK(doc["level"] == "error");
    CHECK(junk.json.find("yesterday") == std::string::npos);
  }
  SECTION("a project or received sent by the client is overwritten") {
    auto doc = stored(normalize_ok(R"({"project":999,"received":{"a":[1]}})",
                                   5));
    CHECK(doc["project"] == 5);
    CHECK(doc["received"] == received);
  }
  SECTION("integers beyond 64 bits (Python sends them) are kept") {
    auto text = R"({"extra":{"n":123456789012345678901234567890,)"
                R"("m":-9223372036854775809},"message":"big"})";
    auto ev = normalize_ok(text);
    CHECK(ev.title == "big");
    CHECK(ev.json.find("123456789012345678901234567890,") != std::string::npos);
    CHECK(stored(ev)["extra"]["n"].is_number());
  }
  SECTION("unicode and escapes survive byte for byte") {
    std::string text = R"({"message":"caf\u00e9 \ud83d\ude00 \"q\"",)"
                       "\"extra\":{\"k\":\"\xE2\x82\xAC\"}}";
    auto ev = normalize_ok(text);
    auto body = text.substr(0, text.size() - 1); // without the '}'
    CHECK(ev.json.substr(0, body.size()) == body);
    auto doc = stored(ev);
    CHECK(doc["extra"]["k"] == "\xE2\x82\xAC");
  }
}

TEST_CASE("bad events", "[sentry]") {
  auto fails = [](std::string_view text, errc code, std::string_view what) {
    auto ev = normalize_event(text, 1, received);
    INFO(text);
    REQUIRE(!ev);
    CHECK(code_of(ev.error()) == code);
    INFO(error_text(ev.error()));
    CHECK(error_text(ev.error()).find(what) != std::string::npos);
  };
  fails("[]", errc::malformed, "event is not a JSON object");
  fails("\"x\"", errc::malformed, "event is not a JSON object");
  fails("12", errc::malformed, "event is not a JSON object");
  fails("", errc::malformed, "malformed JSON");
  fails("{\"a\":1", errc::malformed, "malformed JSON");
  fails("{\"a\":1,}", errc::malformed, "malformed JSON at byte 8");
  fails("{\"a\":\"\xff\"}", errc::malformed, "malformed JSON");
  fails("{} {}", errc::malformed, "malformed JSON");
  // A double out of range: JSON readers downstream refuse it too.
  fails(R"({"extra":{"n":1e400}})", errc::malformed,
        "malformed JSON at byte 19");
  std::string deep(200, '[');
  deep = "{\"a\":" + deep + std::string(200, ']') + "}";
  fails(deep, errc::too_large, "nesting deeper than");
  std::string ok_depth(100, '[');
  ok_depth = "{\"a\":" + ok_depth + std::string(100, ']') + "}";
  CHECK(normalize_event(ok_depth, 1, received));
}

// -- rate limits --------------------------------------------------------------

TEST_CASE("X-Sentry-Rate-Limits", "[sentry]") {
  CHECK(format_rate_limits({}) == "");
  CHECK(format_rate_limits({{60, {"error", "transaction"}, "key",
                             "key_quota"}})
        == "60:error;transaction:key:key_quota");
  CHECK(format_rate_limits({{30, {}, "organization", ""},
                            {-5, {"attachment"}, "project", "x:y"}})
        == "30::organization, 0:attachment:project:xy");
  CHECK(format_rate_limits({{1, {"", "session"}, "", ""}})
        == "1:session:");
}

// -- keys as readers see them, client addresses, item quantities -------------

namespace {

/// How often the top level of `text` has the (unescaped) key `key`.
size_t top_level_count(std::string_view text, const std::string& key) {
  struct counter : nlohmann::json_sax<json> {
    const std::string& wanted;
    size_t depth = 0;
    size_t hits = 0;
    explicit counter(const std::string& k) : wanted(k) {}
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { ++depth; return true; }
    bool key(string_t& k) override {
      if (depth == 1 && k == wanted)
        ++hits;
      return true;
    }
    bool end_object() override { --depth; return true; }
    bool start_array(std::size_t) override { ++depth; return true; }
    bool end_array() override { --depth; return true; }
    bool parse_error(std::size_t, const std::string&,
                     const nlohmann::detail::exception&) override {
      return false;
    }
  } c{key};
  json::sax_parse(text.begin(), text.end(), &c);
  return c.hits;
}

normalized_event normalize_from(std::string_view text,
                                std::string_view client_ip,
                                bool transaction = false) {
  normalize_options opts;
  opts.client_ip = client_ip;
  opts.transaction = transaction;
  auto ev = normalize_event(text, 7, received, opts);
  if (!ev)
    FAIL("normalize_event failed: " << error_text(ev.error()));
  return std::move(*ev);
}

} // namespace

TEST_CASE("normalization compares keys unescaped", "[sentry]") {
  SECTION("an escaped project is overwritten, not doubled") {
    auto ev = normalize_ok(R"({"proj\u0065ct": 999, "message": "x"})", 5);
    CHECK(top_level_count(ev.json, "project") == 1);
    CHECK(stored(ev)["project"] == 5);
  }
  SECTION("escaped received, event_id and level are overwritten in place") {
    auto ev = normalize_ok(
      R"({"r\u0065ceived": 1, "event\u005fid": "nope", "lev\u0065l": null})");
    CHECK(top_level_count(ev.json, "received") == 1);
    CHECK(top_level_count(ev.json, "event_id") == 1);
    CHECK(top_level_count(ev.json, "level") == 1);
    auto doc = stored(ev);
    CHECK(doc["received"] == received);
    CHECK(doc["event_id"] == ev.event_id);
    CHECK(doc["level"] == "error");
  }
  SECTION("every spelling of a duplicated key is replaced") {
    auto ev = normalize_ok(
      R"({"project": 1, "\u0070roject": 2, "proj\u0065ct": 3})", 9);
    CHECK(top_level_count(ev.json, "project") == 3);
    // Each value replaced in place (the originals had a space after ':').
    CHECK(ev.json.find(": 1") == std::string::npos);
    CHECK(ev.json.find(": 2") == std::string::npos);
    CHECK(ev.json.find(": 3") == std::string::npos);
    CHECK(ev.json.find(": 9") != std::string::npos);
  }
  SECTION("surrogate pairs and other escapes in keys") {
    auto ev = normalize_ok(R"({"\ud83d\ude00\n": 1, "proj\u0065ct": 4})", 2);
    auto doc = stored(ev);
    CHECK(doc["\xF0\x9F\x98\x80\n"] == 1);
    CHECK(doc["project"] == 2);
  }
}

TEST_CASE("user.ip_address {{auto}} becomes the client's address",
          "[sentry]") {
  SECTION("user.ip_address") {
    auto ev = normalize_from(
      R"({"user": {"id": "u1", "ip_address": "{{auto}}"}, "message": "m"})",
      "127.0.0.1");
    auto doc = stored(ev);
    CHECK(doc["user"]["ip_address"] == "127.0.0.1");
    CHECK(doc["user"]["id"] == "u1");
    CHECK(top_level_count(ev.json, "user") == 1);
  }
  SECTION("the legacy interface name") {
    auto doc = stored(normalize_from(
      R"({"sentry.interfaces.User": {"ip_address": "{{auto}}"}})", "::1"));
    CHECK(doc["sentry.interfaces.User"]["ip_address"] == "::1");
    CHECK_FALSE(doc.contains("user"));
  }
  SECTION("request.env.REMOTE_ADDR, which then backs the user") {
    auto doc = stored(normalize_from(
      R"({"request": {"url": "http://x/", "env": {"REMOTE_ADDR": "{{auto}}",
          "SERVER_NAME": "s"}}, "user": {"id": 3}})",
      "10.1.2.3"));
    CHECK(doc["request"]["env"]["REMOTE_ADDR"] == "10.1.2.3");
    CHECK(doc["request"]["env"]["SERVER_NAME"] == "s");
    CHECK(doc["request"]["url"] == "http://x/");
    CHECK(doc["user"]["ip_address"] == "10.1.2.3");
    CHECK(doc["user"]["id"] == 3);
  }
  SECTION("a valid REMOTE_ADDR fills a missing user address") {
    auto doc = stored(normalize_from(
      R"({"request": {"env": {"REMOTE_ADDR": "192.0.2.9"}}})", "10.0.0.1"));
    CHECK(doc["user"]["ip_address"] == "192.0.2.9");
  }
  SECTION("no user: only javascript, cocoa and objc get one") {
    for (auto platform : {"javascript", "cocoa", "objc"}) {
      auto doc = stored(normalize_from(
        std::string{R"({"platform": ")"} + platform + "\"}", "10.0.0.2"));
      CHECK(doc["user"]["ip_address"] == "10.0.0.2");
    }
    auto doc = stored(normalize_from(R"({"platform": "python"})", "10.0.0.2"));
    CHECK_FALSE(doc.contains("user"));
    auto null_user = stored(normalize_from(
      R"({"platform": "javascript", "user": null})", "10.0.0.3"));
    CHECK(null_user["user"]["ip_address"] == "10.0.0.3");
  }
  SECTION("a real address is kept; no client address keeps {{auto}}") {
    auto doc = stored(normalize_from(
      R"({"platform": "javascript", "user": {"ip_address": "1.2.3.4"}})",
      "10.0.0.2"));
    CHECK(doc["user"]["ip_address"] == "1.2.3.4");
    auto kept = stored(normalize_from(
      R"({"user": {"ip_address": "{{auto}}"}})", ""));
    CHECK(kept["user"]["ip_address"] == "{{auto}}");
    auto odd = stored(normalize_from(R"({"user": "jane"})", "10.0.0.2"));
    CHECK(odd["user"] == "jane");
  }
  CHECK(is_ip_address("127.0.0.1"));
  CHECK(is_ip_address("2001:db8::1"));
  CHECK_FALSE(is_ip_address("{{auto}}"));
  CHECK_FALSE(is_ip_address("1.2.3.4:80"));
  CHECK_FALSE(is_ip_address(""));
}

TEST_CASE("a transaction item is a transaction whatever its type says",
          "[sentry]") {
  auto ev = normalize_from(R"({"transaction": "/checkout", "spans": []})", "",
                           true);
  CHECK(ev.transaction);
  CHECK(ev.level == "info");
  auto doc = stored(ev);
  CHECK(doc["type"] == "transaction");
  CHECK(top_level_count(ev.json, "type") == 1);
  auto wrong = normalize_from(R"({"type": "error"})", "", true);
  CHECK(stored(wrong)["type"] == "transaction");
  CHECK(top_level_count(wrong.json, "type") == 1);
}

TEST_CASE("item quantities as Relay counts them", "[sentry]") {
  auto env = parse_envelope(
    "{}\n"
    "{\"type\":\"span\",\"item_count\":3,\"content_type\":"
    "\"application/vnd.sentry.items.span.v2+json\"}\n"
    "{\"items\":[{\"span_id\":\"a\"},{\"span_id\":\"b\"},{\"span_id\":\"c\"}]}\n"
    "{\"type\":\"attachment\",\"length\":5}\nhello\n"
    "{\"type\":\"attachment\",\"length\":0}\n\n"
    "{\"type\":\"session\"}\n{\"sid\":\"s\"}\n"
    "{\"type\":\"client_report\"}\n{\"discarded_events\":[]}\n");
  REQUIRE(env);
  REQUIRE(env->items.size() == 5);
  CHECK(env->items[0].content_type == span_v2_content_type);
  CHECK(env->items[0].item_count == 3u);
  CHECK(item_category(env->items[0].type) == "span");
  CHECK(item_quantity(env->items[0]) == 3);
  CHECK(item_quantity(env->items[1]) == 5);
  CHECK(item_quantity(env->items[2]) == 1); // an empty attachment counts 1
  CHECK(item_quantity(env->items[3]) == 1);
  CHECK(item_category("client_report").empty());
  auto bad = parse_envelope("{}\n{\"type\":\"span\",\"item_count\":-1}\n{}\n");
  REQUIRE_FALSE(bad);
  CHECK(code_of(bad.error()) == errc::malformed);
}
