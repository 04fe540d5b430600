#pragma once

#include <caf/actor_system_config.hpp>

namespace vigil {

/// vigil's actor system configuration: the project's message types and the
/// middleman, with CAF's own options left at their defaults.
class actor_system_config_ext : public caf::actor_system_config {
public:
  actor_system_config_ext();
};

} // namespace vigil
