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

/// Decompresses gzip data (RFC 1952); concatenated members are read one
/// after the other, as `gzip -c a b > c` makes them. Fails with
/// errc::malformed ("<what> is malformed: <zlib's reason>") on bad or
/// truncated input and with errc::too_large ("decompressed <the last word
/// of what> exceeds <max_out> bytes") as soon as the output would pass
/// `max_out`: a compression bomb costs at most about `max_out` bytes.
caf::expected<std::string> gzip_decompress(std::string_view data,
                                           size_t max_out,
                                           const char* what = "gzip data");

/// Decompresses what HTTP calls deflate: the zlib wrapper (RFC 1950), or a
/// raw deflate stream (RFC 1951), which some clients send instead (a raw
/// stream that happens to start like a zlib header is retried as raw).
/// Errors as gzip_decompress.
caf::expected<std::string>
deflate_decompress(std::string_view data, size_t max_out,
                   const char* what = "deflate data");

} // namespace vigil
