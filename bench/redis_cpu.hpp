#pragma once

// The Redis server's own CPU time, for benches that report it per item.

#include <string>

namespace vigil {

/// used_cpu_sys + used_cpu_user of the server at `url` (INFO cpu), in
/// seconds; -1 when it cannot be read.
double redis_cpu_seconds(const std::string& url);

} // namespace vigil
