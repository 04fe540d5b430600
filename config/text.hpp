#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

/// Case-insensitive Levenshtein distance, for "did you mean" hints.
size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word`, if it is close enough to be a likely
/// typo (distance at most max(2, length / 3)); empty otherwise.
std::string_view closest_match(std::string_view word,
                               const std::vector<std::string_view>& candidates);

/// Parses a whole string as a decimal integer (a leading '+' allowed).
bool parse_int(std::string_view s, int64_t& out);

/// Parses a whole string as a finite number (no inf or nan: a config value
/// must be finite).
bool parse_double(std::string_view s, double& out);

/// The `max-messages` of a memory:// broker URL
/// (`memory://[name][?max-messages=N]`), or `fallback` when it has none.
/// Nullopt, with the reason in `why`, for another query parameter or a
/// value that is not an integer >= 1.
std::optional<size_t> memory_url_max_messages(std::string_view url,
                                              size_t fallback,
                                              std::string& why);

} // namespace vigil
