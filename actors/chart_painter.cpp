#include "actors/chart_painter.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "adapters/chart_canvas.hpp"
#include "messages/chart_format.hpp"

namespace vigil {

namespace {

struct plot_box {
  double left = 0;
  double top = 0;
  double right = 0;
  double bottom = 0;
  double width() const { return right - left; }
  double height() const { return bottom - top; }
};

std::string value_label(const chart_style& s, double v) {
  return s.y_format == chart_value_format::count ? format_count(v)
                                                 : format_number(v);
}

/// The distinct timestamps of all series, sorted: the buckets.
std::vector<double> buckets_of(const std::vector<chart_series>& series) {
  std::vector<double> ts;
  for (auto& s : series)
    for (auto& p : s.points)
      ts.push_back(p.ts);
  std::sort(ts.begin(), ts.end());
  ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
  return ts;
}

/// `text`, shortened with an ellipsis to at most `max_w` pixels.
std::string fit_text(chart_canvas& cv, std::string text, double size,
                     double max_w) {
  auto w = cv.text_width(text, size);
  if (w <= max_w)
    return text;
  // A first guess from the widths, then a character less until it fits
  // (rarely more than one or two shapings).
  auto keep = static_cast<size_t>(static_cast<double>(text.size())
                                  * std::max(0.0, max_w) / w);
  for (;;) {
    while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80)
      --keep; // not inside a UTF-8 sequence
    auto cut = text.substr(0, keep) + "\u2026";
    if (keep == 0 || cv.text_width(cut, size) <= max_w)
      return cut;
    --keep;
  }
}

size_t bucket_index(const std::vector<double>& buckets, double ts) {
  auto it = std::lower_bound(buckets.begin(), buckets.end(), ts);
  return static_cast<size_t>(it - buckets.begin());
}

} // namespace

caf::expected<std::string> paint_chart(const chart_style& style,
                                       const std::vector<chart_series>& series,
                                       int width, int height) {
  auto made = chart_canvas::for_thread(width, height, style.background);
  if (!made)
    return made.error();
  auto& cv = **made;
  auto colour_of = [&](size_t i) -> const chart_colour& {
    return style.colours[i % style.colours.size()];
  };
  const double fs = style.font_size;
  const double line_h = std::ceil(fs * 96.0 / 72.0) + 4;
  plot_box box{8, 8, static_cast<double>(width) - 10,
               static_cast<double>(height) - 6};
  if (!style.title.empty()) {
    cv.draw_text(style.title, box.left, box.top + line_h / 2, fs + 1,
                 style.text, text_align::left, true);
    box.top += line_h + 2;
  }
  if (style.legend && !series.empty()) {
    // Every series gets its entry, in series order (the first is the main
    // one, and the lowest in a stack): names too long for an equal share
    // of the width are shortened with an ellipsis.
    double y = box.bottom - line_h / 2;
    double x = box.left;
    std::vector<std::string> names;
    std::vector<double> widths;
    for (auto& s : series) {
      names.push_back(s.name.empty() ? std::string{"series"} : s.name);
      widths.push_back(cv.text_width(names.back(), fs));
    }
    // The widest names shortened first: short ones keep their width and
    // leave the rest to the others (a cap found by water-filling).
    double room = box.width() - 24 * static_cast<double>(series.size());
    auto sorted = widths;
    std::sort(sorted.begin(), sorted.end());
    double cap = 1e9, used = 0;
    for (size_t i = 0; i < sorted.size(); ++i) {
      double even = (room - used) / static_cast<double>(sorted.size() - i);
      if (sorted[i] > even) {
        cap = even;
        break;
      }
      used += sorted[i];
    }
    for (size_t i = 0; i < series.size(); ++i) {
      auto name = widths[i] <= cap ? names[i]
                                   : fit_text(cv, names[i], fs, cap);
      auto w = widths[i] <= cap ? widths[i] : cv.text_width(name, fs);
      cv.fill_rect(std::round(x), std::round(y - 4), 8, 8, colour_of(i));
      cv.draw_text(name, x + 12, y, fs, style.text, text_align::left);
      x += 12 + w + 12;
    }
    box.bottom -= line_h + 2;
  }
  auto buckets = buckets_of(series);
  // The y scale: stacked kinds stack per bucket, the others take the peak.
  double peak = 0;
  if (style.kind == chart_kind::stacked_bar) {
    std::vector<double> sums(buckets.size(), 0);
    for (auto& s : series)
      for (auto& p : s.points)
        sums[bucket_index(buckets, p.ts)] += std::max(0.0, p.value);
    for (auto v : sums)
      peak = std::max(peak, v);
  } else {
    for (auto& s : series)
      for (auto& p : s.points)
        peak = std::max(peak, p.value);
  }
  auto ticks = nice_ticks(peak, std::max(1, static_cast<int>(
                                              (box.height() - line_h) / 30)));
  double ymax = ticks.back();
  if (style.x_axis)
    box.bottom -= line_h;
  if (style.y_axis) {
    double label_w = 0;
    for (auto t : ticks)
      label_w = std::max(label_w, cv.text_width(value_label(style, t), fs));
    box.left += label_w + 6;
  }
  auto y_of = [&](double v) {
    return box.bottom - (v / ymax) * box.height();
  };
  // Grid and y labels.
  for (auto t : ticks) {
    auto y = std::round(y_of(t));
    if (style.grid && t > 0)
      cv.stroke_line({{box.left, y}, {box.right, y}}, 1, style.grid_colour,
                     true);
    if (style.y_axis)
      cv.draw_text(value_label(style, t), box.left - 6, y, fs, style.text,
                   text_align::right);
  }
  cv.stroke_line({{box.left, std::round(box.bottom)},
                  {box.right, std::round(box.bottom)}},
                 1, style.axis_colour, true);
  const bool bars = style.kind == chart_kind::bar
                    || style.kind == chart_kind::stacked_bar;
  const size_t n = buckets.size();
  // Bars sit in slots; lines run from the first bucket to the last.
  auto x_of_index = [&](size_t i) {
    if (bars)
      return box.left + (static_cast<double>(i) + 0.5) * box.width()
                          / static_cast<double>(std::max<size_t>(n, 1));
    if (n <= 1)
      return box.left + box.width() / 2;
    return box.left + static_cast<double>(i) * box.width()
                        / static_cast<double>(n - 1);
  };
  if (style.x_axis && n > 0) {
    // Labels on round times (midnights, whole hours) where a bucket
    // crosses one, centred on it, kept inside the canvas and apart.
    double span = buckets.back() - buckets.front();
    auto sample = format_time_label(buckets.front(), span);
    auto label_w = cv.text_width(sample, fs) + 16;
    auto max_labels = std::max<size_t>(
      1, static_cast<size_t>(box.width() / label_w));
    double bucket = n > 1 ? span / static_cast<double>(n - 1) : 0;
    double every = time_label_interval(span, bucket, max_labels);
    double last_right = -1e9;
    for (size_t i = 0; i < n; ++i) {
      bool round = std::fmod(buckets[i], every) == 0;
      bool crosses = i > 0 && std::floor(buckets[i] / every)
                                != std::floor(buckets[i - 1] / every);
      if (!(round || crosses || n == 1))
        continue;
      auto label = format_time_label(buckets[i], span);
      auto w = cv.text_width(label, fs);
      double left = std::max(
        2.0, std::min(x_of_index(i) - w / 2,
                      static_cast<double>(width) - 2 - w));
      if (left < last_right + 8)
        continue;
      cv.draw_text(label, left, box.bottom + line_h / 2 + 2, fs, style.text,
                   text_align::left);
      last_right = left + w;
    }
  }
  if (bars && n > 0) {
    double slot = box.width() / static_cast<double>(n);
    double gap = std::max(1.0, std::floor(slot * 0.2));
    bool side_by_side = style.kind == chart_kind::bar && series.size() > 1;
    std::vector<double> base(n, 0);
    for (size_t si = 0; si < series.size(); ++si) {
      for (auto& p : series[si].points) {
        if (p.value <= 0)
          continue;
        auto i = bucket_index(buckets, p.ts);
        double x0 = box.left + static_cast<double>(i) * slot + gap / 2;
        double w = slot - gap;
        if (side_by_side) {
          w /= static_cast<double>(series.size());
          x0 += w * static_cast<double>(si);
        }
        double lo = style.kind == chart_kind::stacked_bar ? base[i] : 0;
        double hi = lo + p.value;
        if (style.kind == chart_kind::stacked_bar)
          base[i] = hi;
        // Whole pixels: crisp edges, and a bar's colour exactly its own.
        double left = std::round(x0);
        double right = std::max(left + 1, std::round(x0 + w));
        double top = std::round(y_of(hi));
        double bottom = std::round(y_of(lo));
        if (bottom - top < 1)
          top = bottom - 1;
        cv.fill_rect(left, top, right - left, bottom - top, colour_of(si));
      }
    }
  } else if (n > 0) {
    // Later series first, so that the first (the main one) is on top.
    for (size_t k = series.size(); k-- > 0;) {
      auto& s = series[k];
      if (s.points.empty())
        continue;
      std::vector<canvas_point> pts;
      for (auto& p : s.points)
        pts.push_back({x_of_index(bucket_index(buckets, p.ts)),
                       y_of(std::max(0.0, p.value))});
      if (pts.size() == 1)
        pts.push_back({pts[0].x + 1, pts[0].y});
      auto col = colour_of(k);
      if (style.kind == chart_kind::area) {
        auto poly = pts;
        poly.push_back({pts.back().x, box.bottom});
        poly.push_back({pts.front().x, box.bottom});
        auto fill = col;
        fill.a = style.fill_opacity;
        cv.fill_polygon(poly, fill);
      }
      cv.stroke_line(pts, style.line_width, col);
    }
  }
  return cv.png();
}

} // namespace vigil
