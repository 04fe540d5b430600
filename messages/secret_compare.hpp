#pragma once

#include <string_view>

namespace vigil {

/// Whether `given` equals `secret`, in time that depends on neither their
/// contents nor the secret's length: both are hashed (SHA-256) and the
/// digests compared in constant time, so a client probing a bearer token
/// learns nothing from how long a refusal takes.
bool secrets_equal(std::string_view given, std::string_view secret);

} // namespace vigil
