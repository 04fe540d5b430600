// The digest and alert mails built from data: subjects as Sentry's, the
// List-Id, one inline chart per issue, escaping, short ids.

#include <catch2/catch.hpp>

#include "messages/digest_mail.hpp"

using namespace vigil;

namespace {

digest_issue issue(int64_t id, std::string title, int64_t events,
                   int64_t users, std::string png = "") {
  digest_issue i;
  i.group_id = id;
  i.title = std::move(title);
  i.culprit = "app.views in checkout";
  i.level = "error";
  i.event_count = events;
  i.user_count = users;
  i.chart_png = std::move(png);
  return i;
}

digest_mail_input input() {
  digest_mail_input in;
  in.org_slug = "acme";
  in.project_slug = "backend";
  in.start = 1796256000; // 2026-12-03 00:00 UTC
  in.end = in.start + 600;
  in.to = {"ann@example.com"};
  in.url_prefix = "http://127.0.0.1:9001/";
  return in;
}

std::string header(const mail_message& m, const std::string& name) {
  for (const auto& [k, v] : m.headers)
    if (k == name)
      return v;
  return {};
}

} // namespace

TEST_CASE("short ids are the slug and the id in Crockford base32",
          "[digest_mail]") {
  CHECK(issue_short_id("backend", 1) == "BACKEND-1");
  CHECK(issue_short_id("backend", 47) == "BACKEND-1F");
  CHECK(issue_short_id("my-app", 0) == "MY-APP-0");
  CHECK(issue_short_id("x", 32 * 32) == "X-100");
}

TEST_CASE("a digest of several issues: subject, parts, charts, headers",
          "[digest_mail]") {
  auto in = input();
  in.rules = {{"default", "Send a notification for new issues",
               {issue(3, "KeyError: 'x'", 30, 4, "PNG3"),
                issue(1, "<script>alert(1)</script>", 15, 2, "PNG1"),
                issue(2, "ZeroDivisionError", 5, 1)}},
              {"r2", "Many events", {issue(3, "KeyError: 'x'", 30, 4, "PNG3")}}};
  auto m = build_digest_mail(in);
  CHECK(m.subject == "BACKEND-3 - 3 new alerts since Dec 3, 2026, 00:00 UTC");
  CHECK(m.to == std::vector<std::string>{"ann@example.com"});
  CHECK(header(m, "List-Id") == "<backend.acme.localhost>");
  CHECK(header(m, "X-Sentry-Project") == "backend");
  CHECK(header(m, "Reply-To").empty());
  // Issue 3 is under two rules: its chart is attached once.
  REQUIRE(m.images.size() == 2);
  CHECK(m.images[0].content_id == "chart-3@vigil");
  CHECK(m.images[0].bytes == "PNG3");
  CHECK(m.images[1].content_id == "chart-1@vigil");
  CHECK(m.html.find("cid:chart-3@vigil") != std::string::npos);
  CHECK(m.html.find("cid:chart-2@vigil") == std::string::npos);
  CHECK(m.html.find("<script>") == std::string::npos);
  CHECK(m.html.find("&lt;script&gt;") != std::string::npos);
  CHECK(m.text.find("30 events, 4 users") != std::string::npos);
  CHECK(m.text.find("5 events, 1 user\n") != std::string::npos);
  CHECK(m.text.find("http://127.0.0.1:9001/organizations/acme/issues/3/")
        != std::string::npos);
  CHECK(m.text.find("Many events") != std::string::npos);
  CHECK(mail_problem(m).empty());
}

TEST_CASE("a digest of one issue is an alert mail", "[digest_mail]") {
  auto in = input();
  in.reply_to = "7+abc@reply.example.com";
  in.rules = {{"default", "New issues", {issue(7, "TypeError: x", 1, 1)}}};
  auto m = build_digest_mail(in);
  CHECK(m.subject == "BACKEND-7 - TypeError: x");
  CHECK(header(m, "Reply-To") == "7+abc@reply.example.com");
  CHECK(m.images.empty());
  CHECK(m.text.find("1 event, 1 user") != std::string::npos);
}

TEST_CASE("List-Id labels are dot-atoms", "[digest_mail]") {
  auto in = input();
  in.project_slug = "my app";
  in.org_slug = "a.b";
  in.list_namespace = "example.com";
  in.rules = {{"d", "New", {issue(1, "x", 1, 1)}}};
  CHECK(header(build_digest_mail(in), "List-Id") == "<my-app.a-b.example.com>");
}
