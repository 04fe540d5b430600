#pragma once

// msgpack-cxx's packer writing into a std::string, shared by the msgpack
// encoders in messages/.

// msgpack-cxx's headers use size_t unqualified before including <cstddef>.
#include <stddef.h>

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>

#include <msgpack/pack.hpp>

namespace vigil {

/// The packer's output stream: appends straight into the caller's string,
/// with no buffer of its own and no copy.
struct msgpack_sink {
  std::string& out;
  void write(const char* p, size_t n) {
    // Most tokens are one byte (fixint, fixstr, nil, fixmap headers), and
    // the packer passes their length as a constant: push_back is the
    // cheaper call for them.
    if (n == 1)
      out.push_back(*p);
    else
      out.append(p, n);
  }
};

/// Picks the smallest form for integers, str, bin, arrays and maps, as
/// Python's msgpack does. Floats: see encode_msgpack (its pack_double does
/// not write what Python writes).
using msgpack_packer = msgpack::packer<msgpack_sink>;

/// Packs `s` as str; `s` should be valid UTF-8 and shorter than 2^32 bytes.
inline void pack_text(msgpack_packer& pk, std::string_view s) {
  assert(s.size() <= UINT32_MAX);
  auto n = static_cast<uint32_t>(s.size());
  pk.pack_str(n);
  pk.pack_str_body(s.data(), n);
}

} // namespace vigil
