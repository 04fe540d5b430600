#pragma once

// `vigil run chartcuterie`: the chart renderer alone, with Chartcuterie's
// HTTP API on chart-rendering.bind.

#include "config/config.hpp"

namespace vigil {

/// Runs the chart renderer until SIGINT or SIGTERM, then returns 0; 2 when
/// it cannot start (a bad key, an address in use).
int run_chartcuterie(const config& cfg);

} // namespace vigil
