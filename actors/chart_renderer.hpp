#pragma once

// A chart renderer: a detached actor that turns one `POST /render` body
// into a PNG with the configuration in use. The web endpoint runs a pool
// of them (`chart-rendering.threads`), one render at a time each, as
// rendering is CPU work that must not hold up the scheduler's threads.

#include <memory>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/chart_config_loader.hpp"
#include "messages/chart_messages.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

/// A renderer.
using chart_renderer_actor = caf::typed_actor<
  /// Renders the body: 200 with the PNG, 400 with the reason for bad
  /// input, 503 when no configuration is loaded. Never an error.
  caf::replies_to<render_atom, std::string>::with<chart_reply>>;

/// Renders one body with `cfg` (null: 503). What the actor does, callable
/// without one (the bench).
chart_reply render_chart_body(const chart_config* cfg,
                              const std::string& body);

/// State of a renderer.
struct chart_renderer_state {
  static inline const char* name = "charts.renderer";
  std::shared_ptr<chart_config_store> store;
};

/// Spawn with `spawn<caf::detached>(chart_renderer, store)`.
chart_renderer_actor::behavior_type
chart_renderer(chart_renderer_actor::stateful_pointer<chart_renderer_state> self,
               std::shared_ptr<chart_config_store> store);

} // namespace vigil
