#pragma once

// Keyed hashes through OpenSSL: what signs and checks mail reply
// addresses and verifies Mailgun's webhooks.

#include <string>
#include <string_view>

namespace vigil {

/// SHA-256 of `data`: 32 raw bytes.
std::string sha256_bytes(std::string_view data);

/// HMAC-SHA256 of `message` under `key`: 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view message);

/// `bytes` as lowercase hex.
std::string hex_encode(std::string_view bytes);

} // namespace vigil
