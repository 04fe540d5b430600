#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <yaml-cpp/yaml.h>

namespace vigil {

/// The value types a configuration key can have.
enum class key_type {
  /// Any scalar, kept as text.
  string,
  /// A YAML integer (decimal, optional sign), range-checked.
  integer,
  /// A YAML integer or float, range-checked; finite only.
  number,
  /// true/false/yes/no (any case).
  boolean,
  /// One of `key_spec::choices` (any case; stored as written in the table).
  choice,
  /// A URL whose scheme is one of `key_spec::choices`; non-memory schemes
  /// need a host.
  url,
  /// A YAML map, taken whole.
  map,
  /// A YAML sequence of non-empty scalars (strings).
  list,
};

/// Returns "string", "integer", "number", "boolean", "choice", "url", "map"
/// or "list".
const char* to_string(key_type t);

/// One known configuration key: one row of the schema table.
struct key_spec {
  /// Flat dotted name, e.g. "broker.url".
  std::string key;
  /// The value type.
  key_type type;
  /// The default as YAML text, e.g. "memory://", "3600", "[]", "{}"; an
  /// empty string means the key is unset by default.
  std::string default_yaml;
  /// One line for the docs and `vigil config get --help`.
  std::string help;
  /// When true, `config::display` prints "********" instead of the value and
  /// problem messages never quote it.
  bool secret = false;
  /// Allowed values for key_type::choice; allowed URL schemes (without
  /// "://") for key_type::url.
  std::vector<std::string> choices = {};
  /// Inclusive lower bound for key_type::integer and key_type::number.
  double min = -std::numeric_limits<double>::infinity();
  /// Inclusive upper bound for key_type::integer and key_type::number.
  double max = std::numeric_limits<double>::infinity();
};

/// Returns the table of all known keys, sorted by key.
const std::vector<key_spec>& config_schema();

/// Returns the row for `key`, or nullptr when the key is unknown.
const key_spec* find_key_spec(std::string_view key);

/// A value that passed `parse_value`, in every form the getters need.
struct typed_value {
  /// The value as a YAML node (null when unset). Never mutated once built.
  YAML::Node node;
  /// Whether the key has a value (false for an unset key).
  bool set = false;
  /// Scalar text (normalized for choice and boolean); flow YAML for list
  /// and map.
  std::string text;
  /// The value of an integer key; a number key truncated toward zero.
  int64_t integer = 0;
  /// The value of an integer or number key.
  double number = 0;
  /// The value of a boolean key.
  bool boolean = false;
  /// The items of a list key.
  std::vector<std::string> items;
};

/// Checks `value` against `spec` and converts it. A null node is an error
/// here (callers decide what null means). On failure the error is
/// errc::bad_config whose text is the reason without the key, e.g.
/// "expected an integer >= 1, got 'lots'"; URL passwords and secret values
/// never appear in it. Never throws.
caf::expected<typed_value> parse_value(const key_spec& spec,
                                       const YAML::Node& value);

/// Parses `spec.default_yaml`; unset (set == false) when it is empty.
/// The table's defaults are checked by the unit tests, so this does not fail
/// for known keys; an invalid default yields an unset value.
typed_value default_value(const key_spec& spec);

/// Renders `value` for humans with secrets masked: "********" for secret
/// keys, URLs with their password masked (also inside lists and maps, where
/// values under a "password" key are masked too), lists and maps as flow
/// YAML, "" when unset.
std::string display_value(const key_spec& spec, const typed_value& value);

} // namespace vigil
