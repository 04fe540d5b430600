#pragma once

// The one JSON string writer: every encoder in vigil (the JSON codec, the
// kombu envelope, Sentry event edits, dead-letter records, HTTP answers,
// log lines) writes strings through it, so that they all follow one rule
// for escapes and for UTF-8.

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace vigil {

/// Appends `s` to `out` as a JSON string literal, quotes included: always
/// valid JSON in valid UTF-8, whatever `s` holds.
/// - `"`, `\` and the control characters below 0x20 are escaped (`\n`,
///   `\t`, ... and `\u00XX` for the rest); nothing else is (not `/`, not
///   0x7F, not non-ASCII characters, which stay UTF-8).
/// - Well-formed UTF-8 passes unchanged. Anything else (overlong forms,
///   surrogates, code points above U+10FFFF, stray continuation bytes,
///   truncated sequences) becomes U+FFFD, one per maximal invalid subpart,
///   as Python's `decode('utf-8', 'replace')` does: `"\xE2\x82"` is one
///   U+FFFD, `"\xED\xA0\x80"` (a surrogate) three.
void append_json_string(std::string& out, std::string_view s);

/// As above, for the longest prefix of `s` of at most `max_bytes` bytes
/// that does not cut a well-formed character (utf8_prefix): a bound on what
/// is taken from `s`, not on the bytes written (escapes make those more).
void append_json_string(std::string& out, std::string_view s,
                        size_t max_bytes);

/// Appends a double the way JSON wants it (no inf/nan: those become null).
void append_json_number(std::string& out, double x);

/// Appends `x` as compact JSON, as `x.dump()` writes it, but with every
/// string (keys included) written by append_json_string: invalid UTF-8
/// becomes U+FFFD by the rule above instead of throwing.
void append_json(std::string& out, const nlohmann::json& x);

/// `x` as compact JSON (see append_json).
std::string dump_json(const nlohmann::json& x);

} // namespace vigil
