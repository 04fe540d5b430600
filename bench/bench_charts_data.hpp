#pragma once

// The request bodies of `vigil bench charts`: for each built-in style,
// `POST /render` bodies with generated data in the shape that style is
// sent by Sentry (24-90 buckets, 1-5 series), deterministic for a seed.
// The bench renders them natively and writes them to a file that the Node
// peer (bench/charts_node.mjs) renders too, so both draw identical inputs.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/chart_style.hpp"

namespace vigil {

/// The bodies of one style.
struct chart_bench_style {
  std::string style;
  std::vector<std::string> bodies;
};

/// `variants` bodies for every style of `cfg` (in the configuration's
/// order). Single-series styles get events-stats (`{seriesName, stats:
/// {data: [[ts, [{count}]]]}}`, bare `{data: ...}`, or a one-series list),
/// top-N styles 1-5 series, as Sentry's `[{seriesName, data: [{name: ms,
/// value}]}]` or top events `{stats: {name: {data, order}}}` in turn,
/// previousPeriod twice the buckets (two periods); bar kinds get daily
/// buckets, the others hourly ones.
std::vector<chart_bench_style> chart_bench_bodies(const chart_config& cfg,
                                                  size_t variants,
                                                  uint64_t seed);

/// A style's resolved fields as JSON (kind, colours as #rrggbb, legend,
/// title, transform...): what the Node peer needs to draw the same chart.
std::string chart_style_json(const chart_style& style);

} // namespace vigil
