#include "actors/chart_renderer.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/chart_painter.hpp"
#include "messages/chart_series.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

chart_reply reason(uint16_t status, std::string_view text,
                   std::string version) {
  chart_reply r;
  r.status = status;
  r.content_type = "application/json";
  r.body = "{\"detail\":";
  append_json_string(r.body, text, 4096);
  r.body += '}';
  r.config_version = std::move(version);
  return r;
}

} // namespace

chart_reply render_chart_body(const chart_config* cfg,
                              const std::string& body) {
  if (cfg == nullptr)
    return reason(503, "no chart configuration is loaded yet", "");
  try {
    nlohmann::json data;
    auto req = parse_render_request(body, data);
    if (!req)
      return reason(400, error_text(req.error()), cfg->version);
    auto it = cfg->styles.find(req->style);
    if (it == cfg->styles.end())
      return reason(400, "unknown style '" + req->style + "'", cfg->version);
    auto& style = it->second;
    auto series = transform_chart_data(style, data);
    if (!series)
      return reason(400, error_text(series.error()), cfg->version);
    auto w = req->width ? *req->width : style.width;
    auto h = req->height ? *req->height : style.height;
    auto png = paint_chart(style, *series, w, h);
    if (!png)
      return reason(500, error_text(png.error()), cfg->version);
    chart_reply r;
    r.body = std::move(*png);
    r.config_version = cfg->version;
    return r;
  } catch (const std::exception& e) {
    // Only input can get here (a JSON value of an unexpected type).
    return reason(400, std::string{"cannot render this data: "} + e.what(),
                  cfg->version);
  }
}

chart_renderer_actor::behavior_type
chart_renderer(chart_renderer_actor::stateful_pointer<chart_renderer_state> self,
               std::shared_ptr<chart_config_store> store) {
  self->state.store = std::move(store);
  return {
    [self](render_atom, const std::string& body) {
      auto cfg = self->state.store->get();
      return render_chart_body(cfg.get(), body);
    },
  };
}

} // namespace vigil
