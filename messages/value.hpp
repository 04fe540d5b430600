#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace vigil {

class value;

/// An ordered array of values (msgpack array, JSON array, Python list/tuple).
using value_array = std::vector<value>;

/// An ordered map with string keys (msgpack map, JSON object, Python dict).
/// Kept as a vector: task kwargs are small and order is worth keeping.
using value_map = std::vector<std::pair<std::string, value>>;

/// Raw bytes (msgpack bin, Python bytes), distinct from text.
struct binary {
  std::string bytes;
  friend bool operator==(const binary&, const binary&) = default;
};

/// The kinds a value can have, in the order of `value::storage`.
enum class value_kind : uint8_t {
  nil,
  boolean,
  integer,  // int64_t
  uinteger, // uint64_t above INT64_MAX only
  real,     // double
  text,     // std::string, UTF-8
  bytes,    // binary
  array,
  map,
};

/// Returns "nil", "bool", "int", "int", "float", "str", "bytes", "list",
/// "dict": the names task schemas and error messages use.
const char* to_string(value_kind k);

/// A dynamically typed value as carried by task arguments and results: the
/// data model msgpack and JSON share (Python's None, bool, int, float, str,
/// bytes, list, dict).
class value {
public:
  using storage = std::variant<std::monostate, bool, int64_t, uint64_t,
                               double, std::string, binary, value_array,
                               value_map>;

  value() = default;
  value(std::nullptr_t) {}
  value(bool x) : data_(x) {}
  value(int x) : data_(int64_t{x}) {}
  value(int64_t x) : data_(x) {}
  /// Stores values up to INT64_MAX as integer, larger ones as uinteger.
  value(uint64_t x);
  value(double x) : data_(x) {}
  value(const char* x) : data_(std::string{x}) {}
  value(std::string x) : data_(std::move(x)) {}
  value(std::string_view x) : data_(std::string{x}) {}
  value(binary x) : data_(std::move(x)) {}
  value(value_array x) : data_(std::move(x)) {}
  value(value_map x) : data_(std::move(x)) {}

  value_kind kind() const { return static_cast<value_kind>(data_.index()); }

  bool is_nil() const { return kind() == value_kind::nil; }
  bool is_bool() const { return kind() == value_kind::boolean; }
  /// True for integer and uinteger.
  bool is_int() const;
  /// True for integer, uinteger and real.
  bool is_number() const;
  bool is_text() const { return kind() == value_kind::text; }
  bool is_bytes() const { return kind() == value_kind::bytes; }
  bool is_array() const { return kind() == value_kind::array; }
  bool is_map() const { return kind() == value_kind::map; }

  /// Accessors; the caller checks the kind first (they assert otherwise).
  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const;   // integer (uinteger is clamped to INT64_MAX)
  double as_double() const; // any number
  const std::string& as_text() const { return std::get<std::string>(data_); }
  const binary& as_bytes() const { return std::get<binary>(data_); }
  const value_array& as_array() const { return std::get<value_array>(data_); }
  value_array& as_array() { return std::get<value_array>(data_); }
  const value_map& as_map() const { return std::get<value_map>(data_); }
  value_map& as_map() { return std::get<value_map>(data_); }

  /// Looks up `key` in a map; nullptr if this is not a map or has no such key.
  const value* find(std::string_view key) const;

  /// Inserts or replaces `key` in a map (turns nil into an empty map first).
  void set(std::string key, value x);

  const storage& data() const { return data_; }

  friend bool operator==(const value& x, const value& y);

private:
  storage data_;
};

/// Renders `x` the way Python's repr() would (`None`, `True`, `'text'`,
/// `b'\x00'`, `[1, 2]`, `{'a': 1}`), cut to at most `max_len` bytes ending in
/// "..." (never inside a UTF-8 sequence).
/// Used for Celery's `argsrepr` / `kwargsrepr` headers and for logs.
std::string to_repr(const value& x, size_t max_len = 1024);

/// Appends `x` formatted like Python's repr(float): shortest round-trip
/// digits, always with a '.' or an exponent (`1.0`, `0.0001`, `1e-05`,
/// `1e+16`), and `inf`, `-inf`, `nan`. Shared by to_repr and the JSON encoder.
void append_python_float(std::string& out, double x);

} // namespace vigil
