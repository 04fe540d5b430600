#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <yaml-cpp/yaml.h>

#include "config/schema.hpp"

namespace vigil {

/// One thing wrong with a configuration.
struct config_problem {
  /// The flat key the problem is about ("" when it concerns the whole file).
  std::string key;
  /// A full sentence that names the key (and the environment variable, when
  /// the value came from one), e.g.
  /// "broker.prefetch: expected an integer >= 1, got 'lots'".
  std::string message;
};

/// The effective configuration: built-in defaults, overridden by a YAML file,
/// overridden by VIGIL_* environment variables, overridden by `set`. Every
/// known key always has an entry; a copy is cheap enough to pass around at
/// startup and safe to read from several threads.
///
/// An empty value (null, "~", "" or an empty environment variable) resets a
/// key to its default.
class config {
public:
  /// Built-in defaults only (same as `defaults()`).
  config();

  /// Built-in defaults only.
  static config defaults();

  /// Loads `path` (if empty: "./config.yml" when it exists, else defaults
  /// only; an explicitly given path that does not exist is an error), then
  /// applies environment overrides from `env` (pass `vigil_environment()` in
  /// production; tests pass their own), then validates. On any problem
  /// returns errc::bad_config whose text lists every problem, one per line.
  static caf::expected<config>
  load(const std::string& path, const std::map<std::string, std::string>& env);

  /// Parses and validates YAML text (used by load and by tests), then applies
  /// the environment overrides from `env`.
  static caf::expected<config>
  from_yaml(const std::string& yaml_text,
            const std::map<std::string, std::string>& env);

  /// Returns all problems found in the YAML text and the environment
  /// overrides (empty = valid). Used by `vigil config validate`.
  static std::vector<config_problem>
  validate(const std::string& yaml_text,
           const std::map<std::string, std::string>& env);

  /// The value as text, not masked: strings, choices and URLs as given,
  /// numbers as written, booleans as "true"/"false", lists and maps as flow
  /// YAML. "" if the key is unset or unknown.
  std::string get_string(std::string_view key) const;

  /// The value of an integer key (a number key truncated toward zero, a
  /// boolean as 0/1); 0 if the key is unset, unknown or not numeric.
  int64_t get_int(std::string_view key) const;

  /// The value of a number or integer key (a boolean as 0/1); 0 if the key
  /// is unset, unknown or not numeric.
  double get_double(std::string_view key) const;

  /// The value of a boolean key; false if the key is unset, unknown or not a
  /// boolean.
  bool get_bool(std::string_view key) const;

  /// The items of a list key; empty if the key is unset, unknown or not a
  /// list. Returned as configured: tasks.queues stays [] when it means
  /// [tasks.default-queue].
  std::vector<std::string> get_string_list(std::string_view key) const;

  /// A clone of the value as a YAML node, meant for map and list keys; a
  /// null node if the key is unset or unknown.
  YAML::Node get_node(std::string_view key) const;

  /// Whether the key has a value (from its default or set explicitly);
  /// false for unset keys such as tasks.result-backend and unknown keys.
  bool is_set(std::string_view key) const;

  /// The effective value as plain text (lists and maps as flow YAML) with
  /// secrets masked: keys with secret=true print "********"; URLs print their
  /// password as "********" (redis://:********@host:6379/0,
  /// amqp://user:********@host/vhost). "" if unset or unknown.
  std::string display(std::string_view key) const;

  /// Sets a value from YAML text (tests and CLI flags use it), validated like
  /// a file value; "" or "~" resets the key to its default. On error the
  /// configuration is unchanged and the error is errc::bad_config.
  caf::expected<void> set(std::string_view key, const std::string& yaml_value);

  /// Where the value of `key` came from: "default", "file", "env" or "set"
  /// (by `set`); "" for unknown keys.
  std::string source(std::string_view key) const;

private:
  struct slot {
    typed_value value;
    std::string source;
  };

  const slot* find(std::string_view key) const;

  /// Applies the YAML text and then `env` to `out`, collecting problems.
  static std::vector<config_problem>
  build(const std::string& yaml_text,
        const std::map<std::string, std::string>& env, config& out);

  std::map<std::string, slot, std::less<>> slots_;
};

/// Masks the password in a URL: "redis://:secret@h:1/0" ->
/// "redis://:********@h:1/0"; also the value of a "password=" query
/// parameter. Returns other strings unchanged. Safe on any string.
std::string mask_url(std::string_view url);

/// Environment variable name of a key: "broker.visibility-timeout" ->
/// "VIGIL_BROKER_VISIBILITY_TIMEOUT" (uppercase; '.' and '-' -> '_').
std::string env_name(std::string_view key);

/// Reads the process environment into a map (only VIGIL_* entries).
std::map<std::string, std::string> vigil_environment();

} // namespace vigil
