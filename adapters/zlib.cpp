#include "adapters/zlib.hpp"

#include <algorithm>
#include <climits>
#include <new>
#include <vector>

#include <isa-l/igzip_lib.h>
#include <zlib.h>

#include "messages/errors.hpp"

namespace vigil {

namespace {

// zlib's windowBits: 15 with the zlib wrapper, +16 for gzip, negative raw.
constexpr int zlib_window = 15;
constexpr int gzip_window = 16 + 15;
constexpr int raw_window = -15;

// Output grows in steps of this much (or less near the limit), so the
// buffer never exceeds max_out + 1 byte however well the input compresses.
constexpr size_t chunk = 64 * 1024;

// zlib counts in uInt: feed very large inputs in pieces.
constexpr size_t max_feed = UINT_MAX / 2;

bool looks_like_zlib(std::string_view data) {
  // RFC 1950: CM = 8 (deflate), CINFO <= 7, and the 16-bit header is a
  // multiple of 31. A raw deflate stream passes this by chance only 1 time
  // in ~500 for a given first byte; those fall back to raw below.
  if (data.size() < 2)
    return false;
  auto cmf = static_cast<unsigned char>(data[0]);
  auto flg = static_cast<unsigned char>(data[1]);
  return (cmf & 0x0F) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
}

// Inflates `data` with `window_bits`. `what` names the input in errors
// ("gzip body"). With `multi_member`, another gzip member may follow the
// end of one (RFC 1952 allows it; gzip -c a b > c makes it).
caf::expected<std::string> inflate_bounded(std::string_view data,
                                           int window_bits, size_t max_out,
                                           const char* what,
                                           bool multi_member = false) {
  z_stream zs{};
  if (inflateInit2(&zs, window_bits) != Z_OK)
    return caf::make_error(errc::command_failed,
                           std::string{"cannot initialize zlib for "} + what);
  struct guard {
    z_stream* zs;
    ~guard() { inflateEnd(zs); }
  } g{&zs};
  std::string out;
  auto in = reinterpret_cast<const Bytef*>(data.data());
  size_t in_left = data.size();
  auto malformed = [&](const char* why) {
    return caf::make_error(errc::malformed,
                           std::string{what} + " is malformed: " + why);
  };
  // "gzip body" -> "decompressed body exceeds ..."
  std::string_view noun{what};
  noun.remove_prefix(noun.rfind(' ') + 1);
  auto too_large = [&] {
    return caf::make_error(errc::too_large,
                           "decompressed " + std::string{noun}
                             + " exceeds " + std::to_string(max_out)
                             + " bytes");
  };
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      auto n = std::min(in_left, max_feed);
      zs.next_in = const_cast<Bytef*>(in);
      zs.avail_in = static_cast<uInt>(n);
      in += n;
      in_left -= n;
    }
    // Room for at most one byte past the limit: enough to tell "exactly
    // max_out" from "more than max_out".
    auto left = max_out - out.size();
    auto room = left >= chunk ? chunk : left + 1;
    auto used = out.size();
    out.resize(used + room);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    zs.avail_out = static_cast<uInt>(room);
    int rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(used + room - zs.avail_out);
    if (out.size() > max_out)
      return too_large();
    if (rc == Z_STREAM_END) {
      size_t rest = zs.avail_in + in_left;
      if (rest == 0)
        return out;
      if (!multi_member)
        return malformed("trailing data after the end of the stream");
      // Another gzip member follows (or garbage, which the header check of
      // the next round reports).
      if (inflateReset(&zs) != Z_OK)
        return malformed("cannot reset the stream");
      continue;
    }
    if (rc == Z_NEED_DICT)
      return malformed("a preset dictionary is required");
    if (rc == Z_DATA_ERROR)
      return malformed(zs.msg != nullptr ? zs.msg : "invalid data");
    if (rc == Z_MEM_ERROR)
      return caf::make_error(errc::too_large,
                             std::string{"out of memory inflating "} + what);
    if (rc == Z_BUF_ERROR || (rc == Z_OK && zs.avail_out != 0
                              && zs.avail_in == 0 && in_left == 0)) {
      // No progress possible: either the input ran out before the end of
      // the stream, or output space did (handled by the next round).
      if (zs.avail_in == 0 && in_left == 0)
        return malformed("unexpected end of data");
    }
  }
}

// ISA-L's igzip compresses a whole buffer at once into the same zlib format
// (RFC 1950) that zlib writes and Python's `zlib.decompress` reads. Its
// level 0 is its fastest: on a 2.5 KiB normalized event it takes about a
// third of libdeflate's level 1 (and a fifth of zlib's, which also clears
// a 64 KiB hash table per stream) for ~25 % more bytes, which is what the
// hot ingest path wants; its levels 1 to 3 come closer to zlib's ratios.
// Levels above 0 need a work buffer: one per thread, made on first use.
int isal_level(int zlib_level) {
  if (zlib_level == 0 || zlib_level == 1)
    return 0;
  if (zlib_level >= 2 && zlib_level <= 3)
    return 1;
  if (zlib_level >= 4 && zlib_level <= 5)
    return 2;
  return 3; // zlib's -1 (default, its 6) and 6..9
}

size_t isal_work_size(int level) {
  switch (level) {
    case 1: return ISAL_DEF_LVL1_DEFAULT;
    case 2: return ISAL_DEF_LVL2_DEFAULT;
    case 3: return ISAL_DEF_LVL3_DEFAULT;
    default: return 0;
  }
}

} // namespace

std::string zlib_compress(std::string_view data, int level) {
  // Compressed into a per-thread scratch buffer and copied out at its
  // final size: sizing a string to the bound first would zero-fill it for
  // every event. The bound: stored blocks (5 bytes per 64 KiB) plus the
  // zlib header and trailer, with room to spare.
  thread_local std::string scratch;
  thread_local std::vector<uint8_t> work;
  auto lvl = isal_level(level);
  auto bound = data.size() + data.size() / 64 + 64;
  if (scratch.size() < bound)
    scratch.resize(bound);
  if (work.size() < isal_work_size(lvl))
    work.resize(isal_work_size(lvl));
  isal_zstream stream;
  isal_deflate_stateless_init(&stream);
  stream.level = static_cast<uint32_t>(lvl);
  stream.level_buf = work.empty() ? nullptr : work.data();
  stream.level_buf_size = static_cast<uint32_t>(work.size());
  stream.gzip_flag = IGZIP_ZLIB;
  stream.end_of_stream = 1;
  stream.flush = NO_FLUSH;
  // ISA-L takes non-const pointers but does not write the input.
  stream.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uint32_t>(data.size());
  stream.next_out = reinterpret_cast<uint8_t*>(scratch.data());
  stream.avail_out = static_cast<uint32_t>(scratch.size());
  // The bound leaves room for stored blocks and the level's buffer is
  // sized as ISA-L asks: anything else is an ISA-L bug or an input over
  // 4 GiB, which no caller passes (the ingest limits are far below).
  if (data.size() > UINT32_MAX || isal_deflate_stateless(&stream) != COMP_OK)
    throw std::bad_alloc{};
  std::string out{scratch.data(), stream.total_out};
  // A huge event must not pin its buffer forever.
  if (scratch.size() > (1u << 20))
    std::string{}.swap(scratch);
  return out;
}

caf::expected<std::string> zlib_decompress(std::string_view data,
                                           size_t max_out) {
  return inflate_bounded(data, zlib_window, max_out, "zlib data");
}

caf::expected<std::string> gzip_decompress(std::string_view data,
                                           size_t max_out, const char* what) {
  return inflate_bounded(data, gzip_window, max_out, what, true);
}

caf::expected<std::string> deflate_decompress(std::string_view data,
                                              size_t max_out,
                                              const char* what) {
  if (looks_like_zlib(data)) {
    auto out = inflate_bounded(data, zlib_window, max_out, what);
    if (out || out.error() != errc::malformed)
      return out;
    // A raw stream whose first bytes happen to look like a zlib header.
    auto raw = inflate_bounded(data, raw_window, max_out, what);
    return raw ? raw : out;
  }
  return inflate_bounded(data, raw_window, max_out, what);
}

} // namespace vigil
