#include "adapters/chart_canvas.hpp"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include <cairo.h>
#include <pango/pangocairo.h>
#include <zlib.h>

#include "adapters/zlib.hpp"
#include "messages/errors.hpp"

namespace vigil {

chart_canvas::~chart_canvas() {
  // nop
}

namespace {

std::atomic<bool> tune_own_png{true};
std::atomic<bool> tune_reuse_canvas{true};
std::atomic<bool> tune_cache_text{true};

// ---- PNG -------------------------------------------------------------------
// Why not cairo's writer: it goes through libpng at zlib's default level
// with RGBA rows (unpremultiplied first) and tries every row filter, which
// was most of a chart's render time. A chart is opaque: RGB rows; a row
// equal to the one above (background, plot area between lines) is filtered
// Up (all zeros), any other Sub (flat runs of a colour become zeros), and
// the lot is deflated by ISA-L (its level 1). cairo's files are ~6 %
// smaller (docs/BENCHMARKS.md, "Chart rendering"), at three times the CPU.

void put32(std::string& out, uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

void put_chunk(std::string& out, const char* type, std::string_view data) {
  put32(out, static_cast<uint32_t>(data.size()));
  auto at = out.size();
  out.append(type, 4);
  out.append(data);
  auto crc = ::crc32(0L, reinterpret_cast<const Bytef*>(out.data() + at),
                     static_cast<uInt>(4 + data.size()));
  put32(out, static_cast<uint32_t>(crc));
}

/// PNG bytes of an RGB24 cairo surface's pixels.
std::string encode_png_rgb(const unsigned char* pixels, int width, int height,
                           int stride) {
  const auto w = static_cast<size_t>(width);
  const auto row_bytes = 3 * w;
  thread_local std::string filtered;
  filtered.resize((row_bytes + 1) * static_cast<size_t>(height));
  auto* out = reinterpret_cast<unsigned char*>(filtered.data());
  const uint32_t* above = nullptr;
  for (int y = 0; y < height; ++y) {
    auto* px = reinterpret_cast<const uint32_t*>(pixels + y * stride);
    if (above != nullptr && std::memcmp(px, above, 4 * w) == 0) {
      *out++ = 2; // Up
      std::memset(out, 0, row_bytes);
      out += row_bytes;
    } else {
      *out++ = 1; // Sub
      uint32_t left = 0;
      for (size_t x = 0; x < w; ++x) {
        uint32_t p = px[x];
        out[0] = static_cast<unsigned char>((p >> 16) - (left >> 16));
        out[1] = static_cast<unsigned char>((p >> 8) - (left >> 8));
        out[2] = static_cast<unsigned char>(p - left);
        out += 3;
        left = p;
      }
    }
    above = px;
  }
  std::string png{"\x89PNG\r\n\x1a\n", 8};
  std::string ihdr;
  put32(ihdr, static_cast<uint32_t>(width));
  put32(ihdr, static_cast<uint32_t>(height));
  ihdr += '\x08'; // 8 bits per channel
  ihdr += '\x02'; // RGB
  ihdr.append(3, '\0'); // deflate, adaptive filters, no interlace
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", zlib_compress(filtered, 2));
  put_chunk(png, "IEND", {});
  return png;
}

// ---- the canvas ------------------------------------------------------------

class cairo_canvas final : public chart_canvas {
public:
  cairo_canvas(cairo_surface_t* surface, cairo_t* cr, bool opaque,
               bool cache_text)
    : surface_(surface), cr_(cr), opaque_(opaque), cache_text_(cache_text) {
    context_ = pango_cairo_create_context(cr_);
    layout_ = pango_layout_new(context_);
    font_ = pango_font_description_from_string("DejaVu Sans");
  }

  ~cairo_canvas() override {
    drop_texts();
    pango_font_description_free(font_);
    g_object_unref(layout_);
    g_object_unref(context_);
    cairo_destroy(cr_);
    cairo_surface_destroy(surface_);
  }

  bool fits(int w, int h, bool opaque, bool cache_text) const {
    return cairo_image_surface_get_width(surface_) == w
           && cairo_image_surface_get_height(surface_) == h
           && opaque_ == opaque && cache_text_ == cache_text;
  }

  void clear(const chart_colour& c) {
    cairo_save(cr_);
    cairo_set_operator(cr_, CAIRO_OPERATOR_SOURCE);
    set(c);
    cairo_paint(cr_);
    cairo_restore(cr_);
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
    auto& t = layout(text, size, bold);
    double left = x;
    if (align == text_align::centre)
      left = x - t.w / 2.0;
    else if (align == text_align::right)
      left = x - t.w;
    set(c);
    cairo_move_to(cr_, left, y - t.h / 2.0);
    pango_cairo_show_layout(cr_, t.layout);
    return t.w;
  }

  double text_width(std::string_view text, double size, bool bold) override {
    return layout(text, size, bold).w;
  }

  caf::expected<std::string> png() override {
    cairo_surface_flush(surface_);
    if (opaque_)
      return encode_png_rgb(cairo_image_surface_get_data(surface_),
                            cairo_image_surface_get_width(surface_),
                            cairo_image_surface_get_height(surface_),
                            cairo_image_surface_get_stride(surface_));
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
  struct shaped {
    PangoLayout* layout = nullptr;
    int w = 0;
    int h = 0;
  };

  void set(const chart_colour& c) {
    cairo_set_source_rgba(cr_, c.r, c.g, c.b, c.a);
  }

  void shape(PangoLayout* layout, std::string_view text, double size,
             bool bold, shaped& out) {
    pango_font_description_set_absolute_size(font_, size * PANGO_SCALE
                                                      * 96.0 / 72.0);
    pango_font_description_set_weight(font_, bold ? PANGO_WEIGHT_BOLD
                                                  : PANGO_WEIGHT_NORMAL);
    pango_layout_set_font_description(layout, font_);
    pango_layout_set_text(layout, text.data(), static_cast<int>(text.size()));
    pango_layout_get_pixel_size(layout, &out.w, &out.h);
    out.layout = layout;
  }

  /// The shaped text: from the cache, or the one layout re-shaped.
  const shaped& layout(std::string_view text, double size, bool bold) {
    if (!cache_text_) {
      shape(layout_, text, size, bold, scratch_);
      return scratch_;
    }
    key_.clear();
    key_ += bold ? 'b' : 'n';
    key_.append(reinterpret_cast<const char*>(&size), sizeof size);
    key_.append(text);
    if (auto it = texts_.find(key_); it != texts_.end())
      return it->second;
    // Labels repeat, data-made names may not: a bound keeps memory flat.
    if (texts_.size() >= 2048)
      drop_texts();
    shaped s;
    shape(pango_layout_new(context_), text, size, bold, s);
    return texts_.emplace(key_, s).first->second;
  }

  void drop_texts() {
    for (auto& [k, s] : texts_)
      g_object_unref(s.layout);
    texts_.clear();
  }

  cairo_surface_t* surface_;
  cairo_t* cr_;
  bool opaque_;
  bool cache_text_;
  PangoContext* context_;
  PangoLayout* layout_;
  PangoFontDescription* font_;
  shaped scratch_;
  std::string key_;
  std::unordered_map<std::string, shaped> texts_;
};

thread_local std::unique_ptr<cairo_canvas> thread_canvas;

} // namespace

void set_chart_canvas_tuning(const chart_canvas_tuning& t) {
  tune_own_png = t.own_png;
  tune_reuse_canvas = t.reuse_canvas;
  tune_cache_text = t.cache_text;
}

chart_canvas_tuning chart_canvas_tuning_in_use() {
  return {tune_own_png.load(), tune_reuse_canvas.load(),
          tune_cache_text.load()};
}

caf::expected<chart_canvas*>
chart_canvas::for_thread(int width, int height,
                         const chart_colour& background) {
  // A transparent background keeps its alpha: RGBA through cairo's writer.
  const bool opaque = tune_own_png.load(std::memory_order_relaxed)
                      && background.a >= 1;
  const bool cache = tune_cache_text.load(std::memory_order_relaxed);
  const bool reuse = tune_reuse_canvas.load(std::memory_order_relaxed);
  if (!reuse || !thread_canvas
      || !thread_canvas->fits(width, height, opaque, cache)) {
    thread_canvas.reset();
    auto* surface = cairo_image_surface_create(
      opaque ? CAIRO_FORMAT_RGB24 : CAIRO_FORMAT_ARGB32, width, height);
    if (auto st = cairo_surface_status(surface); st != CAIRO_STATUS_SUCCESS) {
      cairo_surface_destroy(surface);
      return caf::make_error(errc::command_failed,
                             std::string{"cairo: "}
                               + cairo_status_to_string(st));
    }
    auto* cr = cairo_create(surface);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_GOOD);
    thread_canvas = std::make_unique<cairo_canvas>(surface, cr, opaque, cache);
  }
  thread_canvas->clear(background);
  return thread_canvas.get();
}

} // namespace vigil
