#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "messages/value.hpp"

namespace vigil {

/// The type a task parameter accepts.
enum class param_type : uint8_t {
  any,     // anything
  boolean, // bool
  integer, // int (not bool)
  number,  // int or float
  text,    // str
  bytes,   // bytes (str accepted too)
  list,    // list / tuple
  dict,    // dict
};

/// Returns the Python-ish name of a parameter type ("int", "float", ...).
const char* to_string(param_type t);

/// One declared parameter of a task.
struct param_spec {
  std::string name;
  param_type type = param_type::any;
  /// A required parameter has no default: a message without it fails.
  bool required = true;
  /// The value a missing optional parameter takes.
  value default_value;
  /// Whether None is accepted besides `type` (always true if the default is None).
  bool nullable = false;
};

/// Builds a required parameter.
param_spec required(std::string name, param_type type);

/// Builds an optional parameter with its default.
param_spec optional(std::string name, param_type type, value default_value);

/// Rewrites the arguments of a message from one schema version to the next.
using schema_upgrader = std::function<void(value_array& args, value_map& kwargs)>;

/// What a registered task declares about its parameters and retries.
struct task_schema {
  std::string name;
  /// The queue it is sent to by default ("" = tasks.default-queue).
  std::string queue;
  /// The schema version producers of this build stamp; bump it when a
  /// parameter changes meaning, and register an upgrader from the old one.
  int32_t version = 1;
  std::vector<param_spec> params;
  /// If true the task takes **kwargs: unknown keywords are passed through.
  /// Otherwise they are set aside (and logged once), never an error.
  bool var_kwargs = false;
  /// Delay before a retry when the task asked for none, in seconds.
  double default_retry_delay = 180;
  /// Retries allowed before the message is dead-lettered.
  int32_t max_retries = 3;
  /// Time limits in seconds when the message sets none (0 = none):
  /// `soft_time_limit` tells the task to stop, at `time_limit` the worker
  /// gives up on it (Celery's Task.soft_time_limit and time_limit).
  double soft_time_limit = 0;
  double time_limit = 0;
  /// Upgraders keyed by the version they upgrade from (v -> v + 1).
  std::map<int32_t, schema_upgrader> upgraders;
};

/// Arguments bound to a task's declared parameters.
struct bound_args {
  /// Every declared parameter, in declared order.
  value_map values;
  /// Keywords the schema does not declare (set aside, or **kwargs).
  value_map extra;

  /// Returns a declared parameter (nil if unknown).
  const value& get(std::string_view name) const;
  int64_t get_int(std::string_view name) const;
  double get_double(std::string_view name) const;
};

/// Binds a message's positional and keyword arguments to `schema`, Python
/// style, after upgrading them from `message_version` (0 = unstamped, taken
/// as current). Positional arguments fill parameters in declared order; a
/// missing optional parameter takes its default. Fails with errc::wrong_type
/// or errc::missing_field (or errc::malformed for too many positional
/// arguments) and a reason naming the parameter.
caf::expected<bound_args> bind_arguments(const task_schema& schema,
                                         value_array args, value_map kwargs,
                                         int32_t message_version);

} // namespace vigil
