// A project's inbound filters (Relay's names and rules): address blocks,
// globs over releases and error messages, localhost and web crawlers, what
// normalization hands them, and the config errors that name a bad entry.

#include <catch2/catch.hpp>

#include <yaml-cpp/yaml.h>

#include "config/organizations.hpp"
#include "messages/errors.hpp"
#include "messages/inbound_filters.hpp"
#include "messages/sentry_event.hpp"

using namespace vigil;

namespace {

ip_block block(std::string_view text) {
  auto b = parse_ip_block(text);
  REQUIRE(b);
  return *b;
}

filter_facts facts_of_event(std::string_view json) {
  normalize_options opts;
  opts.filter_facts = true;
  auto ev = normalize_event(json, 1, 1700000000.0, opts);
  REQUIRE(ev);
  return ev->facts;
}

std::string projects_error(const std::string& yaml) {
  auto parsed = parse_projects(YAML::Load(yaml));
  REQUIRE_FALSE(parsed);
  return error_text(parsed.error());
}

} // namespace

TEST_CASE("ip blocks: addresses and CIDR, v4 and v6", "[filters]") {
  CHECK(ip_in_block("10.1.2.3", block("10.0.0.0/8")));
  CHECK_FALSE(ip_in_block("11.1.2.3", block("10.0.0.0/8")));
  CHECK(ip_in_block("192.168.1.77", block("192.168.1.64/26")));
  CHECK_FALSE(ip_in_block("192.168.1.128", block("192.168.1.64/26")));
  CHECK(ip_in_block("1.2.3.4", block("1.2.3.4")));
  CHECK_FALSE(ip_in_block("1.2.3.5", block("1.2.3.4")));
  CHECK(ip_in_block("2001:db8::1", block("2001:db8::/32")));
  CHECK_FALSE(ip_in_block("2001:db9::1", block("2001:db8::/32")));
  // A v4 address never falls in a v6 block, nor the other way round.
  CHECK_FALSE(ip_in_block("10.0.0.1", block("::/0")));
  CHECK(ip_in_block("8.8.8.8", block("0.0.0.0/0")));
  CHECK_FALSE(ip_in_block("not an address", block("0.0.0.0/0")));
  for (auto bad : {"", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/",
                   "10.0.0.0/x", "example.com"})
    CHECK_FALSE(parse_ip_block(bad));
}

TEST_CASE("globs: * and ?, ASCII case ignored", "[filters]") {
  CHECK(glob_matches("*", ""));
  CHECK(glob_matches("*", "anything"));
  CHECK(glob_matches("1.*", "1.0.3"));
  CHECK_FALSE(glob_matches("1.*", "2.1.0"));
  CHECK(glob_matches("*Timeout*", "ReadTimeout: read timed out"));
  CHECK(glob_matches("*timeout*", "READTIMEOUT"));
  CHECK(glob_matches("v?.0", "v2.0"));
  CHECK_FALSE(glob_matches("v?.0", "v10.0"));
  CHECK(glob_matches("a*b*c", "a-b-b-c"));
  CHECK_FALSE(glob_matches("a*b*c", "a-b-b-d"));
  CHECK(glob_matches("exact", "exact"));
  CHECK_FALSE(glob_matches("exact", "exact and more"));
  // A pathological pattern stays linear: this returns at once.
  std::string text(20000, 'a');
  CHECK_FALSE(glob_matches("*a*a*a*a*a*a*a*a*b", text));
}

TEST_CASE("web crawlers: Relay's list", "[filters]") {
  CHECK(is_web_crawler(
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"));
  CHECK(is_web_crawler("Mozilla/5.0 (compatible; bingbot/2.0)"));
  CHECK(is_web_crawler("Slackbot-LinkExpanding 1.0"));
  CHECK(is_web_crawler("SomeBot/1.0"));
  CHECK(is_web_crawler("AhrefsBot (compatible; spider)"));
  CHECK_FALSE(is_web_crawler(
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"));
  // "bot" inside a word is not a crawler.
  CHECK_FALSE(is_web_crawler("Robotics-Client/3.1"));
  CHECK_FALSE(is_web_crawler(""));
}

TEST_CASE("matching_filter: each filter and Relay's order", "[filters]") {
  inbound_filters f;
  f.releases = {"0.9.*"};
  f.error_messages = {"*ConnectionResetError*", "ignore me*"};
  f.blacklisted_ips = {block("203.0.113.0/24")};
  f.localhost = true;
  f.web_crawlers = true;
  filter_facts plain;
  plain.user_ip = "198.51.100.4";
  plain.url = "https://shop.example.com/cart";
  plain.messages = {"ValueError: bad cart"};
  plain.release = "1.0.0";
  CHECK_FALSE(matching_filter(f, plain, "198.51.100.4"));

  CHECK(matching_filter(f, plain, "203.0.113.9") == "ip-address");
  auto old = plain;
  old.release = "0.9.3";
  CHECK(matching_filter(f, old, "198.51.100.4") == "release-version");
  // The address is checked first.
  CHECK(matching_filter(f, old, "203.0.113.9") == "ip-address");
  auto reset = plain;
  reset.messages.push_back("ConnectionResetError: peer went away");
  CHECK(matching_filter(f, reset, "198.51.100.4") == "error-message");
  auto local = plain;
  local.user_ip = "127.0.0.1";
  CHECK(matching_filter(f, local, "198.51.100.4") == "localhost");
  auto local_url = plain;
  local_url.url = "http://localhost:8000/cart";
  CHECK(matching_filter(f, local_url, "198.51.100.4") == "localhost");
  auto bot = plain;
  bot.user_agent = "Googlebot/2.1";
  CHECK(matching_filter(f, bot, "198.51.100.4") == "web-crawlers");

  // Filters that are off filter nothing.
  inbound_filters none;
  CHECK(none.empty());
  CHECK_FALSE(matching_filter(none, bot, "203.0.113.9"));
  CHECK_FALSE(matching_filter(none, local, "203.0.113.9"));
}

TEST_CASE("normalization hands the filters what they read", "[filters]") {
  auto f = facts_of_event(R"({
    "release": "app@2.0",
    "exception": {"values": [
      {"type": "KeyError", "value": "'user'"},
      {"type": "RuntimeError", "value": "wrapped"}]},
    "logentry": {"formatted": "checkout failed"},
    "user": {"ip_address": "::1"},
    "request": {"url": "http://127.0.0.1:5000/pay",
                "headers": {"User-Agent": "curl/8.0"}}})");
  CHECK(f.release == "app@2.0");
  CHECK(f.user_ip == "::1");
  CHECK(f.url == "http://127.0.0.1:5000/pay");
  CHECK(f.user_agent == "curl/8.0");
  REQUIRE(f.messages.size() == 3);
  CHECK(f.messages[0] == "KeyError: 'user'");
  CHECK(f.messages[1] == "RuntimeError: wrapped");
  CHECK(f.messages[2] == "checkout failed");
  // Headers as Sentry's list of pairs, the name in any case.
  auto g = facts_of_event(R"({"message": "hi", "request": {
    "headers": [["user-agent", "bingbot/2.0"]]}})");
  CHECK(g.user_agent == "bingbot/2.0");
  CHECK(g.messages == std::vector<std::string>{"hi"});
  // Not asked for: not filled.
  auto ev = normalize_event(R"({"release": "x"})", 1, 1700000000.0,
                            normalize_options{});
  REQUIRE(ev);
  CHECK(ev->facts.release.empty());
}

TEST_CASE("projects[].filters: parsed, bad entries named", "[filters]") {
  auto parsed = parse_projects(YAML::Load(R"(
- id: 1
  organization: 1
  slug: web
  filters:
    localhost: true
    web-crawlers: false
    error-messages: ["*Timeout*"]
    releases: ["0.*", "beta-*"]
    blacklisted-ips: [10.0.0.0/8, "2001:db8::1"]
)"));
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 1);
  const auto& f = (*parsed)[0].filters;
  CHECK(f.localhost);
  CHECK_FALSE(f.web_crawlers);
  CHECK(f.error_messages == std::vector<std::string>{"*Timeout*"});
  CHECK(f.releases.size() == 2);
  CHECK(f.blacklisted_ips.size() == 2);

  auto project = [](const std::string& filters) {
    return "- id: 1\n  organization: 1\n  slug: web\n  filters: " + filters
           + "\n";
  };
  CHECK_THAT(projects_error(project("{browser-extensions: true}")),
             Catch::Contains("unknown filter 'browser-extensions'"));
  CHECK_THAT(projects_error(project("{localhost: maybe}")),
             Catch::Contains("localhost: expected true or false"));
  CHECK_THAT(projects_error(project("{releases: 1.0}")),
             Catch::Contains("releases: expected a list of strings"));
  CHECK_THAT(projects_error(project("{error-messages: [\"a\", \"\"]}")),
             Catch::Contains("error-messages: entry 2"));
  CHECK_THAT(projects_error(project("{blacklisted-ips: [10.0.0.0/40]}")),
             Catch::Contains("blacklisted-ips: entry 1"));
  CHECK_THAT(projects_error(project("[localhost]")),
             Catch::Contains("filters: expected a map"));
}
