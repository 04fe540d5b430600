#pragma once

// The mailer's backends (Sentry's mail.backend): smtp sends through an SMTP
// server, console writes the mail to the log, dummy drops it. Sends block
// for at most mail.timeout, so a backend lives in a detached actor.

#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "adapters/curl_smtp.hpp"
#include "messages/mail_message.hpp"

namespace vigil {

/// The mail.* options a backend needs.
struct mail_options {
  /// "smtp", "console" or "dummy".
  std::string backend = "dummy";
  smtp_settings smtp;
  /// mail.subject-prefix, put before every subject.
  std::string subject_prefix = "[Sentry] ";
};

/// A mail backend.
class mail_backend {
public:
  virtual ~mail_backend();
  /// For logs, without secrets ("smtp://127.0.0.1:25 (STARTTLS)").
  virtual std::string describe() const = 0;
  /// Sends one mail (its subject without the prefix).
  virtual smtp_outcome send(const mail_message& mail) = 0;
};

/// The backend `opts.backend` names; errc::bad_config naming the key when
/// the options do not fit together.
caf::expected<std::unique_ptr<mail_backend>>
make_mail_backend(const mail_options& opts);

} // namespace vigil
