#include "adapters/chart_canvas.hpp"

#include <cmath>

#include <cairo.h>
#include <pango/pangocairo.h>

#include "messages/errors.hpp"

namespace vigil {

chart_canvas::~chart_canvas() {
  // nop
}

namespace {

class cairo_canvas final : public chart_canvas {
public:
  cairo_canvas(cairo_surface_t* surface, cairo_t* cr)
    : surface_(surface), cr_(cr) {
    layout_ = pango_cairo_create_layout(cr_);
    font_ = pango_font_description_from_string("DejaVu Sans");
  }

  ~cairo_canvas() override {
    pango_font_description_free(font_);
    g_object_unref(layout_);
    cairo_destroy(cr_);
    cairo_surface_destroy(surface_);
  }

  void fill_rect(double x, double y, double w, double h,
                 const chart_colour& c) override {
    set(c);
    cairo_rectangle(cr_, x, y, w, h);
    cairo_fill(cr_);
  }

  void stroke_line(const std::vector<canvas_point>& points, double width,
                   const chart_colour& c, bool crisp) override {
    if (points.size() < 2)
      return;
    set(c);
    cairo_set_line_width(cr_, width);
    cairo_set_line_join(cr_, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr_, CAIRO_LINE_CAP_BUTT);
    auto snap = [&](double v) { return crisp ? std::floor(v) + 0.5 : v; };
    cairo_move_to(cr_, snap(points[0].x), snap(points[0].y));
    for (size_t i = 1; i < points.size(); ++i)
      cairo_line_to(cr_, snap(points[i].x), snap(points[i].y));
    cairo_stroke(cr_);
  }

  void fill_polygon(const std::vector<canvas_point>& points,
                    const chart_colour& c) override {
    if (points.size() < 3)
      return;
    set(c);
    cairo_move_to(cr_, points[0].x, points[0].y);
    for (size_t i = 1; i < points.size(); ++i)
      cairo_line_to(cr_, points[i].x, points[i].y);
    cairo_close_path(cr_);
    cairo_fill(cr_);
  }

  double draw_text(std::string_view text, double x, double y, double size,
                   const chart_colour& c, text_align align,
                   bool bold) override {
    int w = 0, h = 0;
    prepare(text, size, bold, w, h);
    double left = x;
    if (align == text_align::centre)
      left = x - w / 2.0;
    else if (align == text_align::right)
      left = x - w;
    set(c);
    cairo_move_to(cr_, left, y - h / 2.0);
    pango_cairo_show_layout(cr_, layout_);
    return w;
  }

  double text_width(std::string_view text, double size, bool bold) override {
    int w = 0, h = 0;
    prepare(text, size, bold, w, h);
    return w;
  }

  caf::expected<std::string> png() override {
    cairo_surface_flush(surface_);
    std::string out;
    auto st = cairo_surface_write_to_png_stream(
      surface_,
      [](void* closure, const unsigned char* data, unsigned int len) {
        static_cast<std::string*>(closure)->append(
          reinterpret_cast<const char*>(data), len);
        return CAIRO_STATUS_SUCCESS;
      },
      &out);
    if (st != CAIRO_STATUS_SUCCESS)
      return caf::make_error(errc::command_failed,
                             std::string{"cairo: PNG: "}
                               + cairo_status_to_string(st));
    return out;
  }

private:
  void set(const chart_colour& c) {
    cairo_set_source_rgba(cr_, c.r, c.g, c.b, c.a);
  }

  void prepare(std::string_view text, double size, bool bold, int& w,
               int& h) {
    pango_font_description_set_absolute_size(font_, size * PANGO_SCALE
                                                      * 96.0 / 72.0);
    pango_font_description_set_weight(font_, bold ? PANGO_WEIGHT_BOLD
                                                  : PANGO_WEIGHT_NORMAL);
    pango_layout_set_font_description(layout_, font_);
    pango_layout_set_text(layout_, text.data(), static_cast<int>(text.size()));
    pango_layout_get_pixel_size(layout_, &w, &h);
  }

  cairo_surface_t* surface_;
  cairo_t* cr_;
  PangoLayout* layout_;
  PangoFontDescription* font_;
};

} // namespace

caf::expected<std::unique_ptr<chart_canvas>>
chart_canvas::create(int width, int height, const chart_colour& background) {
  auto* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width,
                                             height);
  if (auto st = cairo_surface_status(surface); st != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(surface);
    return caf::make_error(errc::command_failed,
                           std::string{"cairo: "} + cairo_status_to_string(st));
  }
  auto* cr = cairo_create(surface);
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_GOOD);
  auto canvas = std::make_unique<cairo_canvas>(surface, cr);
  canvas->fill_rect(0, 0, width, height, background);
  return std::unique_ptr<chart_canvas>{std::move(canvas)};
}

} // namespace vigil
