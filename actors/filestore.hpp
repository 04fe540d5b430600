#pragma once

// The filestore from the configuration: filestore.backend and
// filestore.options (Sentry's names) made into a backend. The typed actor
// around it (a detached actor, as its calls block) is still to come; the
// CLI (`vigil filestore ...`) uses the backend directly.

#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "actors/backends/filestore.hpp"

namespace vigil {

class config;

/// The backend that filestore.backend and filestore.options name. Errors
/// (errc::bad_config) name the missing or bad option; none shows the
/// secret. filesystem's location defaults to <node.data-dir>/files.
caf::expected<std::unique_ptr<filestore_backend>>
make_filestore_backend(const config& cfg);

} // namespace vigil
