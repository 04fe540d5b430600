#pragma once

#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace vigil {

/// Encodes `bytes` as base64 (RFC 4648 standard alphabet, `=` padding).
std::string base64_encode(std::string_view bytes);

/// Decodes base64 text (standard alphabet). Missing padding is tolerated
/// ("QQ" decodes like "QQ=="); partial padding, `=` inside the text, any
/// character outside the alphabet (whitespace included) and a length that
/// leaves a single dangling character fail with `errc::malformed`. Non-zero
/// unused bits in the last character are ignored, as Python does.
caf::expected<std::string> base64_decode(std::string_view text);

} // namespace vigil
