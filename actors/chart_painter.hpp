#pragma once

// Lays a chart out on a chart_canvas: title, legend, axes with labels,
// grid, and the series drawn by the style's kind. A plain function, called
// by the renderer actors (actors/chart_renderer.hpp) and the bench.

#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "messages/chart_series.hpp"
#include "messages/chart_style.hpp"

namespace vigil {

/// Renders `series` in `style` at `width` x `height` pixels; returns PNG
/// bytes. Empty series draw an empty chart (axes and grid), not an error.
caf::expected<std::string> paint_chart(const chart_style& style,
                                       const std::vector<chart_series>& series,
                                       int width, int height);

} // namespace vigil
