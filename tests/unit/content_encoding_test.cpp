// Content-Encoding of ingest requests: the header parsed, the body decoded
// by the matching decompressor under the size limit, errors that name the
// body.

#include <catch2/catch.hpp>

#include "messages/errors.hpp"
#include "tests/support/deflate.hpp"
#include "web/content_encoding.hpp"

using namespace vigil;
using vigil::test::deflate_with;

TEST_CASE("Content-Encoding parsing", "[content-encoding]") {
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
  CHECK(std::string{to_string(content_encoding::deflate)} == "deflate");
}

TEST_CASE("decode_body reads gzip, zlib deflate, raw deflate and identity",
          "[content-encoding]") {
  auto data = vigil::test::sample_lines();
  auto gz = decode_body(deflate_with(data, 31), content_encoding::gzip,
                        data.size());
  REQUIRE(gz);
  CHECK(*gz == data);
  auto zl = decode_body(deflate_with(data, 15), content_encoding::deflate,
                        data.size());
  REQUIRE(zl);
  CHECK(*zl == data);
  auto raw = decode_body(deflate_with(data, -15), content_encoding::deflate,
                         data.size());
  REQUIRE(raw);
  CHECK(*raw == data);
  auto plain = decode_body("abc", content_encoding::identity, 3);
  REQUIRE(plain);
  CHECK(*plain == "abc");
  auto big = decode_body("abcd", content_encoding::identity, 3);
  REQUIRE(!big);
  CHECK(big.error() == errc::too_large);
  CHECK(error_text(big.error()) == "body exceeds 3 bytes");
}

TEST_CASE("decode_body names the body in its errors", "[content-encoding]") {
  auto gz = decode_body("this is not gzip", content_encoding::gzip, 1000);
  REQUIRE(!gz);
  CHECK(gz.error() == errc::malformed);
  CHECK_THAT(error_text(gz.error()),
             Catch::StartsWith("gzip body is malformed: "));
  auto df = decode_body("\xff\xff\xff\xff", content_encoding::deflate, 100);
  REQUIRE(!df);
  CHECK(df.error() == errc::malformed);
  CHECK_THAT(error_text(df.error()),
             Catch::StartsWith("deflate body is malformed: "));
  std::string zeros(10 * 1024 * 1024, '\0');
  for (auto enc : {content_encoding::gzip, content_encoding::deflate}) {
    auto body = deflate_with(zeros, enc == content_encoding::gzip ? 31 : -15,
                             9);
    auto out = decode_body(body, enc, 1024 * 1024);
    REQUIRE(!out);
    CHECK(out.error() == errc::too_large);
    CHECK(error_text(out.error())
          == "decompressed body exceeds 1048576 bytes");
  }
}
