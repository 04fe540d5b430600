#pragma once

#include <string>

#include <caf/error.hpp>

namespace vigil {

/// Sets up the process logger on stderr: `level` is one of trace, debug,
/// info, warning, error, critical, off; `format` is "text" (human lines) or
/// "json" (one JSON object per line: time, level, msg).
caf::error setup_logging(const std::string& level, const std::string& format);

} // namespace vigil
