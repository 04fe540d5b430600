#pragma once

// The HTTP `Content-Encoding` of an ingest request: the header parsed, and
// the body decoded by the matching decompressor (adapters/zlib) under the
// size limit.

#include <cstddef>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace vigil {

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
/// body exceeds <max_out> bytes"; "body exceeds <max_out> bytes" for an
/// identity body) as soon as the output passes `max_out`: a compression
/// bomb costs at most about `max_out` bytes of memory.
caf::expected<std::string> decode_body(std::string_view body,
                                       content_encoding enc, size_t max_out);

} // namespace vigil
