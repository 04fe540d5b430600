#include "messages/value.hpp"

#include <algorithm>
#include <cassert>
#include <iterator>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

#include "messages/utf8.hpp"

namespace vigil {

const char* to_string(value_kind k) {
  switch (k) {
    case value_kind::nil: return "nil";
    case value_kind::boolean: return "bool";
    case value_kind::integer: return "int";
    case value_kind::uinteger: return "int";
    case value_kind::real: return "float";
    case value_kind::text: return "str";
    case value_kind::bytes: return "bytes";
    case value_kind::array: return "list";
    case value_kind::map: return "dict";
  }
  return "unknown";
}

value::value(uint64_t x) {
  if (x <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    data_ = static_cast<int64_t>(x);
  else
    data_ = x;
}

bool value::is_int() const {
  auto k = kind();
  return k == value_kind::integer || k == value_kind::uinteger;
}

bool value::is_number() const {
  return is_int() || kind() == value_kind::real;
}

int64_t value::as_int() const {
  if (auto x = std::get_if<int64_t>(&data_))
    return *x;
  if (std::holds_alternative<uint64_t>(data_))
    return std::numeric_limits<int64_t>::max();
  assert(!"value::as_int called on a non-integer");
  return 0;
}

double value::as_double() const {
  if (auto x = std::get_if<double>(&data_))
    return *x;
  if (auto x = std::get_if<int64_t>(&data_))
    return static_cast<double>(*x);
  if (auto x = std::get_if<uint64_t>(&data_))
    return static_cast<double>(*x);
  assert(!"value::as_double called on a non-number");
  return 0.0;
}

const value* value::find(std::string_view key) const {
  auto xs = std::get_if<value_map>(&data_);
  if (xs == nullptr)
    return nullptr;
  // Search from the back: with duplicate keys the last one wins, as in Python.
  for (auto i = xs->rbegin(); i != xs->rend(); ++i)
    if (i->first == key)
      return &i->second;
  return nullptr;
}

void value::set(std::string key, value x) {
  if (!is_map()) {
    assert(is_nil());
    data_ = value_map{};
  }
  auto& xs = std::get<value_map>(data_);
  for (auto i = xs.rbegin(); i != xs.rend(); ++i) {
    if (i->first == key) {
      i->second = std::move(x);
      return;
    }
  }
  xs.emplace_back(std::move(key), std::move(x));
}

namespace {

bool maps_equal(const value_map& xs, const value_map& ys) {
  if (xs.size() != ys.size())
    return false;
  for (size_t i = 0; i < xs.size(); ++i) {
    // Same order is the common case; fall back to a lookup like Python's
    // order-insensitive dict comparison.
    const value* y = nullptr;
    if (xs[i].first == ys[i].first) {
      y = &ys[i].second;
    } else {
      for (const auto& kvp : ys) {
        if (kvp.first == xs[i].first) {
          y = &kvp.second;
          break;
        }
      }
    }
    if (y == nullptr || !(xs[i].second == *y))
      return false;
  }
  return true;
}

} // namespace

bool operator==(const value& x, const value& y) {
  const auto& dx = x.data();
  const auto& dy = y.data();
  if (dx.index() != dy.index()) {
    // An integer and an uinteger compare by numeric value.
    auto i = std::get_if<int64_t>(&dx);
    auto u = std::get_if<uint64_t>(&dy);
    if (i == nullptr) {
      i = std::get_if<int64_t>(&dy);
      u = std::get_if<uint64_t>(&dx);
    }
    return i != nullptr && u != nullptr && *i >= 0
           && static_cast<uint64_t>(*i) == *u;
  }
  switch (x.kind()) {
    case value_kind::nil: return true;
    case value_kind::boolean: return std::get<bool>(dx) == std::get<bool>(dy);
    case value_kind::integer:
      return std::get<int64_t>(dx) == std::get<int64_t>(dy);
    case value_kind::uinteger:
      return std::get<uint64_t>(dx) == std::get<uint64_t>(dy);
    case value_kind::real: {
      auto a = std::get<double>(dx);
      auto b = std::get<double>(dy);
      // NaN equals NaN so that equality stays reflexive (round-trip checks).
      return a == b || (std::isnan(a) && std::isnan(b));
    }
    case value_kind::text:
      return std::get<std::string>(dx) == std::get<std::string>(dy);
    case value_kind::bytes: return std::get<binary>(dx) == std::get<binary>(dy);
    case value_kind::array:
      return std::get<value_array>(dx) == std::get<value_array>(dy);
    case value_kind::map:
      return maps_equal(std::get<value_map>(dx), std::get<value_map>(dy));
  }
  return false;
}

// -- repr ---------------------------------------------------------------------

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

void append_hex(std::string& out, uint32_t x, int digits) {
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
    out += hex_digits[(x >> shift) & 0xF];
}

/// Non-ASCII code points Python's str.isprintable() rejects, as inclusive
/// ranges: the assigned ones of categories Cc, Cf, Co, Zs, Zl and Zp in
/// Python 3.11 (Unicode 14). Unassigned code points (Cn) count as printable
/// here although Python escapes them: that table would be 700 ranges.
constexpr std::pair<uint32_t, uint32_t> non_printable[] = {
  {0x80, 0xA0},       {0xAD, 0xAD},       {0x600, 0x605},
  {0x61C, 0x61C},     {0x6DD, 0x6DD},     {0x70F, 0x70F},
  {0x890, 0x891},     {0x8E2, 0x8E2},     {0x1680, 0x1680},
  {0x180E, 0x180E},   {0x2000, 0x200F},   {0x2028, 0x202F},
  {0x205F, 0x2064},   {0x2066, 0x206F},   {0x3000, 0x3000},
  {0xD800, 0xF8FF},   {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},
  {0x110BD, 0x110BD}, {0x110CD, 0x110CD}, {0x13430, 0x13438},
  {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
  {0xE0020, 0xE007F}, {0xF0000, 0xFFFFD}, {0x100000, 0x10FFFD},
};

bool is_printable(uint32_t cp) {
  auto i = std::upper_bound(std::begin(non_printable), std::end(non_printable),
                            cp, [](uint32_t x, const auto& range) {
                              return x < range.first;
                            });
  return i == std::begin(non_printable) || cp > std::prev(i)->second;
}

/// Picks Python's quote: single unless the text has ' and no ".
char pick_quote(std::string_view s) {
  return s.find('\'') != std::string_view::npos
             && s.find('"') == std::string_view::npos
           ? '"'
           : '\'';
}

/// Appends an escape for an ASCII byte if it needs one; returns false if the
/// byte is printed as is.
bool escape_ascii(std::string& out, unsigned char c, char quote) {
  switch (c) {
    case '\\': out += "\\\\"; return true;
    case '\n': out += "\\n"; return true;
    case '\r': out += "\\r"; return true;
    case '\t': out += "\\t"; return true;
    default: break;
  }
  if (c == static_cast<unsigned char>(quote)) {
    out += '\\';
    out += quote;
    return true;
  }
  if (c < 0x20 || c >= 0x7F) {
    out += "\\x";
    append_hex(out, c, 2);
    return true;
  }
  return false;
}

void repr_text(std::string& out, std::string_view s, size_t limit) {
  auto quote = pick_quote(s);
  out += quote;
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  size_t i = 0;
  while (i < n && out.size() <= limit) {
    if (p[i] < 0x80) {
      if (!escape_ascii(out, p[i], quote))
        out += static_cast<char>(p[i]);
      ++i;
      continue;
    }
    auto len = utf8_sequence_length(p + i, n - i);
    auto cp = len > 0 ? utf8_code_point(p + i, len) : 0;
    if (len == 0) {
      // Not UTF-8 (only possible for hand-built values): show the raw byte.
      out += "\\x";
      append_hex(out, p[i], 2);
      ++i;
    } else if (is_printable(cp)) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      if (cp < 0x100) {
        out += "\\x";
        append_hex(out, cp, 2);
      } else if (cp < 0x10000) {
        out += "\\u";
        append_hex(out, cp, 4);
      } else {
        out += "\\U";
        append_hex(out, cp, 8);
      }
      i += len;
    }
  }
  out += quote;
}

void repr_bytes(std::string& out, std::string_view s, size_t limit) {
  auto quote = pick_quote(s);
  out += 'b';
  out += quote;
  for (size_t i = 0; i < s.size() && out.size() <= limit; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (!escape_ascii(out, c, quote))
      out += static_cast<char>(c);
  }
  out += quote;
}

template <class T>
void append_int(std::string& out, T x) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  out.append(buf, res.ptr);
}

void repr_value(std::string& out, const value& x, size_t limit) {
  switch (x.kind()) {
    case value_kind::nil: out += "None"; return;
    case value_kind::boolean: out += x.as_bool() ? "True" : "False"; return;
    case value_kind::integer:
      append_int(out, std::get<int64_t>(x.data()));
      return;
    case value_kind::uinteger:
      append_int(out, std::get<uint64_t>(x.data()));
      return;
    case value_kind::real: append_python_float(out, x.as_double()); return;
    case value_kind::text: repr_text(out, x.as_text(), limit); return;
    case value_kind::bytes: repr_bytes(out, x.as_bytes().bytes, limit); return;
    case value_kind::array: {
      out += '[';
      bool first = true;
      for (const auto& y : x.as_array()) {
        if (out.size() > limit)
          return;
        if (!first)
          out += ", ";
        first = false;
        repr_value(out, y, limit);
      }
      out += ']';
      return;
    }
    case value_kind::map: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : x.as_map()) {
        if (out.size() > limit)
          return;
        if (!first)
          out += ", ";
        first = false;
        repr_text(out, k, limit);
        out += ": ";
        repr_value(out, v, limit);
      }
      out += '}';
      return;
    }
  }
}

} // namespace

void append_python_float(std::string& out, double x) {
  if (std::isnan(x)) {
    out += "nan";
    return;
  }
  if (std::isinf(x)) {
    out += x < 0 ? "-inf" : "inf";
    return;
  }
  // Fast path for whole numbers below 2^53: their shortest repr is the exact
  // integer (to_chars on doubles is several times slower than on integers).
  if (x != 0 && std::fabs(x) < 9007199254740992.0 && x == std::trunc(x)) {
    append_int(out, static_cast<int64_t>(x));
    out += ".0";
    return;
  }
  // Shortest round-trip digits in scientific form: "-d.ddde+XX".
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), x,
                           std::chars_format::scientific);
  std::string_view sci{buf, static_cast<size_t>(res.ptr - buf)};
  auto e_pos = sci.find('e');
  std::string_view mantissa = sci.substr(0, e_pos);
  int exp10 = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+'),
                  sci.data() + sci.size(), exp10);
  bool negative = mantissa.front() == '-';
  if (negative)
    mantissa.remove_prefix(1);
  char digits[24];
  size_t ndigits = 0;
  for (char c : mantissa)
    if (c != '.')
      digits[ndigits++] = c;
  // Python's repr switches to exponent notation outside 1e-5 <= |x| < 1e16;
  // to_chars already formats the exponent the same way ("1e-05", "1e+16").
  int decpt = exp10 + 1;
  if (decpt <= -4 || decpt > 16) {
    out += sci;
    return;
  }
  if (negative)
    out += '-';
  if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out.append(digits, ndigits);
  } else if (static_cast<size_t>(decpt) >= ndigits) {
    out.append(digits, ndigits);
    out.append(static_cast<size_t>(decpt) - ndigits, '0');
    out += ".0";
  } else {
    out.append(digits, static_cast<size_t>(decpt));
    out += '.';
    out.append(digits + decpt, ndigits - static_cast<size_t>(decpt));
  }
}

std::string to_repr(const value& x, size_t max_len) {
  std::string out;
  // Rendering stops soon after passing max_len, so huge values stay cheap.
  repr_value(out, x, max_len);
  if (out.size() <= max_len)
    return out;
  if (max_len < 3)
    return std::string(max_len, '.');
  auto cut = max_len - 3;
  // Never split a UTF-8 sequence.
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80)
    --cut;
  out.resize(cut);
  out += "...";
  return out;
}

} // namespace vigil
