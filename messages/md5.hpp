#pragma once

// MD5 as Sentry uses it (md5_text: node ids, grouping hashes, rate-limit
// keys), never for security; SHA-1 as Sentry's File.checksum.

#include <initializer_list>
#include <string>
#include <string_view>

namespace vigil {

/// Returns the lower-case hex MD5 of the concatenation of `parts`.
std::string md5_hex(std::initializer_list<std::string_view> parts);

/// Returns the lower-case hex MD5 of `data`.
inline std::string md5_hex(std::string_view data) {
  return md5_hex({data});
}

/// Returns the lower-case hex SHA-1 of `data` (an attachment's checksum).
std::string sha1_hex(std::string_view data);

} // namespace vigil
