#pragma once

// Sentry's generate_chart: renders a chart, keeps the PNG in the filestore
// under an unguessable name and answers the public URL vigil serves it at
// (`GET /charts/{requestId}.png`), for messages that link to a chart
// instead of carrying it.

#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>
#include <nlohmann/json_fwd.hpp>

#include "actors/backends/filestore.hpp"
#include "messages/chart_style.hpp"

namespace vigil {

/// A chart kept in the filestore.
struct generated_chart {
  /// 32 lowercase hex digits from the system's random source.
  std::string request_id;
  /// `{url_prefix}/charts/{request_id}.png`.
  std::string url;
};

/// The filestore key of a generated chart: "charts/{request_id}.png".
std::string chart_file_key(std::string_view request_id);

/// Whether `name` is a generated chart's file name ("{32 hex}.png"): the
/// only names `GET /charts/` serves.
bool is_chart_file_name(std::string_view name);

/// Renders `data` with `style` of `cfg` (sized `width` × `height` when
/// both are given), stores the PNG and answers where it is served.
/// Fails with errc::malformed and the renderer's reason for bad input,
/// errc::unavailable when there is no configuration, or the filestore's
/// error.
caf::expected<generated_chart>
generate_chart(const chart_config* cfg, filestore_backend& files,
               std::string_view url_prefix, const std::string& style,
               const nlohmann::json& data, std::optional<int> width,
               std::optional<int> height);

} // namespace vigil
