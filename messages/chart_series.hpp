#pragma once

// Turns a render request's `data` into plain series, by the style's
// transformation, and reads the request itself.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <nlohmann/json_fwd.hpp>

#include "messages/chart_style.hpp"

namespace vigil {

/// One point: a time (Unix seconds) and a value.
struct chart_point {
  double ts = 0;
  double value = 0;
};

/// A named series of points in time order.
struct chart_series {
  std::string name;
  std::vector<chart_point> points;
};

/// A parsed `POST /render` body.
struct render_request {
  std::string request_id;
  std::string style;
  /// Both set, or neither (a lone width or height is ignored, as
  /// Chartcuterie does).
  std::optional<int> width;
  std::optional<int> height;
};

/// Reads `{requestId, style, data, width?, height?}`; `data` is moved into
/// `data_out`. Fails with the reason (missing field, wrong type, not JSON).
caf::expected<render_request> parse_render_request(std::string_view body,
                                                   nlohmann::json& data_out);

/// Applies the style's transformation to `data`. Fails with the reason
/// when `data` has none of the shapes the transformation knows.
caf::expected<std::vector<chart_series>>
transform_chart_data(const chart_style& style, const nlohmann::json& data);

} // namespace vigil
