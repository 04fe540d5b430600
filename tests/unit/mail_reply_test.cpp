// The pieces of inbound mail replies: signed reply addresses, webhook
// forms (urlencoded and multipart), and the reply's visible text.

#include <catch2/catch.hpp>

#include "actors/reply_address.hpp"
#include "messages/email_reply.hpp"
#include "messages/errors.hpp"
#include "messages/form_data.hpp"

using namespace vigil;

namespace {
constexpr const char* secret = "a-secret-key-of-some-length";
}

TEST_CASE("reply addresses round-trip and refuse tampering",
          "[mail_reply]") {
  auto addr = make_reply_address(42, 7, secret, "reply.example.com");
  CHECK(addr.starts_with("42.7+"));
  CHECK(addr.ends_with("@reply.example.com"));
  auto t = read_reply_address(addr, secret);
  REQUIRE(t);
  CHECK(t->group_id == 42);
  CHECK(t->org_id == 7);
  // Mail clients may change the case of an address.
  std::string upper;
  for (char c : addr)
    upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(read_reply_address(upper, secret));
  CHECK(read_reply_address("Ann <" + addr + ">", secret)->group_id == 42);
  // Another issue with the same signature, another secret, no signature.
  auto other = "43.7" + addr.substr(4);
  CHECK_FALSE(read_reply_address(other, secret));
  CHECK_FALSE(read_reply_address(addr, "another-secret-key-here"));
  CHECK_FALSE(read_reply_address("42.7@reply.example.com", secret));
  CHECK_FALSE(read_reply_address("garbage", secret));
  CHECK_FALSE(read_reply_address(addr, ""));
  // Sentry's older form: the group alone.
  auto old = make_reply_address(5, 0, secret, "h");
  CHECK(old.starts_with("5+"));
  REQUIRE(read_reply_address(old, secret));
  CHECK(read_reply_address(old, secret)->org_id == 0);
}

TEST_CASE("bare addresses come out of header values", "[mail_reply]") {
  CHECK(bare_address("Ann Example <ann@example.com>") == "ann@example.com");
  CHECK(bare_address("  ann@example.com \r\n") == "ann@example.com");
}

TEST_CASE("webhook forms: urlencoded and multipart", "[mail_reply]") {
  auto f = parse_form("application/x-www-form-urlencoded",
                      "token=abc&body-plain=Hello+there%21%0Aok&To=a%40b");
  REQUIRE(f);
  CHECK(f->at("token") == "abc");
  CHECK(f->at("body-plain") == "Hello there!\nok");
  CHECK(f->at("To") == "a@b");
  std::string body = "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"token\"\r\n\r\n"
                     "t1\r\n"
                     "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"body-plain\"\r\n"
                     "Content-Type: text/plain\r\n\r\n"
                     "line 1\r\nline 2\r\n"
                     "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"attachment-1\"; "
                     "filename=\"a.txt\"\r\n\r\nfile bytes\r\n"
                     "--XyZ--\r\n";
  auto m = parse_form("multipart/form-data; boundary=XyZ", body);
  REQUIRE(m);
  CHECK(m->at("token") == "t1");
  CHECK(m->at("body-plain") == "line 1\r\nline 2");
  CHECK(m->count("attachment-1") == 0);
  CHECK_FALSE(parse_form("multipart/form-data", body));
  CHECK_FALSE(parse_form("multipart/form-data; boundary=nope", body));
  CHECK_FALSE(parse_form("multipart/form-data; boundary=XyZ",
                         "--XyZ\r\nContent-Disposition: form-data; "
                         "name=\"a\"\r\n\r\nno end"));
  CHECK_FALSE(parse_form("application/json", "{}"));
}

TEST_CASE("the visible reply leaves out quotes and signatures",
          "[mail_reply]") {
  CHECK(visible_reply("Fixed in 1.2.\n\nOn Mon, Dec 7, 2026 at 3:04 PM "
                      "Sentry <root@localhost> wrote:\n> BACKEND-1 ...\n")
        == "Fixed in 1.2.");
  CHECK(visible_reply("Looking.\r\nOn Mon, Dec 7, 2026 at 3:04 PM Sentry\r\n"
                      "<root@localhost> wrote:\r\n> x") == "Looking.");
  CHECK(visible_reply("ok\n-- \nAnn\n") == "ok");
  CHECK(visible_reply("ok\n-----Original Message-----\nfrom: x") == "ok");
  CHECK(visible_reply("> only a quote") == "");
  CHECK(visible_reply("  two\nlines  \n") == "two\nlines");
}
