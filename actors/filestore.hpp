#pragma once

// The filestore from the configuration (filestore.backend and
// filestore.options, Sentry's names), and its actor: a detached actor, as
// the backend's calls block for at most their timeouts. The CLI
// (`vigil filestore ...`) uses the backend directly.

#include <memory>
#include <string>

#include <caf/expected.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/backends/filestore.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

class config;

/// The backend that filestore.backend and filestore.options name. Errors
/// (errc::bad_config) name the missing or bad option; none shows the
/// secret. filesystem's location defaults to <node.data-dir>/files.
caf::expected<std::unique_ptr<filestore_backend>>
make_filestore_backend(const config& cfg);

/// The filestore. Errors come back as the request's error (the backend's
/// errc: not_found, malformed key, connection_failed ...).
using filestore_actor = caf::typed_actor<
  /// Stores the bytes; true when stored.
  caf::replies_to<filestore_put>::with<bool>,
  /// The bytes under a key.
  caf::replies_to<caf::get_atom, std::string>::with<std::string>,
  /// Removes a key (a missing one too); true.
  caf::replies_to<caf::delete_atom, std::string>::with<bool>,
  /// Whether a key has bytes.
  caf::replies_to<exists_atom, std::string>::with<bool>>;

/// State of the filestore actor.
struct filestore_state {
  static inline const char* name = "filestore.actor";
  std::shared_ptr<filestore_backend> backend;
};

/// Spawn with `spawn<caf::detached>(filestore_service, backend)`.
filestore_actor::behavior_type
filestore_service(filestore_actor::stateful_pointer<filestore_state> self,
                  std::shared_ptr<filestore_backend> backend);

} // namespace vigil
