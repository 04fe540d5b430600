#pragma once

// Axis arithmetic and labels for charts: round tick steps, counts with k/M
// suffixes, time labels.

#include <cstddef>
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

/// The time between x-axis labels: the shortest round interval (1, 5, 10,
/// 15, 30 minutes, 1, 2, 3, 6, 12 hours, 1, 2, 7, 14, 30 days) that puts at
/// most `max_labels` labels over `span_seconds` and is at least
/// `min_seconds` (a bucket); at least a day when the labels are dates
/// (span over two days, see format_time_label). Labels go where a bucket
/// crosses a multiple of it (UTC), so they fall on round times.
double time_label_interval(double span_seconds, double min_seconds,
                           size_t max_labels);

/// A time label for Unix seconds `ts` (UTC): "14:30" when the chart spans
/// at most two days (`span_seconds`), else "Dec 3".
std::string format_time_label(double ts, double span_seconds);

} // namespace vigil
