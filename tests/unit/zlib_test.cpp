// The zlib adapter: zlib/gzip/raw deflate data, malformed input, and the
// output bound that keeps compression bombs cheap.

#include <catch2/catch.hpp>

#include "adapters/zlib.hpp"
#include "messages/errors.hpp"
#include "tests/support/deflate.hpp"

using namespace vigil;
using vigil::test::deflate_with;

namespace {

std::string sample() {
  return vigil::test::sample_lines();
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

TEST_CASE("gzip_decompress and deflate_decompress read gzip, zlib deflate "
          "and raw deflate",
          "[zlib]") {
  auto data = sample();
  auto gz = gzip_decompress(deflate_with(data, 31), data.size());
  REQUIRE(gz);
  CHECK(*gz == data);
  auto zl = deflate_decompress(deflate_with(data, 15), data.size());
  REQUIRE(zl);
  CHECK(*zl == data);
  for (int level : {0, 1, 6, 9}) {
    auto raw = deflate_decompress(deflate_with(data, -15, level), data.size());
    REQUIRE(raw);
    CHECK(*raw == data);
  }
  // Two gzip members back to back read as their concatenation.
  auto two = deflate_with("ab", 31) + deflate_with("cd", 31);
  auto both = gzip_decompress(two, 100);
  REQUIRE(both);
  CHECK(*both == "abcd");
  // Output of exactly max_out bytes fits.
  auto exact = gzip_decompress(deflate_with(data, 31), data.size());
  CHECK(exact);
  auto over = gzip_decompress(deflate_with(data, 31), data.size() - 1);
  REQUIRE(!over);
  CHECK(over.error() == errc::too_large);
}

TEST_CASE("malformed data is errc::malformed with zlib's reason", "[zlib]") {
  auto data = sample();
  auto gz = deflate_with(data, 31);
  SECTION("garbage") {
    auto out = gzip_decompress("this is not gzip", 1000);
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
    CHECK_THAT(error_text(out.error()),
               Catch::StartsWith("gzip data is malformed: "));
  }
  SECTION("truncated") {
    auto out = gzip_decompress(std::string_view{gz}.substr(0, gz.size() / 2),
                               data.size());
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
    CHECK_THAT(error_text(out.error()),
               Catch::Contains("unexpected end of data"));
  }
  SECTION("corrupted checksum") {
    auto bad = gz;
    bad[bad.size() - 6] ^= 0x55; // inside the CRC32 trailer
    auto out = gzip_decompress(bad, data.size());
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
  }
  SECTION("trailing garbage after zlib data") {
    auto out = zlib_decompress(zlib_compress("abc") + "xyz", 100);
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
  }
  SECTION("deflate garbage, named as asked") {
    auto out = deflate_decompress("\xff\xff\xff\xff", 100, "deflate body");
    REQUIRE(!out);
    CHECK(out.error() == errc::malformed);
    CHECK_THAT(error_text(out.error()),
               Catch::StartsWith("deflate body is malformed: "));
  }
  SECTION("empty gzip data") {
    auto out = gzip_decompress("", 100);
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
  auto gz = gzip_decompress(bomb, limit);
  REQUIRE(!gz);
  CHECK(gz.error() == errc::too_large);
  CHECK(error_text(gz.error()) == "decompressed data exceeds 1048576 bytes");
  auto raw = deflate_decompress(deflate_with(zeros, -15, 9), limit);
  REQUIRE(!raw);
  CHECK(raw.error() == errc::too_large);
  auto z = zlib_decompress(zlib_compress(zeros), limit);
  REQUIRE(!z);
  CHECK(z.error() == errc::too_large);
}
