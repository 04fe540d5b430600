#pragma once

// The web console's files (web/console/), compiled into the binary: the
// build turns each into a byte array (scripts/embed_assets.py, run by
// web/meson.build), so that vigil serves the console with no file beside
// it and no outside host.

#include <string_view>
#include <vector>

namespace vigil {

/// One embedded file.
struct console_asset {
  /// Its path under /console/, e.g. "console.js".
  std::string_view name;
  std::string_view content_type;
  /// A strong ETag (quoted): a hash of `body`.
  std::string_view etag;
  std::string_view body;
};

/// Every embedded file, sorted by name (generated source).
const std::vector<console_asset>& console_assets();

} // namespace vigil
