// The zlib adapter: zlib/gzip/raw deflate bodies, malformed input, and the
// output bound that keeps compression bombs cheap.

#include <catch2/catch.hpp>

#include <zlib.h>

#include "adapters/zlib.hpp"
#include "messages/errors.hpp"

using namespace vigil;

namespace {

// Compresses with zlib's deflate and the given windowBits (31 = gzip,
// 15 = zlib, -15 = raw), as clients do.
std::string deflate_with(std::string_view data, int window_bits,
                         int level = 6) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, level, Z_DEFLATED, window_bits, 8,
                       Z_DEFAULT_STRATEGY)
          == Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string sample() {
  std::string s;
  for (int i = 0; i < 2000; ++i)
    s += "{\"event_id\":\"" + std::to_string(i) + "\",\"level\":\"error\"}\n";
  return s;
}

} // namespace

TEST_CASE("zlib_compress matches Python's zlib format", "[zlib]") {
  // Python: zlib.compress(b"hello") == b'x\x9c\xcbH\xcd\xc9\xc9\x07\x00\x06,\x02\x15'
  std::string py{"x\x9c\xcbH\xcd\xc9\xc9\x07\x00\x06,\x02\x15", 13};
  auto out = zlib_decompress(py, 100);
  REQUIRE(out);
  CHECK(*out == "hello");
  auto data = sample();
  for (int level : {1, 6, 9}) {
    auto packed = zlib_compress(data, level);
    CHECK(packed.size() < data.size() / 4);
    CHECK(static_cast<unsigned char>(packed[0]) == 0x78);
    auto back = zlib_decompress(packed, data.size());
    REQUIRE(back);
    CHECK(*back == data);
  }
  auto empty = zlib_decompress(zlib_compress(""), 0);
  REQUIRE(empty);
  CHECK(empty->empty());
}

TEST_CASE("Content-Encoding parsing", "[zlib]") {
  CHECK(parse_content_encoding("") == content_encoding::identity);
  CHECK(parse_content_encoding("identity") == content_encoding::identity);
  CHECK(parse_content_encoding("GZip") == content_encoding::gzip);
  CHECK(parse_content_encoding(" gzip ") == content_encoding::gzip);
  CHECK(parse_content_encoding("x-gzip") == content_encoding::gzip);
  CHECK(parse_content_encoding("DEFLATE") == content_encoding::deflate);
  auto br = parse_content_encoding("br");
  REQUIRE(!br);
  CHECK(br.error() == errc::unsupported);
  CHECK_THAT(error_text(br.error()), Catch::Contains("'br'"));
  CHECK(!parse_content_encoding("gzip, br"));
}

TEST_CASE("decode_body reads gzip, zlib deflate and raw deflate", "[zlib]") {
  auto data = sample();
  auto gz = decode_body(deflate_with(data, 31), content_encoding::gzip,
                        data.size());
  REQUIRE(gz);
  CHECK(*gz == data);
  auto zl = decode_body(deflate_with(data, 15), content_encoding::deflate,
                        data.size());
  REQUIRE(zl);
  CHECK(*zl == data);
  for (int level : {0, 1, 6, 9}) {
    auto raw = decode_body(deflate_with(data, -15, level),
                           content_encoding::deflate, data.size());
    REQUIRE(raw);
    CHECK(*raw == data);
  }
  auto plain = decode_body("abc", content_encoding::identity, 3);
  REQUIRE(plain);
  CHECK(*plain == "abc");
  auto big = decode_body("abcd", content_encoding::identity, 3);
  REQUIRE(!big);
  CHECK(big.error() == errc::too_large);
  // Two gzip members back to back read as their concatenation.
  auto two = deflate_with("ab", 31) + deflate_with("cd", 31);
  auto both = decode_body(two, content_encoding::gzip, 100);
  REQUIRE(both);
  CHECK(*both == "abcd");
  // Output of exactly max_out bytes fits.
  auto exact = decode_body(deflate_with(data, 31), content_encoding::gzip,
                           data.size());
  CHECK(exact);
  auto over = decode_body(deflate_with(data, 31), content_encoding::gzip,
                          data.size() - 1);
  REQUIRE(!over);
  CHECK(over.error() == errc::too_large);
}

TEST_CASE("malformed bodies are errc::malformed with zlib's reason",
          "[zlib]") {
  auto data = sample();
  auto gz = deflate_with(data, 31);
  SECTION("garbage") {
    auto out = decode_body("this is not gzip", content_encoding::gzip, 1000);
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
    CHECK_THAT(error_text(out.error()),
               Catch::StartsWith("gzip body is malformed: "));
  }
  SECTION("truncated") {
    auto out = decode_body(std::string_view{gz}.substr(0, gz.size() / 2),
                           content_encoding::gzip, data.size());
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
    CHECK_THAT(error_text(out.error()),
               Catch::Contains("unexpected end of data"));
  }
  SECTION("corrupted checksum") {
    auto bad = gz;
    bad[bad.size() - 6] ^= 0x55; // inside the CRC32 trailer
    auto out = decode_body(bad, content_encoding::gzip, data.size());
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
  }
  SECTION("trailing garbage after zlib data") {
    auto out = zlib_decompress(zlib_compress("abc") + "xyz", 100);
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
  }
  SECTION("deflate garbage") {
    auto out = decode_body("\xff\xff\xff\xff", content_encoding::deflate,
                           100);
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
    CHECK_THAT(error_text(out.error()),
               Catch::StartsWith("deflate body is malformed: "));
  }
  SECTION("empty gzip body") {
    auto out = decode_body("", content_encoding::gzip, 100);
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
  }
}

TEST_CASE("a compression bomb stops at max_out", "[zlib]") {
  // 10 MB of zeros compress to about 10 KB; with a 1 MB limit decoding
  // must fail as too_large without producing the 10 MB.
  std::string zeros(10 * 1024 * 1024, '\0');
  auto bomb = deflate_with(zeros, 31, 9);
  CHECK(bomb.size() < 20 * 1024);
  constexpr size_t limit = 1024 * 1024;
  for (auto enc : {content_encoding::gzip, content_encoding::deflate}) {
    auto body = enc == content_encoding::gzip ? bomb
                                              : deflate_with(zeros, -15, 9);
    auto out = decode_body(body, enc, limit);
    REQUIRE(!out);
    CHECK(out.error() == errc::too_large);
    CHECK(error_text(out.error())
          == "decompressed body exceeds 1048576 bytes");
  }
  auto z = zlib_decompress(zlib_compress(zeros), limit);
  REQUIRE(!z);
  CHECK(z.error() == errc::too_large);
}
