#pragma once

// ASCII case folding, for names that protocols compare without case
// (header names, schemes, mail addresses' domains and signatures).

#include <string>
#include <string_view>

namespace vigil {

/// `s` with A-Z folded to a-z; other bytes (UTF-8 too) unchanged.
inline std::string ascii_lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

} // namespace vigil
