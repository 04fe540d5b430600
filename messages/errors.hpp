#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace vigil {

/// Project error codes, carried inside `caf::error` with category "vigil".
enum class errc : uint8_t {
  /// No error.
  none = 0,
  /// Input bytes could not be decoded (garbage, truncated, wrong shape).
  malformed,
  /// A value had the wrong type for its declared parameter or field.
  wrong_type,
  /// A required parameter or field was missing.
  missing_field,
  /// An input exceeded a configured size or depth limit.
  too_large,
  /// The task name is not registered on this node.
  unknown_task,
  /// A configuration key or value was rejected.
  bad_config,
  /// A connection to an external server failed or was lost.
  connection_failed,
  /// A command sent to an external server failed.
  command_failed,
  /// A blocking call ran past its timeout.
  timeout,
  /// The requested item does not exist.
  not_found,
  /// The operation is not supported by this backend.
  unsupported,
  /// The service is (re)starting or saturated; retry later.
  unavailable,
};

/// Returns the name of `x`, e.g. "malformed".
const char* to_string(errc x);

/// Renders a vigil error as "malformed: <context>" (used by the CAF system).
std::string render_error(const caf::error& err);

/// Returns the context text of `err` (the message given to make_error), or
/// its code name when it carries no text.
std::string error_text(const caf::error& err);

} // namespace vigil

CAF_ERROR_CODE_ENUM(vigil::errc, "vigil")
