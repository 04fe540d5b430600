#pragma once

// Axis arithmetic and labels for charts: round tick steps, counts with k/M
// suffixes, time labels.

#include <string>
#include <vector>

namespace vigil {

/// A count as Sentry's charts show it: "0", "950", "1.2k", "35k", "1.5M",
/// "2B" (one decimal below 10 of the unit, none above; trailing ".0"
/// dropped). Negative values keep their sign.
std::string format_count(double value);

/// A number with at most two decimals, trailing zeros dropped.
std::string format_number(double value);

/// Tick values from 0 up to at least `max` in a round step (1, 2, 2.5, 5
/// times a power of ten), about `target` of them. `max` <= 0 gives {0, 1}.
std::vector<double> nice_ticks(double max, int target = 3);

/// A time label for Unix seconds `ts` (UTC): "14:30" when the chart spans
/// at most two days (`span_seconds`), else "Dec 3".
std::string format_time_label(double ts, double span_seconds);

} // namespace vigil
