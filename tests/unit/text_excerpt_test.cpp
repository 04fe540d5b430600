// Text quoted from requests: cut on UTF-8 character boundaries, escaped for
// logs; and JSON error answers that never throw on invalid UTF-8.

#include <catch2/catch.hpp>

#include <string>

#include "messages/text_excerpt.hpp"

using namespace vigil;

TEST_CASE("utf8_prefix never ends inside a character", "[text]") {
  std::string s = "ab\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; // ab é € 😀 z
  CHECK(utf8_prefix(s, 100) == s);
  CHECK(utf8_prefix(s, 2) == "ab");
  CHECK(utf8_prefix(s, 3) == "ab");
  CHECK(utf8_prefix(s, 4) == "ab\xc3\xa9");
  CHECK(utf8_prefix(s, 6) == "ab\xc3\xa9");
  CHECK(utf8_prefix(s, 7) == "ab\xc3\xa9\xe2\x82\xac");
  CHECK(utf8_prefix(s, 10) == "ab\xc3\xa9\xe2\x82\xac");
  CHECK(utf8_prefix(s, 11) == "ab\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  CHECK(utf8_prefix(s, 0).empty());
  // Not UTF-8: a run of continuation bytes is cut where asked.
  std::string junk(10, '\x80');
  CHECK(utf8_prefix(junk, 5).size() == 5);
  CHECK(utf8_prefix("\xff\xff\xff", 2) == "\xff\xff");
}

TEST_CASE("excerpt marks a cut", "[text]") {
  CHECK(excerpt("short", 10) == "short");
  CHECK(excerpt("0123456789", 4) == "0123...");
  CHECK(excerpt("\xc3\xa9\xc3\xa9", 3) == "\xc3\xa9...");
}

TEST_CASE("printable_excerpt is ASCII whatever it gets", "[text]") {
  CHECK(printable_excerpt("GET /a b") == "GET /a b");
  CHECK(printable_excerpt("/\xff\n\\") == "/\\xff\\x0a\\\\");
  CHECK(printable_excerpt(std::string(300, 'x'), 200)
        == std::string(200, 'x') + "...");
}
