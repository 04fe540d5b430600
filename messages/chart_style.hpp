#pragma once

// Chart styles as data: what a Chartcuterie render descriptor declares
// (kind, size, colours, axes, legend, grid, title, how `data` becomes
// series), and the versioned configuration that names them. Parsed from
// JSON; see docs/CHARTS.md for the format.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

namespace vigil {

/// A colour, each channel 0..1.
struct chart_colour {
  double r = 0;
  double g = 0;
  double b = 0;
  double a = 1;
};

/// Parses "#rgb", "#rrggbb" or "#rrggbbaa".
caf::expected<chart_colour> parse_chart_colour(std::string_view text);

/// How series are drawn.
enum class chart_kind { line, area, bar, stacked_bar };

/// How the request's `data` becomes series (see chart_series.hpp).
enum class chart_transform {
  /// Recognises Sentry's shapes: a list of `{seriesName, data: [{name,
  /// value}]}`, events-stats `{data: [[ts, [{count}]]]}`, `{seriesName,
  /// stats: <events-stats>}` and `{stats: {name: <events-stats>}}`.
  automatic,
  /// One events-stats series covering two periods: its second half is
  /// "current", its first half is drawn over it as "previous".
  previous_period,
};

/// How an axis labels its values.
enum class chart_value_format {
  /// 0, 950, 1.2k, 35k, 1.5M.
  count,
  /// Plain numbers with up to two decimals.
  number,
};

/// One style, fully resolved (theme defaults applied).
struct chart_style {
  std::string name;
  chart_kind kind = chart_kind::line;
  int width = 450;
  int height = 150;
  /// "light" or "dark": picks the defaults of the colours below.
  std::string theme = "light";
  chart_colour background;
  chart_colour text;
  chart_colour grid_colour;
  chart_colour axis_colour;
  /// Series colours, used in order (and again from the start).
  std::vector<chart_colour> colours;
  std::string title;
  bool legend = false;
  bool grid = true;
  /// X axis: time labels (HH:MM within two days, else "Dec 3").
  bool x_axis = true;
  /// Y axis: labels in `y_format`.
  bool y_axis = true;
  chart_value_format y_format = chart_value_format::count;
  chart_transform transform = chart_transform::automatic;
  /// Series kept at most (the largest by total first, as top-N charts).
  int max_series = 5;
  /// Stroke width of lines and area outlines, in pixels.
  double line_width = 2;
  /// Area fill opacity (area kind).
  double fill_opacity = 0.35;
  /// Font size of labels, in points.
  double font_size = 8;
};

/// A loaded configuration: its version and its styles by name.
struct chart_config {
  std::string version;
  std::map<std::string, chart_style> styles;
};

/// Parses a configuration document: `{"version": "...", "styles": {name:
/// {...}}}`. Fails with a text naming the style and field that is wrong.
caf::expected<chart_config> parse_chart_config(std::string_view json);

/// The built-in configuration (Sentry's slack:discover.* styles and
/// vigil's), as JSON text: what `chart-rendering.config` unset serves.
std::string_view builtin_chart_config_json();

} // namespace vigil
