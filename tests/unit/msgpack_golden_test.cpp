// The msgpack encoder's output, byte for byte, against fixed bytes recorded
// from the hand-written encoder that msgpack-cxx's packer replaced (issue
// 14): the same smallest int, str, bin, array and map forms, floats always
// as float64, as Python's msgpack and kombu write them. A change here changes
// what Celery workers and older vigil nodes read.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"

using namespace vigil;

namespace {

std::string to_hex(std::string_view bytes) {
  constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xF];
  }
  return out;
}

/// Short outputs verbatim in hex; long ones as "size:FNV-1a 64:first 32
/// bytes in hex", which still pins every byte.
std::string fingerprint(std::string_view bytes) {
  if (bytes.size() <= 64)
    return to_hex(bytes);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  constexpr char digits[] = "0123456789abcdef";
  std::string hash;
  for (int shift = 60; shift >= 0; shift -= 4)
    hash += digits[(h >> shift) & 0xF];
  return std::to_string(bytes.size()) + ':' + hash + ':'
         + to_hex(bytes.substr(0, 32));
}

value ints_array(size_t n) {
  value_array xs;
  for (size_t i = 0; i < n; ++i)
    xs.emplace_back(static_cast<int64_t>(i % 300));
  return xs;
}

value keyed_map(size_t n) {
  value_map xs;
  for (size_t i = 0; i < n; ++i)
    xs.emplace_back("k" + std::to_string(i), static_cast<int64_t>(i));
  return xs;
}

std::vector<std::pair<std::string, value>> cases() {
  using lim64 = std::numeric_limits<int64_t>;
  std::vector<std::pair<std::string, value>> out{
    {"nil", value{}},
    {"true", true},
    {"false", false},
  };
  for (int64_t x : {int64_t{0}, int64_t{1}, int64_t{127}, int64_t{128},
                    int64_t{255}, int64_t{256}, int64_t{65535},
                    int64_t{65536}, int64_t{4294967295},
                    int64_t{4294967296}, lim64::max(), int64_t{-1},
                    int64_t{-32}, int64_t{-33}, int64_t{-128},
                    int64_t{-129}, int64_t{-32768}, int64_t{-32769},
                    int64_t{-2147483648LL}, int64_t{-2147483649LL},
                    lim64::min()})
    out.emplace_back("int " + std::to_string(x), x);
  out.emplace_back("uint 2^63", uint64_t{1} << 63);
  out.emplace_back("uint max", std::numeric_limits<uint64_t>::max());
  // Whole numbers stay float64: Python reads them back as float.
  for (double x : {0.0, -0.0, 1.0, -1.0, 1.5, 0.1, 1e300, -1e-300,
                   9007199254740992.0, 9223372036854775808.0,
                   18446744073709551616.0, 123456789.0, 5e-324,
                   std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity(), std::nan("")})
    out.emplace_back("float " + to_repr(value{x}), x);
  for (size_t n : {0, 1, 31, 32, 255, 256, 65535, 65536})
    out.emplace_back("str " + std::to_string(n), std::string(n, 'x'));
  out.emplace_back("str utf8", "caf\xc3\xa9 \xf0\x9f\x98\x80");
  for (size_t n : {0, 1, 255, 256, 65535, 65536})
    out.emplace_back("bin " + std::to_string(n),
                     binary{std::string(n, '\xab')});
  for (size_t n : {0, 1, 15, 16, 65535, 65536})
    out.emplace_back("array " + std::to_string(n), ints_array(n));
  for (size_t n : {0, 1, 15, 16, 65535, 65536})
    out.emplace_back("map " + std::to_string(n), keyed_map(n));
  value nested = value_array{};
  for (int i = 0; i < 20; ++i)
    nested = value_array{std::move(nested), i};
  out.emplace_back("nested arrays", std::move(nested));
  out.emplace_back("map keys",
                   value_map{{"", 1},
                             {std::string(31, 'k'), 2},
                             {std::string(32, 'k'), 3},
                             {std::string(300, 'k'), 4},
                             {"caf\xc3\xa9", value_map{{"x", value_array{}}}}});
  // A Celery task body: [args, kwargs, embed].
  out.emplace_back(
    "celery body",
    value_array{value_array{2, 3}, value_map{{"x", 1.0}, {"y", "z"}},
                value_map{{"callbacks", nullptr},
                          {"errbacks", nullptr},
                          {"chain", nullptr},
                          {"chord", nullptr}}});
  // A post_process task as the ingest actor queues it.
  out.emplace_back(
    "post_process body",
    value_array{value_array{},
                value_map{{"event_id", "6f1c0e5d4b3a29180716253443526170"},
                          {"project_id", 42},
                          {"group_id", int64_t{5000000000}},
                          {"is_new", true}},
                value_map{{"callbacks", nullptr},
                          {"errbacks", nullptr},
                          {"chain", nullptr},
                          {"chord", nullptr}}});
  // A Celery result document.
  out.emplace_back(
    "result doc",
    value_map{{"status", "SUCCESS"},
              {"result", value_array{-1.25, binary{"\x00\x01"}, nullptr}},
              {"traceback", nullptr},
              {"children", value_array{}},
              {"date_done", "2026-12-03T05:00:00.000000"},
              {"task_id", "d6f1e0a2-1b3c-4d5e-8f90-a1b2c3d4e5f6"}});
  return out;
}

/// What the hand-written encoder wrote for each case of cases(), in order
/// (recorded at commit 6cb6568 with the hidden "[.record]" case below).
const char* const recorded[] = {
#include "msgpack_golden_recorded.inc"
};

} // namespace

TEST_CASE("msgpack encoder output is byte-identical to the recorded bytes",
          "[codec]") {
  auto xs = cases();
  REQUIRE(xs.size() == std::size(recorded));
  for (size_t i = 0; i < xs.size(); ++i) {
    INFO("case " << xs[i].first);
    CHECK(fingerprint(encode_msgpack(xs[i].second)) == recorded[i]);
    // And the bytes decode back to the value.
    auto back = decode_msgpack(encode_msgpack(xs[i].second));
    REQUIRE(back);
    CHECK(*back == xs[i].second); // NaN equals NaN for value
  }
}

// Prints the table above from the encoder in the tree: run it on the old
// encoder to record, `unit_tests "[.record]"`.
TEST_CASE("record msgpack golden bytes", "[.record]") {
  for (auto& [name, x] : cases())
    std::cout << "  \"" << fingerprint(encode_msgpack(x)) << "\", // "
              << name << '\n';
}
