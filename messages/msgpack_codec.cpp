#include "messages/msgpack_codec.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <numeric>
#include <tuple>
#include <utility>

#include <simdjson.h>

#include "messages/errors.hpp"

namespace vigil {

// -- decoding -----------------------------------------------------------------

namespace {

/// Ceiling on the nesting depth whatever the limits say: the reader recurses
/// once per level.
constexpr size_t depth_ceiling = 1024;

/// "1 byte", "2 bytes", "3 entries".
std::string plural(size_t n, std::string_view unit) {
  auto out = std::to_string(n) + ' ';
  if (n == 1)
    return out.append(unit);
  if (unit.ends_with('y'))
    return out.append(unit.substr(0, unit.size() - 1)).append("ies");
  return out.append(unit).append("s");
}

/// Short keys and values are mostly ASCII: checking that first skips the
/// (dispatching) UTF-8 validator.
bool is_ascii(const unsigned char* p, size_t n) {
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, sizeof(word));
    acc |= word;
  }
  for (; i < n; ++i)
    acc |= p[i];
  return (acc & 0x8080808080808080ULL) == 0;
}

/// A recursive reader over the input span. Every declared length is checked
/// against the remaining bytes and the limits before anything is allocated;
/// the first error is stored in `err` and unwinds the recursion.
class reader {
public:
  reader(std::string_view bytes, const decode_limits& limits)
    : data_(reinterpret_cast<const unsigned char*>(bytes.data())),
      size_(bytes.size()),
      limits_(limits),
      max_depth_(std::min(limits.max_depth, depth_ceiling)) {
    // nop
  }

  bool read_document(value& out) {
    auto put = [&out](auto&& x) { out = value{std::forward<decltype(x)>(x)}; };
    if (!read_value(put, 0))
      return false;
    if (pos_ != size_)
      return fail(errc::malformed, "trailing bytes after msgpack document: "
                                     + plural(size_ - pos_, "byte")
                                     + " at offset " + std::to_string(pos_));
    return true;
  }

  caf::error err;

private:
  [[gnu::cold, gnu::noinline]] bool fail(errc code, std::string msg) {
    err = caf::make_error(code, std::move(msg));
    return false;
  }

  bool need(size_t n) {
    if (size_ - pos_ >= n) [[likely]]
      return true;
    return truncated(n);
  }

  // Error paths stay out of line so that need() inlines into the hot loop.
  [[gnu::cold, gnu::noinline]] bool truncated(size_t n) {
    return fail(errc::malformed, "truncated msgpack: need "
                                   + plural(n, "byte") + " at offset "
                                   + std::to_string(pos_));
  }

  // Big-endian loads; callers checked the bounds with need().
  uint64_t load_be(size_t n) {
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i)
      x = (x << 8) | data_[pos_ + i];
    pos_ += n;
    return x;
  }

  bool read_uint(size_t n, uint64_t& x) {
    if (!need(n))
      return false;
    x = load_be(n);
    return true;
  }

  /// Reads `len` bytes as a UTF-8 string at the current position.
  bool read_text(size_t len, std::string_view& out) {
    if (!need(len))
      return false;
    auto p = reinterpret_cast<const char*>(data_ + pos_);
    if (!is_ascii(data_ + pos_, len) && !simdjson::validate_utf8(p, len))
      return fail(errc::malformed, "invalid UTF-8 in string at offset "
                                     + std::to_string(pos_));
    out = std::string_view{p, len};
    pos_ += len;
    return true;
  }

  bool read_binary(size_t len, std::string& out) {
    if (!need(len))
      return false;
    out.assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return true;
  }

  /// Checks a container header: depth, remaining bytes (each entry takes at
  /// least `min_entry_size` bytes) and the document-wide element budget.
  bool admit(size_t depth, size_t count, size_t min_entry_size,
             size_t header_pos, const char* what, const char* unit) {
    if (depth > max_depth_)
      return fail(errc::too_large,
                  "msgpack nesting deeper than " + std::to_string(max_depth_)
                    + " at offset "
                    + std::to_string(header_pos));
    if (count > (size_ - pos_) / min_entry_size)
      return fail(errc::malformed,
                  "truncated msgpack: " + std::string{what} + " at offset "
                    + std::to_string(header_pos) + " declares "
                    + plural(count, unit)
                    + " but only " + plural(size_ - pos_, "byte")
                    + " remain");
    if (count > limits_.max_elements - elements_)
      return fail(errc::too_large,
                  "msgpack document has more than "
                    + std::to_string(limits_.max_elements)
                    + " array elements and map entries (at offset "
                    + std::to_string(header_pos) + ")");
    elements_ += count;
    return true;
  }

  // Sinks construct each decoded value in its final place: no temporaries and
  // no variant move-assignments on the hot path.
  struct array_sink {
    value_array& xs;
    template <class T>
    void operator()(T&& x) {
      xs.emplace_back(std::forward<T>(x));
    }
  };

  struct map_sink {
    value_map& xs;
    std::string_view key;
    template <class T>
    void operator()(T&& x) {
      xs.emplace_back(std::piecewise_construct, std::forward_as_tuple(key),
                      std::forward_as_tuple(std::forward<T>(x)));
    }
  };

  bool read_array(value_array& xs, size_t count, size_t depth,
                  size_t header_pos) {
    if (!admit(depth, count, 1, header_pos, "array", "element"))
      return false;
    xs.reserve(count);
    for (size_t i = 0; i < count; ++i)
      if (!read_value(array_sink{xs}, depth))
        return false;
    return true;
  }

  bool read_key(std::string_view& key) {
    if (!need(1))
      return false;
    auto at = pos_;
    auto tag = data_[pos_++];
    uint64_t len = 0;
    if (tag >= 0xA0 && tag <= 0xBF)
      return read_text(tag & 0x1Fu, key);
    switch (tag) {
      case 0xD9:
      case 0xC4:
        return read_uint(1, len) && read_text(len, key);
      case 0xDA:
      case 0xC5:
        return read_uint(2, len) && read_text(len, key);
      case 0xDB:
      case 0xC6:
        return read_uint(4, len) && read_text(len, key);
      default:
        return fail(errc::malformed, "map key must be a string (type byte 0x"
                                       + hex_byte(tag) + " at offset "
                                       + std::to_string(at) + ")");
    }
  }

  bool read_map(value_map& xs, size_t count, size_t depth,
                size_t header_pos) {
    if (!admit(depth, count, 2, header_pos, "map", "entry"))
      return false;
    xs.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      std::string_view key;
      if (!read_key(key) || !read_value(map_sink{xs, key}, depth))
        return false;
    }
    detail::merge_duplicate_keys(xs);
    return true;
  }

  static std::string hex_byte(unsigned char c) {
    constexpr char hex[] = "0123456789abcdef";
    return {hex[c >> 4], hex[c & 0xF]};
  }

  /// Reads one value and hands it to `put`; `depth` is the nesting level of
  /// the enclosing container.
  template <class Put>
  bool read_value(Put&& put, size_t depth) {
    if (!need(1))
      return false;
    auto at = pos_;
    auto tag = data_[pos_++];
    if (tag <= 0x7F) {
      put(int64_t{tag});
      return true;
    }
    if (tag >= 0xE0) {
      put(int64_t{static_cast<int8_t>(tag)});
      return true;
    }
    if (tag <= 0x8F)
      return put_map(put, tag & 0x0Fu, depth, at);
    if (tag <= 0x9F)
      return put_array(put, tag & 0x0Fu, depth, at);
    std::string_view str;
    uint64_t x = 0;
    if (tag <= 0xBF) {
      if (!read_text(tag & 0x1Fu, str))
        return false;
      put(str);
      return true;
    }
    switch (tag) {
      case 0xC0: put(nullptr); return true;
      case 0xC2: put(false); return true;
      case 0xC3: put(true); return true;
      case 0xC4:
      case 0xC5:
      case 0xC6: {
        binary bin;
        size_t width = size_t{1} << (tag - 0xC4);
        if (!read_uint(width, x) || !read_binary(x, bin.bytes))
          return false;
        put(std::move(bin));
        return true;
      }
      case 0xCA: {
        if (!read_uint(4, x))
          return false;
        auto bits = static_cast<uint32_t>(x);
        float f;
        std::memcpy(&f, &bits, sizeof(f));
        put(static_cast<double>(f));
        return true;
      }
      case 0xCB: {
        if (!read_uint(8, x))
          return false;
        double d;
        std::memcpy(&d, &x, sizeof(d));
        put(d);
        return true;
      }
      case 0xCC:
      case 0xCD:
      case 0xCE:
      case 0xCF:
        if (!read_uint(size_t{1} << (tag - 0xCC), x))
          return false;
        put(x);
        return true;
      case 0xD0:
        if (!read_uint(1, x))
          return false;
        put(int64_t{static_cast<int8_t>(x)});
        return true;
      case 0xD1:
        if (!read_uint(2, x))
          return false;
        put(int64_t{static_cast<int16_t>(x)});
        return true;
      case 0xD2:
        if (!read_uint(4, x))
          return false;
        put(int64_t{static_cast<int32_t>(x)});
        return true;
      case 0xD3:
        if (!read_uint(8, x))
          return false;
        put(static_cast<int64_t>(x));
        return true;
      case 0xD9:
      case 0xDA:
      case 0xDB: {
        size_t width = size_t{1} << (tag - 0xD9);
        if (!read_uint(width, x) || !read_text(x, str))
          return false;
        put(str);
        return true;
      }
      case 0xDC:
      case 0xDD:
        if (!read_uint(tag == 0xDC ? 2 : 4, x))
          return false;
        return put_array(put, x, depth, at);
      case 0xDE:
      case 0xDF:
        if (!read_uint(tag == 0xDE ? 2 : 4, x))
          return false;
        return put_map(put, x, depth, at);
      case 0xC7:
      case 0xC8:
      case 0xC9:
      case 0xD4:
      case 0xD5:
      case 0xD6:
      case 0xD7:
      case 0xD8:
        return fail(errc::malformed, "ext types are not supported (type byte 0x"
                                       + hex_byte(tag) + " at offset "
                                       + std::to_string(at) + ")");
      default: // 0xC1
        return fail(errc::malformed, "invalid msgpack type byte 0x"
                                       + hex_byte(tag) + " at offset "
                                       + std::to_string(at));
    }
  }

  template <class Put>
  bool put_array(Put& put, size_t count, size_t depth, size_t header_pos) {
    value_array xs;
    if (!read_array(xs, count, depth + 1, header_pos))
      return false;
    put(std::move(xs));
    return true;
  }

  template <class Put>
  bool put_map(Put& put, size_t count, size_t depth, size_t header_pos) {
    value_map xs;
    if (!read_map(xs, count, depth + 1, header_pos))
      return false;
    put(std::move(xs));
    return true;
  }

  const unsigned char* data_;
  size_t size_;
  size_t pos_ = 0;
  const decode_limits& limits_;
  size_t max_depth_;
  size_t elements_ = 0;
};

} // namespace

caf::expected<value> decode_msgpack(std::string_view bytes,
                                    const decode_limits& limits) {
  if (bytes.size() > limits.max_bytes)
    return caf::make_error(errc::too_large,
                           "msgpack document of " + plural(bytes.size(), "byte")
                             + " exceeds the limit of "
                             + std::to_string(limits.max_bytes));
  try {
    reader rd{bytes, limits};
    value result;
    if (!rd.read_document(result))
      return std::move(rd.err);
    return result;
  } catch (const std::exception&) {
    // Limits keep allocations proportional to the input; this is a last
    // line of defense so that nothing escapes the API.
    return caf::make_error(errc::too_large,
                           "out of memory decoding msgpack document");
  }
}

namespace detail {

void merge_duplicate_keys(value_map& xs) {
  auto n = xs.size();
  if (n < 2)
    return;
  bool has_dups = false;
  if (n <= 16) {
    for (size_t i = 1; i < n && !has_dups; ++i)
      for (size_t j = 0; j < i && !has_dups; ++j)
        has_dups = xs[i].first == xs[j].first;
    if (!has_dups)
      return;
  }
  // Sort positions by (key, position) so duplicates become neighbors.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    auto c = xs[a].first.compare(xs[b].first);
    return c < 0 || (c == 0 && a < b);
  });
  std::vector<bool> drop(n, false);
  for (size_t i = 0; i + 1 < n;) {
    size_t j = i + 1;
    while (j < n && xs[order[j]].first == xs[order[i]].first)
      ++j;
    if (j - i > 1) {
      has_dups = true;
      // First position keeps its slot and takes the last value.
      xs[order[i]].second = std::move(xs[order[j - 1]].second);
      for (size_t k = i + 1; k < j; ++k)
        drop[order[k]] = true;
    }
    i = j;
  }
  if (!has_dups)
    return;
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (drop[i])
      continue;
    if (out != i)
      xs[out] = std::move(xs[i]);
    ++out;
  }
  xs.resize(out);
}

} // namespace detail

// -- encoding -----------------------------------------------------------------

namespace {

void put_be(std::string& out, unsigned char tag, uint64_t x, size_t n) {
  char buf[9];
  buf[0] = static_cast<char>(tag);
  for (size_t i = 0; i < n; ++i)
    buf[1 + i] = static_cast<char>((x >> (8 * (n - 1 - i))) & 0xFF);
  out.append(buf, n + 1);
}

void put_uint(std::string& out, uint64_t x) {
  if (x <= 0x7F)
    out += static_cast<char>(x);
  else if (x <= 0xFF)
    put_be(out, 0xCC, x, 1);
  else if (x <= 0xFFFF)
    put_be(out, 0xCD, x, 2);
  else if (x <= 0xFFFFFFFF)
    put_be(out, 0xCE, x, 4);
  else
    put_be(out, 0xCF, x, 8);
}

void put_int(std::string& out, int64_t x) {
  if (x >= 0) {
    put_uint(out, static_cast<uint64_t>(x));
    return;
  }
  // Two's complement bits of x; the tag's width selects the low bytes.
  auto bits = static_cast<uint64_t>(x);
  if (x >= -32)
    out += static_cast<char>(bits & 0xFF);
  else if (x >= -128)
    put_be(out, 0xD0, bits, 1);
  else if (x >= -32768)
    put_be(out, 0xD1, bits, 2);
  else if (x >= -2147483648LL)
    put_be(out, 0xD2, bits, 4);
  else
    put_be(out, 0xD3, bits, 8);
}

/// Writes a header from a family with a fix variant (fixstr/fixarray/fixmap)
/// and 8/16/32-bit variants; a zero tag8 means the family has no 8-bit form.
void put_header(std::string& out, size_t n, unsigned char fix_tag,
                size_t fix_max, unsigned char tag8, unsigned char tag16) {
  assert(n <= 0xFFFFFFFF);
  if (n <= fix_max)
    out += static_cast<char>(fix_tag | n);
  else if (tag8 != 0 && n <= 0xFF)
    put_be(out, tag8, n, 1);
  else if (n <= 0xFFFF)
    put_be(out, tag16, n, 2);
  else
    put_be(out, static_cast<unsigned char>(tag16 + 1), n, 4);
}

void put_text(std::string& out, std::string_view s) {
  put_header(out, s.size(), 0xA0, 31, 0xD9, 0xDA);
  out += s;
}

void put_value(std::string& out, const value& x) {
  const auto& d = x.data();
  switch (x.kind()) {
    case value_kind::nil: out += '\xC0'; return;
    case value_kind::boolean: out += x.as_bool() ? '\xC3' : '\xC2'; return;
    case value_kind::integer: put_int(out, std::get<int64_t>(d)); return;
    case value_kind::uinteger: put_uint(out, std::get<uint64_t>(d)); return;
    case value_kind::real: {
      uint64_t bits;
      auto f = std::get<double>(d);
      std::memcpy(&bits, &f, sizeof(bits));
      put_be(out, 0xCB, bits, 8);
      return;
    }
    case value_kind::text: put_text(out, x.as_text()); return;
    case value_kind::bytes: {
      const auto& bytes = x.as_bytes().bytes;
      auto n = bytes.size();
      assert(n <= 0xFFFFFFFF);
      if (n <= 0xFF)
        put_be(out, 0xC4, n, 1);
      else if (n <= 0xFFFF)
        put_be(out, 0xC5, n, 2);
      else
        put_be(out, 0xC6, n, 4);
      out += bytes;
      return;
    }
    case value_kind::array: {
      const auto& xs = x.as_array();
      put_header(out, xs.size(), 0x90, 15, 0, 0xDC);
      for (const auto& y : xs)
        put_value(out, y);
      return;
    }
    case value_kind::map: {
      const auto& xs = x.as_map();
      put_header(out, xs.size(), 0x80, 15, 0, 0xDE);
      for (const auto& [k, v] : xs) {
        put_text(out, k);
        put_value(out, v);
      }
      return;
    }
  }
}

} // namespace

void encode_msgpack(const value& x, std::string& out) {
  put_value(out, x);
}

std::string encode_msgpack(const value& x) {
  std::string out;
  out.reserve(64);
  put_value(out, x);
  return out;
}

} // namespace vigil
