#pragma once

// The signed reply addresses of notification mails, as Sentry's
// group_id_to_email / email_to_group_id: "{group}.{org}+{signature}@{host}",
// the signature Django's Signer (HMAC-SHA256 under a key derived from
// system.secret-key and the signer's salt, base64url without padding) in
// lower case, as Sentry's case-insensitive signer writes it. A reply to
// such an address can only name the issue it was sent for.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

/// Who a reply is about.
struct reply_target {
  int64_t group_id = 0;
  /// 0 when the address carries none (Sentry's older form "{group}+sig").
  int64_t org_id = 0;
};

/// The reply address of issue `group_id` of organization `org_id` at
/// `hostname` (mail.reply-hostname, or the domain of mail.from).
std::string make_reply_address(int64_t group_id, int64_t org_id,
                               std::string_view secret,
                               std::string_view hostname);

/// The issue a reply address names, when its signature is good; nullopt
/// for any other address. Accepts "Name <addr>" as a To header gives it.
std::optional<reply_target> read_reply_address(std::string_view address,
                                               std::string_view secret);

/// The bare address of a header value ("Ann <ann@example.com>" →
/// "ann@example.com"), trimmed.
std::string bare_address(std::string_view header_value);

} // namespace vigil
