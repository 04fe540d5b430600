#include "messages/chart_style.hpp"

#include "messages/percent_encoding.hpp"

#include <nlohmann/json.hpp>

#include "messages/errors.hpp"

namespace vigil {

namespace {

caf::error bad(std::string text) {
  return caf::make_error(errc::malformed, std::move(text));
}

/// The defaults of a theme, close to Sentry's light and dark palettes.
void apply_theme(chart_style& s) {
  auto c = [](std::string_view hex) { return *parse_chart_colour(hex); };
  if (s.theme == "dark") {
    s.background = c("#1a141f");
    s.text = c("#a398ae");
    s.grid_colour = c("#362e3e");
    s.axis_colour = c("#4d4158");
    s.colours = {c("#7a7fff"), c("#c877c4"), c("#f2709a"), c("#f89b6b"),
                 c("#f5cc4b")};
  } else {
    s.background = c("#ffffff");
    s.text = c("#80708f");
    s.grid_colour = c("#ebe6ef");
    s.axis_colour = c("#c6becf");
    s.colours = {c("#444674"), c("#895289"), c("#d6567f"), c("#f38150"),
                 c("#f2b712")};
  }
}

using json = nlohmann::json;

/// Reads one style object; `where` names it in errors.
caf::expected<chart_style> parse_style(const std::string& name,
                                       const json& j) {
  auto where = "style '" + name + "': ";
  if (!j.is_object())
    return bad(where + "not an object");
  chart_style s;
  s.name = name;
  auto str = [&](const char* key, std::string& out) -> caf::error {
    if (auto it = j.find(key); it != j.end()) {
      if (!it->is_string())
        return bad(where + key + " must be a string");
      out = it->get<std::string>();
    }
    return {};
  };
  auto num = [&](const char* key, double& out, double lo,
                 double hi) -> caf::error {
    if (auto it = j.find(key); it != j.end()) {
      if (!it->is_number())
        return bad(where + key + " must be a number");
      out = it->get<double>();
      if (!(out >= lo && out <= hi))
        return bad(where + key + " out of range");
    }
    return {};
  };
  auto flag = [&](const char* key, bool& out) -> caf::error {
    if (auto it = j.find(key); it != j.end()) {
      if (!it->is_boolean())
        return bad(where + key + " must be true or false");
      out = it->get<bool>();
    }
    return {};
  };
  if (auto err = str("theme", s.theme))
    return err;
  if (s.theme != "light" && s.theme != "dark")
    return bad(where + "theme must be light or dark");
  apply_theme(s);
  std::string kind = "line";
  if (auto err = str("kind", kind))
    return err;
  if (kind == "line")
    s.kind = chart_kind::line;
  else if (kind == "area")
    s.kind = chart_kind::area;
  else if (kind == "bar")
    s.kind = chart_kind::bar;
  else if (kind == "stackedBar" || kind == "stacked_bar")
    s.kind = chart_kind::stacked_bar;
  else
    return bad(where + "kind must be line, area, bar or stackedBar");
  double w = s.width, h = s.height;
  if (auto err = num("width", w, 16, 4000))
    return err;
  if (auto err = num("height", h, 16, 4000))
    return err;
  s.width = static_cast<int>(w);
  s.height = static_cast<int>(h);
  for (auto [key, out] : {std::pair{"background", &s.background},
                          std::pair{"textColor", &s.text},
                          std::pair{"gridColor", &s.grid_colour},
                          std::pair{"axisColor", &s.axis_colour}}) {
    std::string text;
    if (auto err = str(key, text))
      return err;
    if (text.empty())
      continue;
    auto col = parse_chart_colour(text);
    if (!col)
      return bad(where + key + ": " + text + " is not a colour");
    *out = *col;
  }
  if (auto it = j.find("colors"); it != j.end()) {
    if (!it->is_array() || it->empty())
      return bad(where + "colors must be a non-empty list");
    s.colours.clear();
    for (auto& c : *it) {
      auto col = c.is_string() ? parse_chart_colour(c.get<std::string>())
                               : caf::expected<chart_colour>{bad("")};
      if (!col)
        return bad(where + "colors: "
                   + c.dump(-1, ' ', false,
                            nlohmann::json::error_handler_t::replace)
                   + " is not a colour");
      s.colours.push_back(*col);
    }
  }
  if (auto err = str("title", s.title))
    return err;
  if (auto err = flag("legend", s.legend))
    return err;
  if (auto err = flag("grid", s.grid))
    return err;
  if (auto it = j.find("xAxis"); it != j.end()) {
    if (it->is_boolean())
      s.x_axis = it->get<bool>();
    else if (it->is_object()) {
      s.x_axis = it->value("show", true);
      if (it->value("type", std::string{"time"}) != "time")
        return bad(where + "xAxis.type must be time");
    } else
      return bad(where + "xAxis must be true, false or an object");
  }
  if (auto it = j.find("yAxis"); it != j.end()) {
    if (it->is_boolean())
      s.y_axis = it->get<bool>();
    else if (it->is_object()) {
      s.y_axis = it->value("show", true);
      auto fmt = it->value("format", std::string{"count"});
      if (fmt == "count")
        s.y_format = chart_value_format::count;
      else if (fmt == "number")
        s.y_format = chart_value_format::number;
      else
        return bad(where + "yAxis.format must be count or number");
    } else
      return bad(where + "yAxis must be true, false or an object");
  }
  std::string transform = "auto";
  if (auto err = str("transform", transform))
    return err;
  if (transform == "auto")
    s.transform = chart_transform::automatic;
  else if (transform == "previousPeriod")
    s.transform = chart_transform::previous_period;
  else
    return bad(where + "transform must be auto or previousPeriod");
  double max_series = s.max_series;
  if (auto err = num("maxSeries", max_series, 1, 20))
    return err;
  s.max_series = static_cast<int>(max_series);
  if (auto err = num("lineWidth", s.line_width, 0.5, 10))
    return err;
  if (auto err = num("fillOpacity", s.fill_opacity, 0, 1))
    return err;
  if (auto err = num("fontSize", s.font_size, 4, 32))
    return err;
  return s;
}

} // namespace

caf::expected<chart_colour> parse_chart_colour(std::string_view text) {
  if (text.empty() || text[0] != '#')
    return bad("a colour is #rgb, #rrggbb or #rrggbbaa");
  auto hex = text.substr(1);
  std::vector<int> digits;
  for (auto c : hex) {
    auto d = hex_value(c);
    if (d < 0)
      return bad("a colour is #rgb, #rrggbb or #rrggbbaa");
    digits.push_back(d);
  }
  chart_colour col;
  if (digits.size() == 3) {
    col.r = digits[0] * 17 / 255.0;
    col.g = digits[1] * 17 / 255.0;
    col.b = digits[2] * 17 / 255.0;
    return col;
  }
  if (digits.size() != 6 && digits.size() != 8)
    return bad("a colour is #rgb, #rrggbb or #rrggbbaa");
  auto byte = [&](size_t i) {
    return (digits[i] * 16 + digits[i + 1]) / 255.0;
  };
  col.r = byte(0);
  col.g = byte(2);
  col.b = byte(4);
  if (digits.size() == 8)
    col.a = byte(6);
  return col;
}

caf::expected<chart_config> parse_chart_config(std::string_view text) {
  auto j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded())
    return bad("the chart configuration is not valid JSON");
  if (!j.is_object())
    return bad("the chart configuration must be an object");
  chart_config cfg;
  auto v = j.find("version");
  if (v == j.end() || !(v->is_string() || v->is_number()))
    return bad("the chart configuration has no version");
  cfg.version = v->is_string() ? v->get<std::string>() : v->dump(-1, ' ', false,
                                  nlohmann::json::error_handler_t::replace);
  if (cfg.version.empty())
    return bad("the chart configuration has an empty version");
  auto styles = j.find("styles");
  if (styles == j.end() || !styles->is_object() || styles->empty())
    return bad("the chart configuration has no styles object");
  for (auto& [name, body] : styles->items()) {
    auto s = parse_style(name, body);
    if (!s)
      return s.error();
    cfg.styles.emplace(name, std::move(*s));
  }
  return cfg;
}

} // namespace vigil
