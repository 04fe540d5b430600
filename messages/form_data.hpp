#pragma once

// HTML form bodies as webhooks post them: application/x-www-form-urlencoded
// and multipart/form-data (RFC 7578; text fields only, file parts skipped).

#include <map>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace vigil {

/// A form's fields by name (the last of a repeated name wins).
using form_fields = std::map<std::string, std::string>;

/// Reads `body` as its `content_type` says; errc::malformed with the
/// reason for another type, a multipart body without its boundary or
/// with a broken part.
caf::expected<form_fields> parse_form(std::string_view content_type,
                                      std::string_view body);

} // namespace vigil
