#pragma once

// A drawing surface for charts, on cairo (shapes, anti-aliased) and pango
// (text, DejaVu Sans from fonts-dejavu-core), with PNG out. Only vigil's
// own types cross this interface; one canvas per thread at a time.

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

/// An RGB(A) raster of a fixed size.
class chart_canvas {
public:
  /// A canvas of `width` x `height` pixels filled with `background`.
  static caf::expected<std::unique_ptr<chart_canvas>>
  create(int width, int height, const chart_colour& background);

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
