#pragma once

#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "messages/json_writer.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"

namespace vigil {

/// Decodes exactly one JSON document (strict RFC 8259: no NaN/Infinity, no
/// comments, no trailing content). Integers become `integer` (`uinteger`
/// above INT64_MAX), other numbers `real`; integers outside the 64-bit ranges
/// and numbers beyond the double range (1e400) are an error. Duplicate
/// object keys keep the first position and the last value, like Python's
/// json. Never throws; fails with `errc::malformed` or, past `limits`,
/// `errc::too_large`.
caf::expected<value> decode_json(std::string_view text,
                                 const decode_limits& limits = {});

/// Appends the compact JSON encoding of `x` to `out` (`[1,2]`, `{"a":1}`).
/// Text and keys are written by append_json_string (escapes, UTF-8 kept,
/// invalid UTF-8 replaced by U+FFFD). Floats use Python's repr (`1.0`,
/// `1e+20`); non-finite floats are written as `NaN`, `Infinity` and
/// `-Infinity`, as Python's json.dumps does (strict parsers, this decoder
/// included, reject them). Binary has no JSON form and is written as a base64 string, so it
/// decodes back as text.
void encode_json(const value& x, std::string& out);

/// Returns the compact JSON encoding of `x` (see the overload above).
std::string encode_json(const value& x);

} // namespace vigil
