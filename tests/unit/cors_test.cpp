// Cross-origin rules of the ingest endpoints: the Access-Control-* headers,
// the origin a request comes from, and Sentry's `allowed-domains` matching
// (Sentry's is_valid_origin: `*`, `domain`, `*.domain`, `scheme://host`,
// `host:port`, `*:port`).

#include <catch2/catch.hpp>

#include <map>

#include "messages/cors.hpp"
#include "messages/errors.hpp"

using namespace vigil;

namespace {

origin_policy policy(std::vector<std::string> entries) {
  auto p = origin_policy::parse(entries);
  REQUIRE(p);
  return *p;
}

std::map<std::string, std::string>
headers_of(std::string_view origin) {
  std::map<std::string, std::string> out;
  for (auto& [k, v] : cors_headers(origin))
    out[k] = v;
  return out;
}

} // namespace

TEST_CASE("CORS headers echo the Origin or say *", "[cors]") {
  auto h = headers_of("https://app.example.com");
  CHECK(h["Access-Control-Allow-Origin"] == "https://app.example.com");
  CHECK(h["Vary"] == "Origin");
  CHECK(h["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS");
  for (auto name : {"x-sentry-auth", "x-requested-with", "content-type",
                    "origin", "accept", "authorization", "sentry-trace",
                    "baggage"})
    CHECK(h["Access-Control-Allow-Headers"].find(name) != std::string::npos);
  CHECK(h["Access-Control-Expose-Headers"]
        == "x-sentry-error, x-sentry-rate-limits, retry-after");
  CHECK(h["Access-Control-Max-Age"] == "3600");
  auto none = headers_of("");
  CHECK(none["Access-Control-Allow-Origin"] == "*");
  CHECK(none.count("Vary") == 0);
  // Never echo what could split a header or is not ASCII.
  CHECK(headers_of("http://a\r\nSet-Cookie: x")["Access-Control-Allow-Origin"]
        == "*");
  CHECK(headers_of("http://\xff\xfe")["Access-Control-Allow-Origin"] == "*");
  CHECK(headers_of(std::string(5000, 'a'))["Access-Control-Allow-Origin"]
        == "*");
}

TEST_CASE("request_origin: Origin, else the Referer's origin", "[cors]") {
  CHECK(request_origin("http://a.test:8080", "") == "http://a.test:8080");
  CHECK(request_origin("", "https://b.test/page?q=1#x") == "https://b.test");
  CHECK(request_origin("null", "https://u:p@b.test:444/x")
        == "https://b.test:444");
  CHECK(request_origin("", "") == "");
  CHECK(request_origin("", "not a url") == "");
  CHECK(request_origin("  ", "http://c.test") == "http://c.test");
}

TEST_CASE("allowed-domains: Sentry's origin rules", "[cors]") {
  SECTION("default and *") {
    origin_policy any;
    CHECK(any.allows_any());
    CHECK(any.allows("http://whatever.test"));
    CHECK(policy({"*"}).allows("https://x.test:1234"));
  }
  SECTION("no origin is always taken; an empty list refuses every origin") {
    auto none = policy({});
    CHECK(none.allows(""));
    CHECK_FALSE(none.allows("http://a.test"));
    CHECK(policy({"a.test"}).allows(""));
  }
  SECTION("a bare domain: any scheme, any port, not its subdomains") {
    auto p = policy({"example.com"});
    CHECK(p.allows("http://example.com"));
    CHECK(p.allows("https://EXAMPLE.com:8443"));
    CHECK_FALSE(p.allows("http://www.example.com"));
    CHECK_FALSE(p.allows("http://example.com.evil.test"));
    CHECK_FALSE(p.allows("http://badexample.com"));
    CHECK_FALSE(p.allows("null"));
    CHECK_FALSE(p.allows("garbage"));
  }
  SECTION("*.domain: the domain and its subdomains") {
    auto p = policy({"*.example.com"});
    CHECK(p.allows("https://example.com"));
    CHECK(p.allows("https://a.b.example.com:99"));
    CHECK_FALSE(p.allows("https://notexample.com"));
    CHECK_FALSE(p.allows("https://example.com.evil.test"));
  }
  SECTION("scheme and port") {
    auto p = policy({"https://example.com/"});
    CHECK(p.allows("https://example.com"));
    CHECK_FALSE(p.allows("http://example.com"));
    auto q = policy({"http://127.0.0.1:8080", "*:9000", "localhost:80"});
    CHECK(q.allows("http://127.0.0.1:8080"));
    CHECK_FALSE(q.allows("http://127.0.0.1:8081"));
    CHECK_FALSE(q.allows("https://127.0.0.1:8080"));
    CHECK(q.allows("http://anything.test:9000"));
    CHECK(q.allows("http://localhost"));   // 80 is http's port
    CHECK_FALSE(q.allows("https://localhost"));
    CHECK(policy({"[::1]:3000"}).allows("http://[::1]:3000"));
    CHECK(policy({"example.com/*"}).allows("http://example.com"));
  }
}

TEST_CASE("allowed-domains: bad entries are named", "[cors]") {
  auto err = [](std::vector<std::string> entries) {
    auto p = origin_policy::parse(entries);
    REQUIRE_FALSE(p);
    return error_text(p.error());
  };
  CHECK_THAT(err({"*", "example.com/path"}),
             Catch::Contains("entry 2 'example.com/path'")
               && Catch::Contains("no path"));
  CHECK_THAT(err({"example.com:99999"}), Catch::Contains("not a port"));
  CHECK_THAT(err({"exa*mple.com"}), Catch::Contains("not a host name"));
  CHECK_THAT(err({""}), Catch::Contains("empty"));
  CHECK_THAT(err({"b\xc3\xbc" "cher.de"}), Catch::Contains("punycode"));
  CHECK_THAT(err({"1http://a.test"}), Catch::Contains("not a URL scheme"));
  CHECK_THAT(err({"a b"}), Catch::Contains("entry 1"));
}
