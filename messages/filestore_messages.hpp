#pragma once

// The filestore actor's messages (data only), with the `inspect` overloads
// CAF needs to carry them.

#include <string>

#include <caf/meta/type_name.hpp>

namespace vigil {

/// Stores `data` under `key` (filestore actor).
struct filestore_put {
  std::string key;
  std::string data;
  std::string content_type;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, filestore_put& x) {
  return f(caf::meta::type_name("vigil.filestore_put"), x.key, x.data,
           x.content_type);
}

} // namespace vigil
