#include "web/content_encoding.hpp"

#include <cctype>

#include "adapters/zlib.hpp"
#include "messages/errors.hpp"
#include "messages/text_excerpt.hpp"

namespace vigil {

namespace {

bool iequals(std::string_view x, std::string_view y) {
  if (x.size() != y.size())
    return false;
  for (size_t i = 0; i < x.size(); ++i) {
    auto a = static_cast<unsigned char>(x[i]);
    auto b = static_cast<unsigned char>(y[i]);
    if (std::tolower(a) != std::tolower(b))
      return false;
  }
  return true;
}

} // namespace

const char* to_string(content_encoding x) {
  switch (x) {
    case content_encoding::identity: return "identity";
    case content_encoding::gzip: return "gzip";
    case content_encoding::deflate: return "deflate";
  }
  return "identity";
}

caf::expected<content_encoding>
parse_content_encoding(std::string_view header) {
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!header.empty() && blank(header.front()))
    header.remove_prefix(1);
  while (!header.empty() && blank(header.back()))
    header.remove_suffix(1);
  if (header.empty() || iequals(header, "identity"))
    return content_encoding::identity;
  if (iequals(header, "gzip") || iequals(header, "x-gzip"))
    return content_encoding::gzip;
  if (iequals(header, "deflate"))
    return content_encoding::deflate;
  auto name = excerpt(header, 64);
  for (auto& c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
      c = '?';
  return caf::make_error(errc::unsupported,
                         "unsupported Content-Encoding '" + name
                           + "' (expected gzip, deflate or identity)");
}

caf::expected<std::string> decode_body(std::string_view body,
                                       content_encoding enc, size_t max_out) {
  switch (enc) {
    case content_encoding::identity:
      if (body.size() > max_out)
        return caf::make_error(errc::too_large,
                               "body exceeds " + std::to_string(max_out)
                                 + " bytes");
      return std::string{body};
    case content_encoding::gzip:
      return gzip_decompress(body, max_out, "gzip body");
    case content_encoding::deflate:
      return deflate_decompress(body, max_out, "deflate body");
  }
  return caf::make_error(errc::unsupported, "unknown content encoding");
}

} // namespace vigil
