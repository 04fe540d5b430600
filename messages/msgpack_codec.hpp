#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "messages/value.hpp"

namespace vigil {

/// Bounds a decoder enforces on untrusted input; exceeding one fails with
/// `errc::too_large`. Shared by the msgpack and JSON decoders.
struct decode_limits {
  /// Deepest container nesting accepted; a top-level array is depth 1.
  /// The value's destructor, its encoder and the JSON decoder recurse once
  /// per level, so values above 1024 act as 1024.
  size_t max_depth = 64;
  /// Largest input accepted, in bytes.
  size_t max_bytes = 64 << 20;
  /// Total array elements plus map entries across the whole document.
  size_t max_elements = 1 << 20;
};

/// Decodes exactly one msgpack document; trailing bytes are an error.
/// msgpack-cxx's visitor parser reads the bytes (it neither throws nor
/// allocates a zone); the value is built from its callbacks in place.
/// Accepts what Python's `msgpack.packb(use_bin_type=True)` writes: str must
/// be valid UTF-8, map keys must be str (or bin holding valid UTF-8), ext
/// types are rejected. Integers above INT64_MAX become `uinteger`, float32
/// and float64 both become `real`. Duplicate map keys keep the first key's
/// position and the last value, like a Python dict. Never throws; fails with
/// `errc::malformed` (bad or truncated input) or `errc::too_large` (limits).
caf::expected<value> decode_msgpack(std::string_view bytes,
                                    const decode_limits& limits = {});

/// Appends the msgpack encoding of `x` to `out`, choosing the smallest
/// encoding the way Python's msgpack does (floats always as float64, text as
/// str, bytes as bin). Text is written verbatim and should be valid UTF-8;
/// strings, arrays and maps must have fewer than 2^32 bytes / entries.
void encode_msgpack(const value& x, std::string& out);

/// Returns the msgpack encoding of `x` (see the overload above).
std::string encode_msgpack(const value& x);

namespace detail {

/// Removes duplicate keys from a freshly decoded map the way a Python dict
/// does: each key stays where it first appeared and takes the last value.
/// O(n log n); used by the msgpack and JSON decoders.
void merge_duplicate_keys(value_map& xs);

} // namespace detail

} // namespace vigil
