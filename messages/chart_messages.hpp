#pragma once

// The chart renderer's messages (data only), with the `inspect` overloads
// CAF needs to carry them.

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace vigil {

/// A renderer's answer to a `POST /render` body: the HTTP status, and
/// either PNG bytes (200) or a JSON reason.
struct chart_reply {
  uint16_t status = 200;
  std::string content_type = "image/png";
  std::string body;
  /// The configuration version that served the request ("" when none).
  std::string config_version;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, chart_reply& x) {
  return f(caf::meta::type_name("vigil.chart_reply"), x.status,
           x.content_type, x.body, x.config_version);
}

} // namespace vigil
