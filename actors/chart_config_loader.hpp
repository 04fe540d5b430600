#pragma once

// The chart style configuration in use, and the detached actor that loads
// it from `chart-rendering.config` (a file path or an http(s) URL), polling
// as Chartcuterie does: every `retry` until one loads, then every
// `refresh`. A new version replaces the old one atomically; a bad or
// unreachable document keeps the old one (and is logged once per reason).

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/chart_style.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

/// The configuration renderers read and the loader replaces; thread-safe.
class chart_config_store {
public:
  /// The configuration in use, or null before one loaded.
  std::shared_ptr<const chart_config> get() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return current_;
  }

  /// Replaces the configuration; requests already rendering keep theirs.
  void set(std::shared_ptr<const chart_config> cfg) {
    std::lock_guard<std::mutex> guard{mtx_};
    current_ = std::move(cfg);
  }

private:
  mutable std::mutex mtx_;
  std::shared_ptr<const chart_config> current_;
};

/// The built-in configuration (`vigil-builtin-1`: Sentry's Slack styles
/// and vigil's own), parsed once.
std::shared_ptr<const chart_config> builtin_chart_config();

/// What the loader reads and how often.
struct chart_config_loader_options {
  /// A file path, or an http:// or https:// URL.
  std::string source;
  std::shared_ptr<chart_config_store> store;
  /// Between attempts until a configuration loaded (Chartcuterie: 5 s).
  std::chrono::milliseconds retry{5000};
  /// Between polls once one loaded (Chartcuterie: 300 s).
  std::chrono::milliseconds refresh{300000};
  /// Bound of one HTTP fetch.
  std::chrono::milliseconds fetch_timeout{10000};
};

/// Reads `source` once: the document's text, or why not.
caf::expected<std::string> fetch_chart_config(const std::string& source,
                                              std::chrono::milliseconds timeout);

/// The loader; it polls by itself from its start.
using chart_config_loader_actor
  = caf::typed_actor<caf::reacts_to<poll_atom>>;

/// State of the loader.
struct chart_config_loader_state {
  static inline const char* name = "charts.config";
  chart_config_loader_options opts;
  /// The last failure logged, so that a lasting one is logged once.
  std::string last_error;
};

/// Spawn with `spawn<caf::detached>(chart_config_loader, opts)`.
chart_config_loader_actor::behavior_type chart_config_loader(
  chart_config_loader_actor::stateful_pointer<chart_config_loader_state> self,
  chart_config_loader_options opts);

} // namespace vigil
