// The one JSON string writer: escapes, UTF-8 repair (one U+FFFD per maximal
// invalid subpart, as Python's decode('utf-8', 'replace')), cuts on a
// character boundary, and identity on valid text.

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "messages/json_string.hpp"
#include "messages/json_writer.hpp"
#include "messages/text_excerpt.hpp"

using namespace vigil;

namespace {

const std::string fffd = "\xEF\xBF\xBD";

std::string json_of(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string json_of(std::string_view s, size_t max_bytes) {
  std::string out;
  append_json_string(out, s, max_bytes);
  return out;
}

std::string lit(std::string_view s) {
  return '"' + std::string{s} + '"';
}

/// The string a strict JSON parser (simdjson: it validates UTF-8) reads
/// back from `json`; "<invalid>" if it refuses.
std::string parse_back(const std::string& json) {
  simdjson::dom::parser parser;
  std::string_view out;
  if (parser.parse(json).get_string().get(out) != simdjson::SUCCESS)
    return "<invalid>";
  return std::string{out};
}

} // namespace

TEST_CASE("append_json_string escapes what JSON requires and nothing else",
          "[json]") {
  CHECK(json_of("") == "\"\"");
  CHECK(json_of("plain text") == "\"plain text\"");
  CHECK(json_of("a\"b") == "\"a\\\"b\"");
  CHECK(json_of("a\\b") == "\"a\\\\b\"");
  CHECK(json_of("\n\r\t\b\f") == "\"\\n\\r\\t\\b\\f\"");
  CHECK(json_of(std::string_view{"\0", 1}) == "\"\\u0000\"");
  CHECK(json_of("\x01\x1f") == "\"\\u0001\\u001f\"");
  // Not escaped: '/', DEL and non-ASCII characters.
  CHECK(json_of("a/b\x7f") == "\"a/b\x7f\"");
  CHECK(json_of("caf\xC3\xA9") == "\"caf\xC3\xA9\"");
  // Escapes inside long runs: the eight-byte fast path stops at them.
  std::string run(21, 'x');
  CHECK(json_of(run + "\"" + run + "\n" + run)
        == lit(run + "\\\"" + run + "\\n" + run));
}

TEST_CASE("append_json_string passes well-formed UTF-8 unchanged", "[json]") {
  for (std::string s : {
         "\xC2\x80",             // U+0080, the first two-byte character
         "\xDF\xBF",             // U+07FF
         "\xE0\xA0\x80",         // U+0800, the first three-byte character
         "\xED\x9F\xBF",         // U+D7FF, just below the surrogates
         "\xEE\x80\x80",         // U+E000, just above them
         "\xEF\xBF\xBF",         // U+FFFF
         "\xEF\xBF\xBD",         // U+FFFD itself
         "\xF0\x90\x80\x80",     // U+10000, the first four-byte character
         "\xF4\x8F\xBF\xBF",     // U+10FFFF, the last one
         "\xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD\xE6\x96\x87",
       }) {
    CAPTURE(s);
    CHECK(json_of(s) == lit(s));
    CHECK(json_of(std::string(13, 'a') + s + std::string(13, 'b'))
          == lit(std::string(13, 'a') + s + std::string(13, 'b')));
  }
}

TEST_CASE("append_json_string replaces each maximal invalid subpart",
          "[json]") {
  SECTION("stray continuation bytes and bytes that never start one") {
    CHECK(json_of("\x80") == lit(fffd));
    CHECK(json_of("\x80\xBF") == lit(fffd + fffd));
    CHECK(json_of("a\xFF" "b\xFE") == lit("a" + fffd + "b" + fffd));
    CHECK(json_of("\xF5\x80\x80\x80") == lit(fffd + fffd + fffd + fffd));
  }
  SECTION("overlong forms") {
    CHECK(json_of("\xC0\xAF") == lit(fffd + fffd));
    CHECK(json_of("\xC1\xBF") == lit(fffd + fffd));
    CHECK(json_of("\xE0\x80\xAF") == lit(fffd + fffd + fffd));
    CHECK(json_of("\xE0\x9F\xBF") == lit(fffd + fffd + fffd));
    CHECK(json_of("\xF0\x80\x80\xAF") == lit(fffd + fffd + fffd + fffd));
    CHECK(json_of("\xF0\x8F\xBF\xBF") == lit(fffd + fffd + fffd + fffd));
  }
  SECTION("surrogates") {
    CHECK(json_of("\xED\xA0\x80") == lit(fffd + fffd + fffd));
    CHECK(json_of("\xED\xBF\xBF") == lit(fffd + fffd + fffd));
    // A CESU-8 pair is two surrogates: six replacements.
    CHECK(json_of("\xED\xA0\xBD\xED\xB8\x80") == lit(fffd + fffd + fffd + fffd
                                                  + fffd + fffd));
  }
  SECTION("code points above U+10FFFF") {
    CHECK(json_of("\xF4\x90\x80\x80") == lit(fffd + fffd + fffd + fffd));
    CHECK(json_of("\xF7\xBF\xBF\xBF") == lit(fffd + fffd + fffd + fffd));
  }
  SECTION("truncated sequences: one replacement each") {
    CHECK(json_of("\xC3") == lit(fffd));
    CHECK(json_of("\xE2\x82") == lit(fffd));
    CHECK(json_of("\xF0\x9F\x98") == lit(fffd));
    CHECK(json_of("\xE2\x82" "A") == lit(fffd + "A"));
    CHECK(json_of("\xF0\x9F" "\xE2\x82\xAC") == lit(fffd + "\xE2\x82\xAC"));
    CHECK(json_of("\xE2\x82\xAC" "b\xE2\x82" "c")
          == lit("\xE2\x82\xAC" "b" + fffd + "c"));
  }
  SECTION("inside long ASCII runs") {
    std::string run(19, 'x');
    CHECK(json_of(run + "\xE2\x82" + run + "\xED\xA0\x80\"")
          == lit(run + fffd + run + fffd + fffd + fffd + "\\\""));
  }
}

TEST_CASE("append_json_string with max_bytes cuts on a character boundary",
          "[json]") {
  std::string s = "ab\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"; // ab é € 😀 z
  CHECK(json_of(s, 100) == lit(s));
  CHECK(json_of(s, 0) == "\"\"");
  CHECK(json_of(s, 3) == lit("ab"));
  CHECK(json_of(s, 4) == lit("ab\xC3\xA9"));
  CHECK(json_of(s, 6) == lit("ab\xC3\xA9"));
  CHECK(json_of(s, 7) == lit("ab\xC3\xA9\xE2\x82\xAC"));
  CHECK(json_of(s, 10) == lit("ab\xC3\xA9\xE2\x82\xAC"));
  CHECK(json_of(s, 11) == lit("ab\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
  // The bound is on the text taken, not on what its escapes take.
  CHECK(json_of("\"\"\"\"", 2) == "\"\\\"\\\"\"");
  // Invalid bytes are no character: the cut falls where asked.
  CHECK(json_of("a\x80\x80\x80\x80", 3) == lit("a" + fffd + fffd));
  CHECK(utf8_prefix("a\x80\x80\x80\x80", 3) == "a\x80\x80");
  // A truncated sequence is cut where asked, and then still replaced.
  CHECK(json_of("ab\xE2\x82", 3) == lit("ab" + fffd));
}

TEST_CASE("append_json_string is the identity on valid text and always "
          "valid JSON",
          "[json][fuzz]") {
  std::mt19937_64 rng{14};
  auto below = [&](uint64_t n) { return rng() % n; };
  for (int round = 0; round < 20000; ++round) {
    // Valid UTF-8, every length class, escapable ASCII included.
    std::string text;
    for (size_t i = 0, n = below(40); i < n; ++i) {
      uint32_t cp = 0;
      switch (below(5)) {
        case 0: cp = static_cast<uint32_t>(below(0x80)); break;
        case 1: cp = static_cast<uint32_t>(0x80 + below(0x780)); break;
        case 2:
          cp = static_cast<uint32_t>(0x800 + below(0xF800));
          if (cp >= 0xD800 && cp <= 0xDFFF)
            cp = 'u';
          break;
        case 3: cp = static_cast<uint32_t>(0x10000 + below(0x100000)); break;
        default: cp = static_cast<uint32_t>(0x20 + below(0x5F)); break;
      }
      append_utf8(text, cp);
    }
    auto json = json_of(text);
    REQUIRE(parse_back(json) == text);
    bool plain = true;
    for (char c : text)
      plain &= !(static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\');
    if (plain)
      REQUIRE(json == lit(text));
    // Any bytes at all: the output is valid JSON in valid UTF-8.
    // Mostly the bytes where UTF-8's rules change.
    static constexpr unsigned char edges[] = {
      0x00, 0x1F, 0x22, 0x5C, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
      0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
    std::string junk;
    for (size_t i = 0, n = below(24); i < n; ++i)
      junk += static_cast<char>(below(4) == 0 ? below(256)
                                              : edges[below(sizeof(edges))]);
    auto bad = json_of(junk);
    REQUIRE(simdjson::validate_utf8(bad.data(), bad.size()));
    REQUIRE(parse_back(bad) != "<invalid>");
    if (simdjson::validate_utf8(junk.data(), junk.size()))
      REQUIRE(parse_back(bad) == junk);
  }
}

TEST_CASE("append_json writes nlohmann documents as dump() does, strings "
          "repaired",
          "[json]") {
  nlohmann::json doc{
    {"status", "ok"},
    {"count", 42},
    {"big", uint64_t{18446744073709551615u}},
    {"neg", -7},
    {"ratio", 0.25},
    {"whole", 100.0},
    {"flags", {true, false, nullptr}},
    {"nested", {{"caf\xC3\xA9", "line\nbreak \"q\" \\ \x01"}}},
    {"empty", nlohmann::json::object()},
    {"list", nlohmann::json::array()},
  };
  CHECK(dump_json(doc) == doc.dump());
  nlohmann::json bad{{"title", "bad \xFF utf8 \xE2\x82"},
                     {"k\xC0", nlohmann::json::array({"\xED\xA0\x80"})}};
  CHECK_THROWS(bad.dump());
  CHECK(dump_json(bad)
        == "{\"k" + fffd + "\":[\"" + fffd + fffd + fffd
             + "\"],\"title\":\"bad " + fffd + " utf8 " + fffd + "\"}");
}
