#pragma once

#include <string>
#include <string_view>

namespace vigil {

/// Appends `s` to `out` as a JSON string literal (quotes included). UTF-8 is
/// kept as is; quotes, backslashes and control characters are escaped.
void append_json_string(std::string& out, std::string_view s);

/// Appends a double the way JSON wants it (no inf/nan: those become null).
void append_json_number(std::string& out, double x);

} // namespace vigil
