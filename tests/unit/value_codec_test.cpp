// Unit tests for the value type, msgpack and JSON codecs and base64.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>

#include "messages/base64.hpp"
#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"

using namespace vigil;

namespace {

std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    return c - 'A' + 10;
  };
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
  return out;
}

std::string to_hex(std::string_view bytes) {
  constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xF];
  }
  return out;
}

errc code_of(const caf::error& err) {
  return static_cast<errc>(err.code());
}

/// Encodes x, checks the leading bytes and that decoding gives x back.
void check_msgpack(const value& x, std::string_view expected_prefix_hex) {
  auto bytes = encode_msgpack(x);
  INFO("value " << to_repr(x, 80) << " encodes as "
                << to_hex(bytes.substr(0, 16)));
  CHECK(to_hex(bytes).substr(0, expected_prefix_hex.size())
        == expected_prefix_hex);
  auto back = decode_msgpack(bytes);
  REQUIRE(back);
  CHECK(*back == x);
  std::string appended = "xy";
  encode_msgpack(x, appended);
  CHECK(appended == "xy" + bytes);
}

/// Expects decoding to fail with `code` and a message containing `text`.
void check_msgpack_error(std::string_view hex, errc code,
                         std::string_view text) {
  auto res = decode_msgpack(from_hex(hex));
  INFO("input " << hex);
  REQUIRE_FALSE(res);
  INFO("error: " << error_text(res.error()));
  CHECK(code_of(res.error()) == code);
  CHECK(error_text(res.error()).find(text) != std::string::npos);
}

value nested_arrays(size_t depth) {
  value x = value_array{};
  for (size_t i = 1; i < depth; ++i)
    x = value_array{std::move(x)};
  return x;
}

// Result documents written by Celery 5.2 (Python msgpack), first two lines of
// tests' reference fixture redis_result_docs.jsonl.
constexpr std::string_view result_doc_1_hex
  = "86a6737461747573a753554343455353a6726573756c7405a974726163656261636bc0a8"
    "6368696c6472656e90a9646174655f646f6e65ba323032362d31312d32335430333a3537"
    "3a30382e303433333633a77461736b5f6964d92432323232323232322d303030302d3030"
    "30302d303030302d303030303030303030303031";
constexpr std::string_view result_doc_2_hex
  = "86a6737461747573a753554343455353a6726573756c7484a162c4020001a173a5636166"
    "c3a9a166cb3ff8000000000000a16c9301c0c3a974726163656261636bc0a86368696c64"
    "72656e90a9646174655f646f6e65ba323032362d31312d32335430333a35373a30382e30"
    "3436353132a77461736b5f6964d92432323232323232322d303030302d303030302d3030"
    "30302d303030303030303030303032";

constexpr std::string_view celery_body_b64
  = "k5ICA4CEqWNhbGxiYWNrc8CoZXJyYmFja3PApWNoYWluwKVjaG9yZMA=";

} // namespace

// -- value --------------------------------------------------------------------

TEST_CASE("value kinds and accessors", "[codec]") {
  CHECK(value{}.is_nil());
  CHECK(value{nullptr}.is_nil());
  CHECK(value{true}.is_bool());
  CHECK(value{1}.kind() == value_kind::integer);
  CHECK(value{uint64_t{5}}.kind() == value_kind::integer);
  auto big = value{uint64_t{1} << 63};
  CHECK(big.kind() == value_kind::uinteger);
  CHECK(big.is_int());
  CHECK(big.is_number());
  CHECK(big.as_int() == std::numeric_limits<int64_t>::max());
  CHECK(big.as_double() == 9223372036854775808.0);
  CHECK(value{2.5}.is_number());
  CHECK_FALSE(value{2.5}.is_int());
  CHECK(value{7}.as_double() == 7.0);
  CHECK(value{"x"}.is_text());
  CHECK(value{binary{"x"}}.is_bytes());
  CHECK(std::string{to_string(value_kind::uinteger)} == "int");
  CHECK(std::string{to_string(value_kind::real)} == "float");
  CHECK(std::string{to_string(value_kind::map)} == "dict");
  CHECK(std::string{to_string(value_kind::array)} == "list");
  CHECK(std::string{to_string(value_kind::nil)} == "nil");
}

TEST_CASE("value find and set", "[codec]") {
  value x;
  x.set("a", 1);
  x.set("b", "two");
  x.set("a", 3);
  REQUIRE(x.is_map());
  CHECK(x.as_map().size() == 2);
  REQUIRE(x.find("a") != nullptr);
  CHECK(*x.find("a") == value{3});
  CHECK(x.as_map()[0].first == "a");
  CHECK(x.find("c") == nullptr);
  CHECK(value{1}.find("a") == nullptr);
}

TEST_CASE("value equality is structural", "[codec]") {
  CHECK(value{1} == value{int64_t{1}});
  CHECK(value{1} == value{uint64_t{1}});
  CHECK_FALSE(value{1} == value{1.0});
  CHECK_FALSE(value{1} == value{true});
  CHECK_FALSE(value{"a"} == value{binary{"a"}});
  CHECK(value{std::nan("")} == value{std::nan("")});
  CHECK(value{value_array{1, "a"}} == value{value_array{1, "a"}});
  CHECK_FALSE(value{value_array{1, "a"}} == value{value_array{"a", 1}});
  // Maps compare like Python dicts: order does not matter.
  CHECK(value{value_map{{"a", 1}, {"b", 2}}}
        == value{value_map{{"b", 2}, {"a", 1}}});
  CHECK_FALSE(value{value_map{{"a", 1}, {"b", 2}}}
              == value{value_map{{"a", 1}, {"c", 2}}});
  CHECK_FALSE(value{value_map{{"a", 1}}}
              == value{value_map{{"a", 1}, {"b", 2}}});
}

TEST_CASE("to_repr matches Python repr", "[codec]") {
  CHECK(to_repr(value{}) == "None");
  CHECK(to_repr(true) == "True");
  CHECK(to_repr(false) == "False");
  CHECK(to_repr(0) == "0");
  CHECK(to_repr(-42) == "-42");
  CHECK(to_repr(std::numeric_limits<int64_t>::min()) == "-9223372036854775808");
  CHECK(to_repr(std::numeric_limits<uint64_t>::max())
        == "18446744073709551615");
  CHECK(to_repr(1.0) == "1.0");
  CHECK(to_repr(3.0) == "3.0");
  CHECK(to_repr(-1e15) == "-1000000000000000.0");
  CHECK(to_repr(9007199254740992.0) == "9007199254740992.0");
  CHECK(to_repr(9007199254740994.0) == "9007199254740994.0");
  CHECK(to_repr(123456789012345680.0) == "1.2345678901234568e+17");
  CHECK(to_repr(1.5) == "1.5");
  CHECK(to_repr(-2.0) == "-2.0");
  CHECK(to_repr(-0.0) == "-0.0");
  CHECK(to_repr(0.1) == "0.1");
  CHECK(to_repr(1e20) == "1e+20");
  CHECK(to_repr(1e16) == "1e+16");
  CHECK(to_repr(1e15) == "1000000000000000.0");
  CHECK(to_repr(123456789.125) == "123456789.125");
  CHECK(to_repr(0.0001) == "0.0001");
  CHECK(to_repr(0.00001) == "1e-05");
  CHECK(to_repr(1.5e-7) == "1.5e-07");
  CHECK(to_repr(1.7976931348623157e308) == "1.7976931348623157e+308");
  CHECK(to_repr(5e-324) == "5e-324");
  CHECK(to_repr(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(to_repr(-std::numeric_limits<double>::infinity()) == "-inf");
  CHECK(to_repr(std::nan("")) == "nan");
  CHECK(to_repr("text") == "'text'");
  CHECK(to_repr("") == "''");
  CHECK(to_repr("it's") == "\"it's\"");
  CHECK(to_repr("a'b\"c") == "'a\\'b\"c'");
  CHECK(to_repr("say \"hi\"") == "'say \"hi\"'");
  CHECK(to_repr("back\\slash") == "'back\\\\slash'");
  CHECK(to_repr("l1\nl2\r\t") == "'l1\\nl2\\r\\t'");
  CHECK(to_repr(std::string{"\x00\x01\x1f\x7f", 4})
        == "'\\x00\\x01\\x1f\\x7f'");
  CHECK(to_repr("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")
        == "'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80'");
  CHECK(to_repr("\xc2\xa0") == "'\\xa0'");
  CHECK(to_repr("\xc2\x85") == "'\\x85'");
  CHECK(to_repr("\xe2\x80\xa8") == "'\\u2028'");
  CHECK(to_repr(binary{std::string{"\x00\x01", 2}}) == "b'\\x00\\x01'");
  CHECK(to_repr(binary{"it's"}) == "b\"it's\"");
  CHECK(to_repr(binary{"\xc3\xa9\n"}) == "b'\\xc3\\xa9\\n'");
  CHECK(to_repr(binary{}) == "b''");
  CHECK(to_repr(value_array{}) == "[]");
  CHECK(to_repr(value_map{}) == "{}");
  CHECK(to_repr(value_array{1, "a", nullptr, value_array{2.5}})
        == "[1, 'a', None, [2.5]]");
  CHECK(to_repr(value_map{{"k", nullptr}, {"n", value_map{{"x", true}}}})
        == "{'k': None, 'n': {'x': True}}");
}

TEST_CASE("to_repr cuts at max_len", "[codec]") {
  value_array xs;
  for (int i = 0; i < 1000; ++i)
    xs.emplace_back(i);
  auto full = to_repr(xs, 1 << 20);
  CHECK(full.size() > 100);
  auto cut = to_repr(xs, 20);
  CHECK(cut.size() == 20);
  CHECK(cut == full.substr(0, 17) + "...");
  CHECK(to_repr(value_array{1, 2}, 6) == "[1, 2]");
  CHECK(to_repr(value_array{1, 2, 3}, 6) == "[1,...");
  CHECK(to_repr("abcdef", 2) == "..");
  // Never cuts inside a UTF-8 sequence.
  CHECK(to_repr("\xc3\xa9\xc3\xa9\xc3\xa9", 6) == "'\xc3\xa9...");
  CHECK(to_repr("\xc3\xa9\xc3\xa9\xc3\xa9", 7) == "'\xc3\xa9...");
  CHECK(to_repr(std::string(100000, 'x'), 10) == "'xxxxxx...");
}

// -- msgpack ------------------------------------------------------------------

TEST_CASE("msgpack scalars round trip with Python's encodings", "[codec]") {
  check_msgpack(value{}, "c0");
  check_msgpack(false, "c2");
  check_msgpack(true, "c3");
  check_msgpack(1.5, "cb3ff8000000000000");
  check_msgpack(-0.0, "cb8000000000000000");
  check_msgpack(std::numeric_limits<double>::infinity(), "cb7ff0000000000000");
  check_msgpack(std::nan(""), "cb7ff8");
  check_msgpack(1.0, "cb3ff0000000000000");
}

TEST_CASE("msgpack integer boundaries", "[codec]") {
  check_msgpack(0, "00");
  check_msgpack(127, "7f");
  check_msgpack(128, "cc80");
  check_msgpack(255, "ccff");
  check_msgpack(256, "cd0100");
  check_msgpack(65535, "cdffff");
  check_msgpack(65536, "ce00010000");
  check_msgpack(int64_t{4294967295}, "ceffffffff");
  check_msgpack(int64_t{4294967296}, "cf0000000100000000");
  check_msgpack(std::numeric_limits<int64_t>::max(), "cf7fffffffffffffff");
  check_msgpack(uint64_t{1} << 63, "cf8000000000000000");
  check_msgpack(std::numeric_limits<uint64_t>::max(), "cfffffffffffffffff");
  check_msgpack(-1, "ff");
  check_msgpack(-32, "e0");
  check_msgpack(-33, "d0df");
  check_msgpack(-128, "d080");
  check_msgpack(-129, "d1ff7f");
  check_msgpack(-32768, "d18000");
  check_msgpack(-32769, "d2ffff7fff");
  check_msgpack(int64_t{-2147483648LL}, "d280000000");
  check_msgpack(int64_t{-2147483649LL}, "d3ffffffff7fffffff");
  check_msgpack(std::numeric_limits<int64_t>::min(), "d38000000000000000");
  auto big = decode_msgpack(from_hex("cf8000000000000000"));
  REQUIRE(big);
  CHECK(big->kind() == value_kind::uinteger);
}

TEST_CASE("msgpack decodes non-minimal encodings", "[codec]") {
  auto check = [](std::string_view hex, const value& expected) {
    auto res = decode_msgpack(from_hex(hex));
    INFO(hex);
    REQUIRE(res);
    CHECK(*res == expected);
  };
  check("cc05", 5);
  check("cd0005", 5);
  check("ce00000005", 5);
  check("cf0000000000000005", 5);
  check("d0fb", -5);
  check("d005", 5);
  check("d1fffb", -5);
  check("d2fffffffb", -5);
  check("d3fffffffffffffffb", -5);
  check("ca3fc00000", 1.5);
  check("d90161", "a");
  check("da000161", "a");
  check("db0000000161", "a");
  check("dc000101", value_array{1});
  check("dd0000000101", value_array{1});
  check("de0001a16101", value_map{{"a", 1}});
  check("df00000001a16101", value_map{{"a", 1}});
  check("c50001ff", binary{"\xff"});
  check("c600000001ff", binary{"\xff"});
}

TEST_CASE("msgpack string, binary and container boundaries", "[codec]") {
  check_msgpack("", "a0");
  check_msgpack(std::string(31, 'x'), "bf78");
  check_msgpack(std::string(32, 'x'), "d92078");
  check_msgpack(std::string(255, 'x'), "d9ff78");
  check_msgpack(std::string(256, 'x'), "da010078");
  check_msgpack(std::string(65535, 'x'), "daffff78");
  check_msgpack(std::string(65536, 'x'), "db0001000078");
  check_msgpack("caf\xc3\xa9", "a5636166c3a9");
  check_msgpack(binary{}, "c400");
  check_msgpack(binary{std::string(255, '\0')}, "c4ff00");
  check_msgpack(binary{std::string(256, '\0')}, "c5010000");
  check_msgpack(binary{std::string(65535, '\0')}, "c5ffff00");
  check_msgpack(binary{std::string(65536, '\0')}, "c60001000000");
  auto array_of = [](size_t n) {
    value_array xs;
    for (size_t i = 0; i < n; ++i)
      xs.emplace_back(static_cast<int64_t>(i % 100));
    return value{std::move(xs)};
  };
  check_msgpack(array_of(0), "90");
  check_msgpack(array_of(15), "9f00");
  check_msgpack(array_of(16), "dc001000");
  check_msgpack(array_of(65535), "dcffff00");
  check_msgpack(array_of(65536), "dd0001000000");
  auto map_of = [](size_t n) {
    value_map xs;
    for (size_t i = 0; i < n; ++i)
      xs.emplace_back("k" + std::to_string(i), nullptr);
    return value{std::move(xs)};
  };
  check_msgpack(map_of(0), "80");
  check_msgpack(map_of(15), "8fa26b30c0");
  check_msgpack(map_of(16), "de0010a26b30c0");
  check_msgpack(map_of(65535), "deffffa26b30c0");
  check_msgpack(map_of(65536), "df00010000a26b30c0");
  check_msgpack(nested_arrays(64), "9191");
  check_msgpack(value_map{{"", value_array{binary{"\x01"}, -1.25,
                                           "\xf0\x9f\x98\x80"}}},
                "81a093c40101cbbff4");
}

TEST_CASE("msgpack reproduces a Celery task body exactly", "[codec]") {
  auto bytes = base64_decode(celery_body_b64);
  REQUIRE(bytes);
  auto body = decode_msgpack(*bytes);
  REQUIRE(body);
  auto embed = value{value_map{{"callbacks", nullptr},
                               {"errbacks", nullptr},
                               {"chain", nullptr},
                               {"chord", nullptr}}};
  CHECK(*body == value{value_array{value_array{2, 3}, value_map{}, embed}});
  CHECK(to_repr(*body)
        == "[[2, 3], {}, {'callbacks': None, 'errbacks': None, 'chain': None, "
           "'chord': None}]");
  auto again = encode_msgpack(*body);
  CHECK(to_hex(again) == to_hex(*bytes));
  CHECK(base64_encode(again) == celery_body_b64);
}

TEST_CASE("msgpack reproduces Celery result documents", "[codec]") {
  SECTION("SUCCESS add(2,3)") {
    auto bytes = from_hex(result_doc_1_hex);
    auto doc = decode_msgpack(bytes);
    REQUIRE(doc);
    REQUIRE(doc->is_map());
    CHECK(*doc->find("status") == value{"SUCCESS"});
    CHECK(*doc->find("result") == value{5});
    CHECK(doc->find("traceback")->is_nil());
    CHECK(*doc->find("children") == value{value_array{}});
    CHECK(*doc->find("date_done") == value{"2026-11-23T03:57:08.043363"});
    CHECK(*doc->find("task_id")
          == value{"22222222-0000-0000-0000-000000000001"});
    CHECK(to_repr(*doc)
          == "{'status': 'SUCCESS', 'result': 5, 'traceback': None, "
             "'children': [], 'date_done': '2026-11-23T03:57:08.043363', "
             "'task_id': '22222222-0000-0000-0000-000000000001'}");
    CHECK(to_hex(encode_msgpack(*doc)) == result_doc_1_hex);
  }
  SECTION("SUCCESS with bytes, unicode, float and list") {
    auto bytes = from_hex(result_doc_2_hex);
    auto doc = decode_msgpack(bytes);
    REQUIRE(doc);
    REQUIRE(doc->is_map());
    const value* result = doc->find("result");
    REQUIRE(result != nullptr);
    CHECK(*result
          == value{value_map{{"b", binary{std::string{"\x00\x01", 2}}},
                             {"s", "caf\xc3\xa9"},
                             {"f", 1.5},
                             {"l", value_array{1, nullptr, true}}}});
    CHECK(result->find("b")->is_bytes());
    CHECK(to_repr(*doc)
          == "{'status': 'SUCCESS', 'result': {'b': b'\\x00\\x01', 's': "
             "'caf\xc3\xa9', 'f': 1.5, 'l': [1, None, True]}, 'traceback': "
             "None, 'children': [], 'date_done': "
             "'2026-11-23T03:57:08.046512', 'task_id': "
             "'22222222-0000-0000-0000-000000000002'}");
    CHECK(to_hex(encode_msgpack(*doc)) == result_doc_2_hex);
  }
}

TEST_CASE("msgpack matches every Celery result fixture", "[codec]") {
  std::ifstream in{
    "/work/shared/reference/celery-fixtures/redis_result_docs.jsonl"};
  if (!in) {
    WARN("fixture file not available, skipping");
    return;
  }
  std::string line;
  size_t count = 0;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    auto row = decode_json(line);
    REQUIRE(row);
    auto hex = row->find("msgpack_hex")->as_text();
    auto decoded = row->find("decoded")->as_text();
    INFO(row->find("label")->as_text());
    auto doc = decode_msgpack(from_hex(hex));
    REQUIRE(doc);
    CHECK(to_hex(encode_msgpack(*doc)) == hex);
    CHECK(to_repr(*doc, 1 << 20) == decoded);
    ++count;
  }
  CHECK(count >= 2);
}

TEST_CASE("msgpack map keys", "[codec]") {
  // A bin key holding UTF-8 is accepted as text.
  auto res = decode_msgpack(from_hex("81c4016101"));
  REQUIRE(res);
  CHECK(*res == value{value_map{{"a", 1}}});
  check_msgpack_error("81c401ff01", errc::malformed, "invalid UTF-8");
  check_msgpack_error("810101", errc::malformed, "map key must be a string");
  check_msgpack_error("81c001", errc::malformed, "map key must be a string");
  check_msgpack_error("819001", errc::malformed, "map key must be a string");
  // The key's type is judged before its bytes are missing.
  check_msgpack_error("82a16101cc", errc::malformed,
                      "map key must be a string (type byte 0xcc at offset 4)");
  check_msgpack_error("82a16101c1", errc::malformed,
                      "map key must be a string");
  check_msgpack_error("81d401", errc::malformed, "map key must be a string");
  check_msgpack_error("81a3ab", errc::malformed,
                      "truncated msgpack: need 3 bytes at offset 2");
  // Duplicate keys: first position, last value, like a Python dict.
  auto dup = decode_msgpack(from_hex("83a16101a16202a16103"));
  REQUIRE(dup);
  REQUIRE(dup->as_map().size() == 2);
  CHECK(dup->as_map()[0].first == "a");
  CHECK(dup->as_map()[0].second == value{3});
  CHECK(dup->as_map()[1].first == "b");
  // The same with a map big enough for the sorting path.
  value_map many;
  for (int i = 0; i < 40; ++i)
    many.emplace_back("k" + std::to_string(i % 20), i);
  auto big = decode_msgpack(encode_msgpack(value{many}));
  REQUIRE(big);
  REQUIRE(big->as_map().size() == 20);
  for (int i = 0; i < 20; ++i) {
    CHECK(big->as_map()[static_cast<size_t>(i)].first
          == "k" + std::to_string(i));
    CHECK(big->as_map()[static_cast<size_t>(i)].second == value{i + 20});
  }
}

TEST_CASE("msgpack rejects malformed input", "[codec]") {
  check_msgpack_error("", errc::malformed,
                      "truncated msgpack: need 1 byte at offset 0");
  check_msgpack_error("cd01", errc::malformed,
                      "truncated msgpack: need 2 bytes at offset 1");
  check_msgpack_error("c1", errc::malformed, "invalid msgpack type byte 0xc1");
  check_msgpack_error("0102", errc::malformed, "trailing bytes");
  check_msgpack_error("d40100", errc::malformed, "ext types are not supported");
  check_msgpack_error("c70001", errc::malformed, "ext types are not supported");
  check_msgpack_error("91c801000001", errc::malformed,
                      "ext types are not supported");
  check_msgpack_error("a1ff", errc::malformed, "invalid UTF-8 in string");
  check_msgpack_error("a2c080", errc::malformed, "invalid UTF-8 in string");
  check_msgpack_error("a3eda080", errc::malformed, "invalid UTF-8 in string");
  check_msgpack_error("a4f4908080", errc::malformed, "invalid UTF-8 in string");
  check_msgpack_error("91d90263ff", errc::malformed, "invalid UTF-8 in string");
  // Offsets name the byte at fault.
  check_msgpack_error("91d90263ff", errc::malformed,
                      "invalid UTF-8 in string at offset 3");
  check_msgpack_error("92c0c1", errc::malformed,
                      "invalid msgpack type byte 0xc1 at offset 2");
  check_msgpack_error("c7", errc::malformed,
                      "ext types are not supported (type byte 0xc7 at offset 0)");
  check_msgpack_error("92cb00", errc::malformed,
                      "truncated msgpack: need 8 bytes at offset 2");
  check_msgpack_error("c40561", errc::malformed,
                      "truncated msgpack: need 5 bytes at offset 2");
  check_msgpack_error("92c091", errc::malformed,
                      "truncated msgpack: array at offset 2 declares 1 element"
                      " but only 0 bytes remain");
}

TEST_CASE("msgpack rejects huge declared lengths without allocating",
          "[codec]") {
  check_msgpack_error("ddffffffff0000000000", errc::malformed,
                      "declares 4294967295 elements");
  check_msgpack_error("dfffffffff0000000000", errc::malformed,
                      "declares 4294967295 entries");
  check_msgpack_error("dcffff00", errc::malformed, "declares 65535 elements");
  check_msgpack_error("dbffffffff0000", errc::malformed,
                      "need 4294967295 bytes at offset 5");
  check_msgpack_error("c6ffffffff0000", errc::malformed,
                      "need 4294967295 bytes at offset 5");
  check_msgpack_error("daffff61", errc::malformed, "need 65535 bytes");
  // A map needs two bytes per entry.
  check_msgpack_error("82a16101", errc::malformed, "declares 2 entries");
}

TEST_CASE("msgpack enforces limits", "[codec]") {
  CHECK(decode_msgpack(encode_msgpack(nested_arrays(64))));
  check_msgpack_error(to_hex(encode_msgpack(nested_arrays(65))),
                      errc::too_large, "msgpack nesting deeper than 64");
  check_msgpack_error(std::string(200000, '9') + "1", errc::too_large,
                      "nesting deeper than 64");
  decode_limits small;
  small.max_depth = 2;
  small.max_elements = 3;
  small.max_bytes = 10;
  CHECK(decode_msgpack(from_hex("9191c0"), small));
  auto deep = decode_msgpack(from_hex("919191c0"), small);
  REQUIRE_FALSE(deep);
  CHECK(code_of(deep.error()) == errc::too_large);
  auto many = decode_msgpack(from_hex("92c092c0c0"), small);
  REQUIRE_FALSE(many);
  CHECK(code_of(many.error()) == errc::too_large);
  CHECK(decode_msgpack(from_hex("92c091c0"), small));
  auto big = decode_msgpack(std::string(11, '\xc0'), small);
  REQUIRE_FALSE(big);
  CHECK(code_of(big.error()) == errc::too_large);
}

TEST_CASE("msgpack rejects every truncation of a valid document", "[codec]") {
  value doc{value_map{
    {"n", nullptr},
    {"b", value_array{true, false}},
    {"i", value_array{1, 200, 70000, int64_t{5000000000}, -1, -100, -40000,
                      int64_t{-5000000000}, uint64_t{1} << 63}},
    {"f", 0.25},
    {"s", std::string(40, 's')},
    {"bin", binary{"\x00\xff"}},
    {"m", value_map{{"x", value_array{}}, {"y", value_map{}}}},
    {"big", value_array(20, value{"e"})},
  }};
  for (const auto& bytes :
       {encode_msgpack(doc), *base64_decode(celery_body_b64),
        from_hex(result_doc_2_hex)}) {
    REQUIRE(decode_msgpack(bytes));
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto res = decode_msgpack(std::string_view{bytes}.substr(0, n));
      INFO("prefix length " << n);
      REQUIRE_FALSE(res);
      CHECK(code_of(res.error()) == errc::malformed);
    }
  }
}

// -- JSON ---------------------------------------------------------------------

TEST_CASE("JSON decodes all kinds", "[codec]") {
  auto doc = decode_json(
    R"( {"n": null, "t": true, "f": false, "i": -12, "u": 18446744073709551615,
         "min": -9223372036854775808, "d": 1.0, "e": 1e2, "s": "caf\u00e9",
         "emoji": "\ud83d\ude00", "raw": "é", "esc": "\"\\\/\b\f\n\r\t\u0000",
         "a": [1, [2, {}]]} )");
  REQUIRE(doc);
  CHECK(doc->find("n")->is_nil());
  CHECK(*doc->find("t") == value{true});
  CHECK(*doc->find("f") == value{false});
  CHECK(*doc->find("i") == value{-12});
  CHECK(doc->find("u")->kind() == value_kind::uinteger);
  CHECK(*doc->find("u") == value{std::numeric_limits<uint64_t>::max()});
  CHECK(*doc->find("min") == value{std::numeric_limits<int64_t>::min()});
  CHECK(doc->find("d")->kind() == value_kind::real);
  CHECK(*doc->find("d") == value{1.0});
  CHECK(*doc->find("e") == value{100.0});
  CHECK(doc->find("s")->as_text() == "caf\xc3\xa9");
  CHECK(doc->find("emoji")->as_text() == "\xf0\x9f\x98\x80");
  CHECK(doc->find("raw")->as_text() == "\xc3\xa9");
  CHECK(doc->find("esc")->as_text() == std::string{"\"\\/\b\f\n\r\t\0", 9});
  CHECK(*doc->find("a")
        == value{value_array{1, value_array{2, value_map{}}}});
  CHECK(doc->as_map().front().first == "n");
}

TEST_CASE("JSON encodes compactly", "[codec]") {
  CHECK(encode_json(value{}) == "null");
  CHECK(encode_json(true) == "true");
  CHECK(encode_json(-5) == "-5");
  CHECK(encode_json(std::numeric_limits<uint64_t>::max())
        == "18446744073709551615");
  CHECK(encode_json(1.0) == "1.0");
  CHECK(encode_json(1e20) == "1e+20");
  CHECK(encode_json(0.1) == "0.1");
  CHECK(encode_json(std::nan("")) == "NaN");
  CHECK(encode_json(-std::numeric_limits<double>::infinity()) == "-Infinity");
  CHECK(encode_json("caf\xc3\xa9 \xf0\x9f\x98\x80")
        == "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
  CHECK(encode_json(std::string{"\"\\\n\r\t\b\f\x01\x1f\x7f/", 11})
        == "\"\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\x7f/\"");
  CHECK(encode_json("bad \xff utf8 \xc3")
        == "\"bad \xef\xbf\xbd utf8 \xef\xbf\xbd\"");
  CHECK(encode_json(binary{"foobar"}) == "\"Zm9vYmFy\"");
  CHECK(encode_json(value_array{1, "a", value_array{}, value_map{}})
        == "[1,\"a\",[],{}]");
  CHECK(encode_json(value_map{{"k\"", nullptr}, {"x", value_array{true}}})
        == "{\"k\\\"\":null,\"x\":[true]}");
  std::string out = "[";
  encode_json(value{1}, out);
  CHECK(out == "[1");
}

TEST_CASE("JSON round trips", "[codec]") {
  for (const value& x :
       {value{}, value{false}, value{0}, value{-1},
        value{std::numeric_limits<int64_t>::min()},
        value{std::numeric_limits<uint64_t>::max()}, value{0.5}, value{-0.0},
        value{1e300}, value{5e-324}, value{2.0},
        value{"\x01\x7f\"\\ \xe2\x82\xac"},
        value{value_array{1, value_map{{"a", value_array{}}}}},
        value{nested_arrays(64)}}) {
    auto text = encode_json(x);
    auto back = decode_json(text);
    INFO(text);
    REQUIRE(back);
    CHECK(*back == x);
  }
}

TEST_CASE("JSON rejects malformed input and enforces limits", "[codec]") {
  for (std::string_view bad :
       {"", " ", "[", "[1,]", "{\"a\"}", "{\"a\":1,}", "01", "1.", "NaN",
        "Infinity", "[1] x", "\"\\ud800\"", "\"\\udc00\"", "\"\xff\"",
        "\"\xc0\x80\"", "\"a\nb\"", "18446744073709551616",
        "-9223372036854775809", "1e400", "{1: 2}", "'a'", "tru", "nul"}) {
    auto res = decode_json(bad);
    INFO("input: " << bad);
    REQUIRE_FALSE(res);
    CHECK(code_of(res.error()) == errc::malformed);
  }
  CHECK(decode_json(std::string(64, '[') + std::string(64, ']')));
  for (size_t depth : {65, 66, 1000, 100000}) {
    auto res = decode_json(std::string(depth, '[') + std::string(depth, ']'));
    INFO("depth " << depth);
    REQUIRE_FALSE(res);
    CHECK(code_of(res.error()) == errc::too_large);
    CHECK(error_text(res.error()) == "JSON nesting deeper than 64");
  }
  decode_limits small;
  small.max_elements = 3;
  small.max_bytes = 12;
  CHECK(decode_json("[1,[2]]", small));
  auto many = decode_json("[1,[2,3]]", small);
  REQUIRE_FALSE(many);
  CHECK(code_of(many.error()) == errc::too_large);
  auto big = decode_json("\"0123456789ab\"", small);
  REQUIRE_FALSE(big);
  CHECK(code_of(big.error()) == errc::too_large);
  decode_limits flat;
  flat.max_depth = 0;
  CHECK(decode_json("1", flat));
  CHECK_FALSE(decode_json("[]", flat));
  CHECK(decode_msgpack(from_hex("01"), flat));
  CHECK_FALSE(decode_msgpack(from_hex("90"), flat));
  // A large document, then small ones (the parser is reused per thread and
  // drops its large buffers afterwards).
  std::string large = "[\"" + std::string(3 << 20, 'x') + "\"]";
  auto large_doc = decode_json(large);
  REQUIRE(large_doc);
  CHECK(large_doc->as_array()[0].as_text().size() == (3u << 20));
  large.back() = ',';
  CHECK_FALSE(decode_json(large));
  // Normal limits work again afterwards.
  CHECK(decode_json(std::string(64, '[') + std::string(64, ']')));
  auto dup = decode_json(R"({"a":1,"b":2,"a":3})");
  REQUIRE(dup);
  CHECK(encode_json(*dup) == R"({"a":3,"b":2})");
}

// -- base64 -------------------------------------------------------------------

TEST_CASE("base64 RFC 4648 vectors", "[codec]") {
  std::pair<std::string_view, std::string_view> vectors[] = {
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
    {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    CHECK(base64_encode(plain) == encoded);
    auto dec = base64_decode(encoded);
    REQUIRE(dec);
    CHECK(*dec == plain);
    // Missing padding is tolerated.
    auto unpadded = encoded.substr(0, encoded.find('='));
    auto dec2 = base64_decode(unpadded);
    REQUIRE(dec2);
    CHECK(*dec2 == plain);
  }
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  CHECK(base64_encode(all).substr(0, 8) == "AAECAwQF");
  CHECK(base64_encode("\xfb\xff\xbf") == "+/+/");
  for (size_t n = 0; n <= all.size(); ++n) {
    auto dec = base64_decode(base64_encode(all.substr(0, n)));
    REQUIRE(dec);
    CHECK(*dec == all.substr(0, n));
  }
}

TEST_CASE("base64 rejects invalid input", "[codec]") {
  auto check = [](std::string_view text, std::string_view message) {
    auto res = base64_decode(text);
    INFO("input '" << text << "'");
    REQUIRE_FALSE(res);
    CHECK(code_of(res.error()) == errc::malformed);
    INFO("error: " << error_text(res.error()));
    CHECK(error_text(res.error()).find(message) != std::string::npos);
  };
  check("Zm9v!", "invalid base64 length");
  check("Zm9v!A", "invalid base64 character '!' at offset 4");
  check("Z", "invalid base64 length");
  check("Zm9vY", "invalid base64 length");
  check("Zg=", "invalid base64 padding");
  check("Zm9=v", "invalid base64 length");
  check("Zm9=vg==", "invalid base64 character '=' at offset 3");
  check("Z===", "invalid base64 character '=' at offset 1");
  check("Zm=v", "invalid base64 character '=' at offset 2");
  check(" Zg=", "invalid base64 character 0x20 at offset 0");
  check("Zm9v\nZm9", "invalid base64 character 0x0a at offset 4");
  check("Zm9v-_", "invalid base64 character '-' at offset 4");
  check(std::string_view{"Zm\0v", 4},
        "invalid base64 character 0x00 at offset 2");
  check("Zm9vYmFy\xc3\xa9", "invalid base64 character 0xc3 at offset 8");
}
