#pragma once

// The pieces of JSON string handling that hand-written scanners share: UTF-8
// encoding of a code point, finding a string's end, decoding its escapes.

#include <cstdint>
#include <string>
#include <string_view>

namespace vigil {

/// Appends `cp` encoded as UTF-8 (1 to 4 bytes).
void append_utf8(std::string& out, uint32_t cp);

/// Appends the contents of a JSON string (the text between its quotes) with
/// its escapes decoded: `\uD83D\uDE00` pairs become one character, a lone
/// surrogate U+FFFD; other bytes pass through as they are (invalid UTF-8
/// included). False on a malformed escape (what came before it is kept).
bool append_unescaped_json(std::string& out, std::string_view raw);

/// The index of the quote that closes the JSON string whose contents start
/// at `s[begin]`, or npos when it does not close.
size_t json_string_close(std::string_view s, size_t begin);

} // namespace vigil
