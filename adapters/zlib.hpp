#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace vigil {

/// Compresses `data` in the zlib format (RFC 1950), as Python's
/// `zlib.compress(data, level)` does. Level 1 trades ratio for speed, which
/// suits the hot ingest path; any level decompresses the same way.
std::string zlib_compress(std::string_view data, int level = 1);

/// Decompresses zlib-format data (RFC 1950). Fails with errc::malformed on
/// bad or truncated input and with errc::too_large as soon as the output
/// would pass `max_out` bytes (inflating stops there: memory stays bounded).
caf::expected<std::string> zlib_decompress(std::string_view data,
                                           size_t max_out);

/// The HTTP `Content-Encoding` values an ingest body may have.
enum class content_encoding { identity, gzip, deflate };

/// Returns "identity", "gzip" or "deflate".
const char* to_string(content_encoding x);

/// Parses a `Content-Encoding` header value: case-insensitive, surrounding
/// blanks ignored, empty means identity; "x-gzip" is gzip. Anything else
/// (including a list of encodings) fails with errc::unsupported naming it.
caf::expected<content_encoding> parse_content_encoding(std::string_view header);

/// Decodes a request body. gzip is the gzip wrapper (RFC 1952; concatenated
/// members are read one after the other); deflate is the zlib wrapper as
/// HTTP defines it, but a raw deflate stream (RFC 1951, what some clients
/// send) is accepted too. Fails with errc::malformed ("gzip body is
/// malformed: <why>") for bad input and with errc::too_large ("decompressed
/// body exceeds <max_out> bytes") as soon as the output passes `max_out`:
/// a compression bomb costs at most about `max_out` bytes of memory.
caf::expected<std::string> decode_body(std::string_view body,
                                       content_encoding enc, size_t max_out);

} // namespace vigil
