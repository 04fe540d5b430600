// The built-in chart configuration: Sentry's Slack unfurl styles and
// vigil's own, as the same JSON an operator would write (docs/CHARTS.md).

#include "messages/chart_style.hpp"

namespace vigil {

std::string_view builtin_chart_config_json() {
  return R"json({
  "version": "vigil-builtin-1",
  "styles": {
    "slack:discover.totalPeriod": {
      "kind": "area", "width": 450, "height": 150,
      "colors": ["#444674"], "yAxis": {"format": "count"}
    },
    "slack:discover.totalDaily": {
      "kind": "bar", "width": 450, "height": 150,
      "colors": ["#444674"], "yAxis": {"format": "count"}
    },
    "slack:discover.top5Period": {
      "kind": "area", "width": 450, "height": 150, "legend": true,
      "maxSeries": 5, "fillOpacity": 0.25, "lineWidth": 1.5
    },
    "slack:discover.top5PeriodLine": {
      "kind": "line", "width": 450, "height": 150, "legend": true,
      "maxSeries": 5, "lineWidth": 1.5
    },
    "slack:discover.top5Daily": {
      "kind": "stackedBar", "width": 450, "height": 150, "legend": true,
      "maxSeries": 5
    },
    "slack:discover.previousPeriod": {
      "kind": "line", "width": 450, "height": 150, "legend": true,
      "transform": "previousPeriod", "colors": ["#444674", "#c6becf"]
    },
    "vigil:issue.eventsOverTime": {
      "kind": "bar", "width": 450, "height": 150,
      "title": "Events", "colors": ["#6c5fc7"]
    },
    "vigil:project.received": {
      "kind": "area", "width": 450, "height": 150,
      "title": "Events received", "colors": ["#3c74dd"]
    }
  }
})json";
}

} // namespace vigil
