#include "messages/msgpack_codec.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <limits>
#include <numeric>
#include <tuple>
#include <utility>

#include "messages/msgpack_packer.hpp" // first: it includes <stddef.h>

#include <msgpack/unpack.hpp> // the parser's integer loaders
#include <msgpack/parse.hpp>

#include <simdjson.h>

#include "messages/errors.hpp"

namespace vigil {

// -- decoding -----------------------------------------------------------------

namespace {

/// Ceiling on the nesting depth whatever the limits say: the value's
/// destructor recurses once per level.
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

std::string hex_byte(unsigned char c) {
  constexpr char hex[] = "0123456789abcdef";
  return {hex[c >> 4], hex[c & 0xF]};
}

/// Short keys and values are mostly ASCII: checking that first skips the
/// (dispatching) UTF-8 validator.
bool is_ascii(const char* p, size_t n) {
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, sizeof(word));
    acc |= word;
  }
  for (; i < n; ++i)
    acc |= static_cast<unsigned char>(p[i]);
  return (acc & 0x8080808080808080ULL) == 0;
}

bool valid_utf8(const char* p, size_t n) {
  return is_ascii(p, n) || simdjson::validate_utf8(p, n);
}

/// The bytes a msgpack token's header takes, its type byte included (a str
/// or bin payload not counted). msgpack-cxx's visitor hands over values, not
/// offsets; the visitor below follows the offset of each token with this
/// table, for the messages and for checking a container's declared size
/// against the bytes left.
constexpr std::array<uint8_t, 256> header_sizes = [] {
  std::array<uint8_t, 256> t{};
  for (auto& x : t)
    x = 1; // fixint, fixmap, fixarray, fixstr, nil, bool, 0xc1
  for (int tag : {0xc4, 0xc7, 0xcc, 0xd0, 0xd9})
    t[tag] = 2;
  for (int tag : {0xc5, 0xc8, 0xcd, 0xd1, 0xda, 0xdc, 0xde})
    t[tag] = 3;
  for (int tag : {0xc6, 0xc9, 0xca, 0xce, 0xd2, 0xdb, 0xdd, 0xdf})
    t[tag] = 5;
  for (int tag : {0xcb, 0xcf, 0xd3})
    t[tag] = 9;
  return t;
}();

bool is_ext(unsigned char tag) {
  return (tag >= 0xc7 && tag <= 0xc9) || (tag >= 0xd4 && tag <= 0xd8);
}

/// str and bin: what a map key may be.
bool is_string(unsigned char tag) {
  return (tag >= 0xa0 && tag <= 0xbf) || (tag >= 0xd9 && tag <= 0xdb)
         || (tag >= 0xc4 && tag <= 0xc6);
}

/// A msgpack-cxx visitor that builds a `value` in place as the parser
/// reports tokens, under the decode limits. Every container is reserved to
/// its declared size (checked against the bytes left) before its elements
/// arrive, so the pointers on the frame stack stay valid. The first error is
/// kept in `err` and stops the parser (a callback returning false).
///
/// The parser runs flattened (see parse() below), so every callback would
/// be inlined at each of the parser's call sites: the scalar ones are (they
/// are small and hot), the ones marked noinline stay out of line to keep
/// the parser's code small (~50 KB rather than ~500 KB).
class value_builder {
public:
  value_builder(std::string_view bytes, const decode_limits& limits)
    : data_(bytes.data()),
      size_(bytes.size()),
      limits_(limits),
      max_depth_(std::min(limits.max_depth, depth_ceiling)) {
    // nop
  }

  value result;
  caf::error err;

  // -- the visitor interface of msgpack::parse ------------------------------

  bool visit_nil() {
    return put(nullptr);
  }

  bool visit_boolean(bool x) {
    return put(x);
  }

  bool visit_positive_integer(uint64_t x) {
    // As value(uint64_t) does, inline: up to INT64_MAX is an integer.
    if (x <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      [[likely]]
      return put(static_cast<int64_t>(x));
    return put(x);
  }

  bool visit_negative_integer(int64_t x) {
    return put(x); // also int8..int64 forms holding positive values
  }

  bool visit_float32(float x) {
    return put(static_cast<double>(x));
  }

  bool visit_float64(double x) {
    return put(x);
  }

  [[gnu::noinline]] bool visit_str(const char* p, uint32_t n) {
    auto payload = pos_ + header_sizes[tag()];
    if (n != 0 && !valid_utf8(p, n))
      return fail(errc::malformed, "invalid UTF-8 in string at offset "
                                     + std::to_string(payload));
    std::string_view text = n != 0 ? std::string_view{p, n}
                                   : std::string_view{};
    if (in_key_) {
      key_ = text;
      pos_ = payload + n;
      return true;
    }
    return put(text, n);
  }

  [[gnu::noinline]] bool visit_bin(const char* p, uint32_t n) {
    if (in_key_) {
      // A bin key holding UTF-8 reads as text (Python 2 era producers).
      auto payload = pos_ + header_sizes[tag()];
      if (n != 0 && !valid_utf8(p, n))
        return fail(errc::malformed, "invalid UTF-8 in string at offset "
                                       + std::to_string(payload));
      key_ = n != 0 ? std::string_view{p, n} : std::string_view{};
      pos_ = payload + n;
      return true;
    }
    binary bin;
    if (n != 0)
      bin.bytes.assign(p, n);
    return put(std::move(bin), n);
  }

  [[gnu::cold, gnu::noinline]] bool visit_ext(const char*, uint32_t) {
    return in_key_ ? key_error() : ext_error();
  }

  [[gnu::noinline]] bool start_array(uint32_t n) {
    auto at = pos_;
    if (in_key_)
      return key_error();
    pos_ += header_sizes[tag()];
    if (!admit(n, 1, at, "array", "element"))
      return false;
    auto& xs = emplace(value_array{}).as_array();
    xs.reserve(n);
    push(frame{&xs, nullptr});
    return true;
  }

  bool start_array_item() {
    return true;
  }

  bool end_array_item() {
    return true;
  }

  bool end_array() {
    pop();
    return true;
  }

  [[gnu::noinline]] bool start_map(uint32_t n) {
    auto at = pos_;
    if (in_key_)
      return key_error();
    pos_ += header_sizes[tag()];
    if (!admit(n, 2, at, "map", "entry"))
      return false;
    auto& xs = emplace(value_map{}).as_map();
    xs.reserve(n);
    push(frame{nullptr, &xs});
    return true;
  }

  bool start_map_key() {
    in_key_ = true;
    return true;
  }

  bool end_map_key() {
    in_key_ = false;
    return true;
  }

  bool start_map_value() {
    return true;
  }

  bool end_map_value() {
    return true;
  }

  [[gnu::noinline]] bool end_map() {
    detail::merge_duplicate_keys(*top_.map);
    pop();
    return true;
  }

  /// The parser met a byte that starts no msgpack type (only 0xc1).
  [[gnu::cold, gnu::noinline]] void parse_error(size_t, size_t) {
    if (in_key_) {
      key_error();
      return;
    }
    fail(errc::malformed, "invalid msgpack type byte 0x" + hex_byte(tag())
                            + " at offset " + std::to_string(pos_));
  }

  /// The input ended inside the token at pos_; says what it lacked, as the
  /// type byte tells (the parser reports only that bytes are missing).
  [[gnu::cold, gnu::noinline]] void insufficient_bytes(size_t, size_t) {
    if (pos_ >= size_) {
      truncated(1, pos_);
      return;
    }
    auto t = tag();
    if (in_key_ && !is_string(t)) {
      key_error();
      return;
    }
    if (is_ext(t)) {
      ext_error();
      return;
    }
    size_t width = header_sizes[t] - 1u;
    if (size_ - pos_ - 1 < width) {
      truncated(width, pos_ + 1);
      return;
    }
    // The header is whole: a str or bin payload is cut.
    size_t len = t & 0x1Fu; // fixstr
    if (t < 0xa0 || t > 0xbf) {
      len = 0;
      for (size_t i = 0; i < width; ++i)
        len = (len << 8) | static_cast<unsigned char>(data_[pos_ + 1 + i]);
    }
    truncated(len, pos_ + 1 + width);
  }

private:
  struct frame {
    value_array* array; // at most one is set (neither: the top level)
    value_map* map;
  };

  unsigned char tag() const {
    return static_cast<unsigned char>(data_[pos_]);
  }

  [[gnu::cold, gnu::noinline]] bool fail(errc code, std::string msg) {
    err = caf::make_error(code, std::move(msg));
    return false;
  }

  [[gnu::cold, gnu::noinline]] void truncated(size_t n, size_t at) {
    fail(errc::malformed, "truncated msgpack: need " + plural(n, "byte")
                            + " at offset " + std::to_string(at));
  }

  [[gnu::cold, gnu::noinline]] bool key_error() {
    return fail(errc::malformed, "map key must be a string (type byte 0x"
                                   + hex_byte(tag()) + " at offset "
                                   + std::to_string(pos_) + ")");
  }

  [[gnu::cold, gnu::noinline]] bool ext_error() {
    return fail(errc::malformed, "ext types are not supported (type byte 0x"
                                   + hex_byte(tag()) + " at offset "
                                   + std::to_string(pos_) + ")");
  }

  /// Checks a container header at `header_pos` (pos_ is past it): depth,
  /// bytes left (each entry takes at least `min_entry_size` bytes) and the
  /// document-wide element budget.
  bool admit(size_t count, size_t min_entry_size, size_t header_pos,
             const char* what, const char* unit) {
    if (depth_ + 1 > max_depth_)
      return fail(errc::too_large,
                  "msgpack nesting deeper than " + std::to_string(max_depth_)
                    + " at offset " + std::to_string(header_pos));
    if (count > (size_ - pos_) / min_entry_size)
      return fail(errc::malformed,
                  "truncated msgpack: " + std::string{what} + " at offset "
                    + std::to_string(header_pos) + " declares "
                    + plural(count, unit) + " but only "
                    + plural(size_ - pos_, "byte") + " remain");
    if (count > limits_.max_elements - elements_)
      return fail(errc::too_large,
                  "msgpack document has more than "
                    + std::to_string(limits_.max_elements)
                    + " array elements and map entries (at offset "
                    + std::to_string(header_pos) + ")");
    elements_ += count;
    return true;
  }

  /// Constructs `x` in its final place (the root, the innermost array, or
  /// the innermost map under the last key) and returns it.
  template <class T>
  value& emplace(T&& x) {
    if (top_.array != nullptr) [[likely]]
      return top_.array->emplace_back(std::forward<T>(x));
    if (top_.map != nullptr)
      return top_.map
        ->emplace_back(std::piecewise_construct,
                       std::forward_as_tuple(key_),
                       std::forward_as_tuple(std::forward<T>(x)))
        .second;
    result = value{std::forward<T>(x)};
    return result;
  }

  /// Enters a container: `top_` is the innermost one (both pointers null
  /// at the top level), the frames below it wait in frames_.
  void push(frame f) {
    frames_[depth_++] = top_;
    top_ = f;
  }

  void pop() {
    top_ = frames_[--depth_];
  }

  /// Places a scalar and steps past its token (`payload` bytes after the
  /// header for str and bin).
  template <class T>
  bool put(T&& x, size_t payload = 0) {
    if (in_key_) [[unlikely]]
      return key_error();
    pos_ += header_sizes[tag()] + payload;
    if (top_.array != nullptr) [[likely]]
      top_.array->emplace_back(std::forward<T>(x));
    else if (top_.map != nullptr)
      top_.map->emplace_back(std::piecewise_construct,
                             std::forward_as_tuple(key_),
                             std::forward_as_tuple(std::forward<T>(x)));
    else
      emplace_root(std::forward<T>(x));
    return true;
  }

  /// A scalar document, kept out of the flattened parser.
  template <class T>
  [[gnu::noinline]] void emplace_root(T&& x) {
    result = value{std::forward<T>(x)};
  }

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  const decode_limits& limits_;
  size_t max_depth_;
  size_t elements_ = 0;
  bool in_key_ = false;
  std::string_view key_;
  size_t depth_ = 0;
  frame top_{nullptr, nullptr};
  // Uninitialized: only frames_[0, depth_) are ever read.
  frame frames_[depth_ceiling];
};

/// Runs msgpack-cxx's parser with the scalar callbacks and the parser's
/// per-token bookkeeping (after_visit_proc, its stack's consume) inlined
/// into it: GCC keeps those out of line otherwise, which made decoding a
/// task body a third slower than the hand-written reader it replaced
/// (callgrind: 3,068 against 2,311 instructions; flattened: 2,736).
[[gnu::flatten]] bool parse(std::string_view bytes, size_t& off,
                            value_builder& builder) {
  return msgpack::parse(bytes.data(), bytes.size(), off, builder);
}

} // namespace

caf::expected<value> decode_msgpack(std::string_view bytes,
                                    const decode_limits& limits) {
  if (bytes.size() > limits.max_bytes)
    return caf::make_error(errc::too_large,
                           "msgpack document of " + plural(bytes.size(), "byte")
                             + " exceeds the limit of "
                             + std::to_string(limits.max_bytes));
  try {
    value_builder builder{bytes, limits};
    size_t off = 0;
    if (!parse(bytes, off, builder))
      return std::move(builder.err);
    if (off != bytes.size())
      return caf::make_error(errc::malformed,
                             "trailing bytes after msgpack document: "
                               + plural(bytes.size() - off, "byte")
                               + " at offset " + std::to_string(off));
    return std::move(builder.result);
  } catch (const std::exception&) {
    // The parser itself does not throw; allocations might. Limits keep them
    // proportional to the input: this is a last line of defense so that
    // nothing escapes the API.
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

void pack_value(msgpack_packer& pk, msgpack_sink& sink, const value& x) {
  const auto& d = x.data();
  switch (x.kind()) {
    case value_kind::nil: pk.pack_nil(); return;
    case value_kind::boolean:
      x.as_bool() ? pk.pack_true() : pk.pack_false();
      return;
    case value_kind::integer: pk.pack_int64(std::get<int64_t>(d)); return;
    case value_kind::uinteger: pk.pack_uint64(std::get<uint64_t>(d)); return;
    case value_kind::real: {
      // msgpack-cxx 4.1's pack_double writes a whole number (1.0, -0.0) as
      // an integer; Python's msgpack, kombu and vigil's own decoder keep it
      // a float, so the float64 form is written here.
      uint64_t bits;
      auto f = std::get<double>(d);
      std::memcpy(&bits, &f, sizeof(bits));
      char buf[9];
      buf[0] = static_cast<char>(0xcb);
      _msgpack_store64(&buf[1], bits);
      sink.write(buf, sizeof(buf));
      return;
    }
    case value_kind::text: {
      pack_text(pk, x.as_text());
      return;
    }
    case value_kind::bytes: {
      const auto& s = x.as_bytes().bytes;
      assert(s.size() <= UINT32_MAX);
      pk.pack_bin(static_cast<uint32_t>(s.size()));
      pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
      return;
    }
    case value_kind::array: {
      const auto& xs = x.as_array();
      assert(xs.size() <= UINT32_MAX);
      pk.pack_array(static_cast<uint32_t>(xs.size()));
      for (const auto& y : xs)
        pack_value(pk, sink, y);
      return;
    }
    case value_kind::map: {
      const auto& xs = x.as_map();
      assert(xs.size() <= UINT32_MAX);
      pk.pack_map(static_cast<uint32_t>(xs.size()));
      for (const auto& [k, v] : xs) {
        pack_text(pk, k);
        pack_value(pk, sink, v);
      }
      return;
    }
  }
}

} // namespace

void encode_msgpack(const value& x, std::string& out) {
  msgpack_sink sink{out};
  msgpack_packer pk{sink};
  pack_value(pk, sink, x);
}

std::string encode_msgpack(const value& x) {
  std::string out;
  out.reserve(64);
  encode_msgpack(x, out);
  return out;
}

} // namespace vigil
