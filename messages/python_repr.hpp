#pragma once

// Python's repr() of a bytes value, which Sentry hashes into Redis key
// names (the write buffer's filters, the TSDB's string keys): an operator's
// Sentry and vigil must name the same row or series with the same key.

#include <string>
#include <string_view>

namespace vigil {

/// `repr(data)` for a Python 3 bytes object: b'...' (b"..." when the data
/// holds a single quote and no double quote), backslash escapes for the
/// quote, backslash, \t, \n and \r, \xNN (lower-case) for other bytes below
/// 0x20 or from 0x7f.
std::string python_bytes_repr(std::string_view data);

} // namespace vigil
