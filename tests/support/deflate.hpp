#pragma once

// Compressed bodies as clients make them, for the tests of the zlib adapter
// and of Content-Encoding decoding.

#include <string>
#include <string_view>

#include <catch2/catch.hpp>
#include <zlib.h>

namespace vigil::test {

/// Compresses with zlib's deflate and the given windowBits (31 = gzip,
/// 15 = zlib, -15 = raw), as clients do.
inline std::string deflate_with(std::string_view data, int window_bits,
                                int level = 6) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, level, Z_DEFLATED, window_bits, 8,
                       Z_DEFAULT_STRATEGY)
          == Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

/// About 90 KB of event-like JSON lines: compresses well.
inline std::string sample_lines() {
  std::string s;
  for (int i = 0; i < 2000; ++i)
    s += "{\"event_id\":\"" + std::to_string(i) + "\",\"level\":\"error\"}\n";
  return s;
}

} // namespace vigil::test
