#pragma once

// Text taken from a request (a path, a header value, an item type) and put
// into an answer or a log line: cut to a bounded length without splitting a
// UTF-8 character, so that whatever serializes it next sees the same
// characters the client sent, not half of one.

#include <cstddef>
#include <string>
#include <string_view>

namespace vigil {

/// The longest prefix of `s` of at most `max_bytes` bytes that does not end
/// inside a UTF-8 sequence (it only looks at where sequences start; `s` need
/// not be valid UTF-8).
std::string_view utf8_prefix(std::string_view s, size_t max_bytes);

/// `s` cut to `max_bytes` on a character boundary, with "..." appended when
/// anything was cut (the result may then be up to 3 bytes longer).
std::string excerpt(std::string_view s, size_t max_bytes = 200);

/// The first `max_bytes` bytes of `s` ("..." appended when cut), every byte
/// outside printable ASCII written as `\xNN` and `\` as `\\`: ASCII only,
/// safe for a log line whatever the client sent.
std::string printable_excerpt(std::string_view s, size_t max_bytes = 200);

} // namespace vigil
