#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"

namespace vigil {

/// Options of `vigil bench charts`.
struct bench_charts_options {
  /// Rendering threads, and Node processes beside them (0 = the cores).
  size_t threads = 0;
  /// Measured seconds of each renderer, split evenly over the styles.
  double seconds = 16;
  /// Renders per style and thread instead of a time (0 = by time).
  size_t count = 0;
  /// Distinct request bodies per style.
  size_t variants = 16;
  uint64_t seed = 1;
  /// Run the Node peer (bench/charts_node.mjs) in the same run.
  bool node = true;
  /// The peer's script and its node_modules ("" = found beside the binary
  /// or the working directory: bench/charts_node.mjs, tests/js/node_modules).
  std::string node_script;
  std::string node_modules;
  /// Write each style's first chart as PNG there (vigil's charts-<name>.png,
  /// the peer's node-<name>.png), "" = none.
  std::string save_dir;
  /// Before the main run, measure the renderer's optimisations one at a
  /// time (chart_canvas_tuning): none, then each added to the previous.
  bool steps = false;
  /// Also render through `vigil run chartcuterie` (POST /render from as
  /// many keep-alive clients as threads; CPU figures are the server's).
  bool http = false;
  /// The optimisations on in the main run ("all", "none", or a comma list
  /// of own-png, reuse-canvas, cache-text): to profile one of them.
  std::string tuning = "all";
  bool json = false;
};

/// `vigil bench charts`: renders the built-in styles (450x150, generated
/// data of 24-90 buckets and 1-5 series, chart_bench_bodies) with
/// render_chart_body on `threads` threads, one style after another, then
/// the same bodies with the Node peer in as many processes; prints per style
/// and overall renders/s, p50 and p99 (ms) and CPU ms per render of both,
/// and vigil's renders/s over Node's. Without node or echarts it says so
/// and reports vigil's figures alone.
int bench_charts_command(const config& cfg, const bench_charts_options& opts);

} // namespace vigil
