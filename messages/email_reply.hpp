#pragma once

// The new text of a mail reply, without what it quotes, as Sentry's
// EmailReplyParser.parse_reply leaves it: the lines before the quote
// header ("On ... wrote:"), the quoted ("> ") lines, an "Original Message"
// separator or the signature ("-- "), trimmed.

#include <string>
#include <string_view>

namespace vigil {

/// The visible reply of `body_plain` (may be empty).
std::string visible_reply(std::string_view body_plain);

} // namespace vigil
