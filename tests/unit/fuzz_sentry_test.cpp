// Hostile input through the Sentry protocol parsers: mutated envelopes,
// events, auth headers, query strings and DSNs. Deterministic (fixed seed);
// the project also builds this test with AddressSanitizer and UBSan
// (fuzz_asan). Every accepted event must come back as valid JSON.

#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "messages/sentry_auth.hpp"
#include "messages/sentry_envelope.hpp"
#include "messages/sentry_event.hpp"
#include "messages/sentry_rate_limits.hpp"

using namespace vigil;

namespace {

std::string read_fixture(const std::string& name) {
  std::ifstream in{std::string{VIGIL_FIXTURES} + "/" + name,
                   std::ios::binary};
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

/// Bytes that matter to the parsers under test.
constexpr std::string_view interesting = "{}[]\":,\\\n\r \t=&%@/?#-0123456789"
                                         "abcdefABCDEFen\xC3\xA9\xFF\x00";

std::string mutate(std::string s, std::mt19937& rng) {
  std::uniform_int_distribution<int> op_dist(0, 6);
  int ops = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < ops; ++k) {
    auto pick = [&](size_t n) { return n == 0 ? 0 : rng() % n; };
    char c = rng() % 2 == 0
               ? interesting[pick(interesting.size())]
               : static_cast<char>(rng() & 0xFF);
    switch (op_dist(rng)) {
      case 0: // flip a byte
        if (!s.empty())
          s[pick(s.size())] = c;
        break;
      case 1: // insert
        s.insert(s.begin() + static_cast<long>(pick(s.size() + 1)), c);
        break;
      case 2: // erase a run
        if (!s.empty()) {
          auto at = pick(s.size());
          s.erase(at, 1 + pick(std::min<size_t>(16, s.size() - at)));
        }
        break;
      case 3: // truncate
        s.resize(pick(s.size() + 1));
        break;
      case 4: { // duplicate a slice
        if (s.empty())
          break;
        auto at = pick(s.size());
        auto len = 1 + pick(std::min<size_t>(64, s.size() - at));
        s.insert(pick(s.size() + 1), s.substr(at, len));
        break;
      }
      case 5: { // rewrite a digit run (lengths, ports, ids)
        auto at = s.find_first_of("0123456789", pick(s.size()));
        if (at != std::string::npos)
          s.replace(at, 1, std::to_string(rng() % 3 == 0 ? rng() : rng() % 64));
        break;
      }
      default: // swap two bytes
        if (s.size() > 1)
          std::swap(s[pick(s.size())], s[pick(s.size())]);
    }
  }
  return s;
}

/// The path a real envelope takes: frame it, normalize its event items.
/// Returns whether the envelope was accepted.
bool run_envelope(std::string_view body) {
  auto env = parse_envelope(body, 10);
  if (!env)
    return false;
  for (auto& item : env->items) {
    (void) item_category(item.type);
    if (item.type == "event" || item.type == "transaction") {
      auto ev = normalize_event(item.payload, 1, 1700000000.0,
                                env->event_id
                                  ? std::optional<std::string_view>{
                                    *env->event_id}
                                  : std::nullopt);
      if (ev) {
        INFO(item.payload);
        REQUIRE(nlohmann::json::accept(ev->json));
      }
    }
  }
  return true;
}

/// Returns whether the event was accepted.
bool run_event(std::string_view text) {
  auto ev = normalize_event(text, 9, 1700000000.0, "not-a-hint");
  if (!ev)
    return false;
  INFO(text);
  REQUIRE(nlohmann::json::accept(ev->json));
  REQUIRE(ev->event_id.size() == 32);
  REQUIRE(ev->grouping_hash.size() == 32);
  return true;
}

} // namespace

TEST_CASE("fuzz: envelopes", "[fuzz][sentry]") {
  std::vector<std::string> seeds = {
    read_fixture("sentry_sdk_attachment.envelope"),
    read_fixture("sentry_sdk_transaction.envelope"),
    "{\"dsn\":\"http://k@h/1\"}\n{\"type\":\"event\"}\n{\"message\":\"a\"}\n"
    "{\"type\":\"attachment\",\"length\":3}\na\nb\n",
    "{}\n{\"type\":\"event\",\"length\":2}\n{}\n\n",
  };
  REQUIRE(seeds[0].size() > 100);
  std::mt19937 rng{20261123};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    auto& seed = seeds[static_cast<size_t>(i) % seeds.size()];
    accepted += run_envelope(mutate(seed, rng));
  }
  // The mutations must reach past the first check often enough to matter.
  CHECK(accepted > 1000);
  // Pure noise and every prefix of a real envelope.
  for (int i = 0; i < 500; ++i) {
    std::string noise(rng() % 256, '\0');
    for (auto& c : noise)
      c = interesting[rng() % interesting.size()];
    run_envelope(noise);
  }
  for (size_t n = 0; n <= seeds[0].size(); n += 7)
    run_envelope(std::string_view{seeds[0]}.substr(0, n));
}

TEST_CASE("fuzz: events", "[fuzz][sentry]") {
  std::vector<std::string> seeds = {
    read_fixture("sentry_sdk_message.json"),
    read_fixture("sentry_sdk_exception.json"),
    R"({"exception":[{"type":"E","stacktrace":{"frames":[{"in_app":true}]}}],)"
    R"("fingerprint":["{{ default }}",1,true,null],"timestamp":"2023-11-14"})",
    R"({"event_id":"8E0E3D6A-1F2B-4C3D-9E8F-0A1B2C3D4E5F","level":null})",
    "{}",
  };
  REQUIRE(seeds[1].size() > 100);
  std::mt19937 rng{5};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i)
    accepted += run_event(
      mutate(seeds[static_cast<size_t>(i) % seeds.size()], rng));
  CHECK(accepted > 1000);
  for (size_t n = 0; n <= seeds[1].size(); n += 5)
    run_event(std::string_view{seeds[1]}.substr(0, n));
  // Deep nesting in every container kind stays bounded.
  for (auto open : {"[", "{\"a\":"}) {
    std::string deep = "{\"x\":";
    for (int d = 0; d < 5000; ++d)
      deep += open;
    run_event(deep);
  }
}

TEST_CASE("fuzz: escaped keys and {{auto}} addresses", "[fuzz][sentry]") {
  // What the key unescaping and the IP rewrite see: escapes (some broken
  // by the mutations), user and request objects, legacy names.
  std::vector<std::string> seeds = {
    R"({"proj\u0065ct":999,"\ud83d\ude00":1,"r\u0065ceived":"x",)"
    R"("user":{"ip_address":"{{auto}}","id":"\u0041"}})",
    R"({"platform":"javascript","request":{"env":{"REMOTE_ADDR":"{{auto}}",)"
    R"("X":[1,{"y":null}]}},"user":null,"lev\u0065l":null})",
    R"({"sentry.interfaces.User":{"ip_address":"{{auto}}"},"type":"error",)"
    R"("request":{"env":{"REMOTE_ADDR":"10.0.0.1"}}})",
  };
  std::mt19937 rng{1313};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    auto text = mutate(seeds[static_cast<size_t>(i) % seeds.size()], rng);
    normalize_options opts;
    opts.client_ip = i % 3 == 0 ? "" : (i % 3 == 1 ? "127.0.0.1" : "::1");
    opts.transaction = i % 5 == 0;
    auto ev = normalize_event(text, 9, 1700000000.0, opts);
    if (!ev)
      continue;
    ++accepted;
    INFO(text);
    REQUIRE(nlohmann::json::accept(ev->json));
    auto doc = nlohmann::json::parse(ev->json);
    REQUIRE(doc["project"] == 9);
  }
  CHECK(accepted > 1000);
}

TEST_CASE("fuzz: auth headers, query strings, DSNs", "[fuzz][sentry]") {
  std::vector<std::string> auth_seeds = {
    "Sentry sentry_key=0123456789abcdef0123456789abcdef, sentry_version=7, "
    "sentry_client=sentry.python/1.9.10",
    "sentry_key=\"abc\",sentry_secret=\"x\"",
  };
  std::vector<std::string> query_seeds = {
    "sentry_key=abc&sentry_version=7", "?a=%41%zz&sentry_key=a+b%2",
  };
  std::vector<std::string> dsn_seeds = {
    "http://0123456789abcdef0123456789abcdef@127.0.0.1:9001/42",
    "https://pub:secret@[::1]:443/prefix/7/",
  };
  std::mt19937 rng{77};
  for (int i = 0; i < 10000; ++i) {
    auto a = parse_sentry_auth(mutate(auth_seeds[i % 2], rng));
    if (a)
      REQUIRE(!a->public_key.empty());
    (void) query_param(mutate(query_seeds[i % 2], rng), "sentry_key");
    auto d = parse_dsn(mutate(dsn_seeds[i % 2], rng));
    if (d) {
      REQUIRE(d->project_id > 0);
      REQUIRE(!d->host.empty());
    }
    (void) is_public_key(mutate(std::string(32, 'a'), rng));
  }
  std::vector<rate_limit_entry> limits{{static_cast<int64_t>(rng()),
                                        {mutate("error", rng)},
                                        mutate("key", rng),
                                        mutate("a:b,c;d", rng)}};
  auto header = format_rate_limits(limits);
  REQUIRE(std::count(header.begin(), header.end(), ',') == 0);
}
