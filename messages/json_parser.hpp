#pragma once

// The per-thread simdjson parsers of the JSON codec and of event
// normalization: sized once for the largest document, given back after an
// unusually large one.

#include <algorithm>
#include <string>

#include <caf/error.hpp>
#include <simdjson.h>

#include "messages/errors.hpp"

namespace vigil {

/// Parsers keep buffers sized for their largest document; one parser per
/// thread avoids reallocating them for every message, but a huge document
/// must not pin its buffers forever.
constexpr size_t max_retained_parser_capacity = 1 << 20;

/// Makes `parser` fit a document of `size` bytes (at least `min_capacity`)
/// nested up to `depth` levels, allocating only when it does not fit yet.
/// Fails with errc::too_large when the allocation fails (the parser is
/// reset then).
inline caf::error fit_json_parser(simdjson::dom::parser& parser, size_t size,
                                  size_t depth, size_t min_capacity = 0) {
  if (parser.max_depth() == depth && parser.capacity() >= size)
    return {};
  auto capacity = std::max({parser.capacity(), size, min_capacity});
  if (auto ec = parser.allocate(capacity, depth); ec != simdjson::SUCCESS) {
    parser = simdjson::dom::parser{};
    return caf::make_error(errc::too_large,
                           std::string{"cannot allocate a JSON parser: "}
                             + simdjson::error_message(ec));
  }
  return {};
}

/// Resets the parser (and empties the buffer, if given) on scope exit when
/// they grew past max_retained_parser_capacity.
struct json_parser_release {
  simdjson::dom::parser& parser;
  std::string* buffer = nullptr;

  ~json_parser_release() {
    if (parser.capacity() > max_retained_parser_capacity)
      parser = simdjson::dom::parser{};
    if (buffer != nullptr && buffer->capacity() > max_retained_parser_capacity)
      std::string{}.swap(*buffer);
  }
};

} // namespace vigil
