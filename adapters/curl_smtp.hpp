#pragma once

// Sends one mail over SMTP with libcurl: libcurl speaks SMTP (EHLO,
// STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA) and builds the MIME body
// (curl_mime), so vigil writes neither. A call blocks for at most the
// settings' timeout; callers run it in a detached actor.

#include <chrono>
#include <string>

#include "messages/mail_message.hpp"

namespace vigil {

/// Where and how to send (Sentry's mail.* options).
struct smtp_settings {
  std::string host = "127.0.0.1";
  int port = 25;
  /// AUTH; empty = none.
  std::string username;
  /// Never logged, never in an error text.
  std::string password;
  /// STARTTLS, required.
  bool use_tls = false;
  /// Implicit TLS (smtps://).
  bool use_ssl = false;
  /// CA bundle for the server's certificate; empty = the system's.
  std::string ca_file;
  std::chrono::milliseconds timeout{10000};
  /// The envelope sender and From header.
  std::string from = "root@localhost";
};

/// What a send did.
struct smtp_outcome {
  bool sent = false;
  /// When not sent: whether trying again later may work (connection
  /// refused, timeout, a 4xx reply).
  bool transient = false;
  /// When not sent: libcurl's reason and the server's last reply, with the
  /// host; never the password.
  std::string message;
};

/// Sends `mail` (its subject already prefixed). The mail gets From, To,
/// Subject, Date and a Message-ID under `from`'s domain unless its headers
/// carry one; HTML and inline images as multipart/related around a
/// multipart/alternative of the text and HTML parts.
smtp_outcome smtp_send(const smtp_settings& s, const mail_message& mail);

} // namespace vigil
