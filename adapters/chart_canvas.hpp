#pragma once

// A drawing surface for charts, on cairo (shapes, anti-aliased) and pango
// (text, DejaVu Sans from fonts-dejavu-core), with PNG out. Only vigil's
// own types cross this interface; one canvas per thread, reused.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "messages/chart_style.hpp"

namespace vigil {

/// A point on the canvas, in pixels from the top left.
struct canvas_point {
  double x = 0;
  double y = 0;
};

/// Where a text's anchor sits relative to the text.
enum class text_align { left, centre, right };

/// What makes rendering cheap; all on by default. `vigil bench charts
/// --steps` turns them on one at a time to measure each (docs/BENCHMARKS.md).
struct chart_canvas_tuning {
  /// vigil's PNG writer (RGB, adaptive row filters, ISA-L deflate) instead
  /// of cairo's (RGBA through libpng at zlib's default level).
  bool own_png = true;
  /// One opaque RGB surface, cairo context and pango layout per thread,
  /// cleared for the next chart, instead of new ones per chart.
  bool reuse_canvas = true;
  /// Shaped text layouts kept per thread by (text, size, weight): tick
  /// labels and legend names repeat from chart to chart.
  bool cache_text = true;
};

/// Sets the tuning of the canvases made from now on (all threads).
void set_chart_canvas_tuning(const chart_canvas_tuning& tuning);

/// The tuning in use.
chart_canvas_tuning chart_canvas_tuning_in_use();

/// An RGB raster of a fixed size.
class chart_canvas {
public:
  /// This thread's canvas, `width` x `height` pixels filled with
  /// `background`; valid until this thread's next call. One chart at a
  /// time per thread.
  static caf::expected<chart_canvas*>
  for_thread(int width, int height, const chart_colour& background);

  virtual ~chart_canvas();

  /// Fills an axis-aligned rectangle.
  virtual void fill_rect(double x, double y, double w, double h,
                         const chart_colour& c) = 0;

  /// Strokes a polyline; `crisp` snaps it to pixel centres (grid lines).
  virtual void stroke_line(const std::vector<canvas_point>& points,
                           double width, const chart_colour& c,
                           bool crisp = false) = 0;

  /// Fills a closed polygon.
  virtual void fill_polygon(const std::vector<canvas_point>& points,
                            const chart_colour& c) = 0;

  /// Draws `text` (UTF-8) at `size` points, its vertical middle at `y`,
  /// aligned on `x` by `align`; returns its width in pixels.
  virtual double draw_text(std::string_view text, double x, double y,
                           double size, const chart_colour& c,
                           text_align align, bool bold = false) = 0;

  /// The width `text` would take, in pixels.
  virtual double text_width(std::string_view text, double size,
                            bool bold = false) = 0;

  /// The canvas as PNG bytes.
  virtual caf::expected<std::string> png() = 0;
};

} // namespace vigil
