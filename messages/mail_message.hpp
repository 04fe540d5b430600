#pragma once

// One mail to send (data only): recipients, subject, a text part, an
// optional HTML part and the images it shows inline (`cid:` references),
// and extra headers. The mailer's backends turn it into MIME; the
// `inspect` overloads let CAF carry it to the mailer actor.

#include <string>
#include <utility>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace vigil {

/// An image the HTML part shows as `<img src="cid:{content_id}">`.
struct mail_inline_image {
  /// Without angle brackets, e.g. "chart-1@vigil".
  std::string content_id;
  /// e.g. "image/png".
  std::string content_type;
  std::string filename;
  std::string bytes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_inline_image& x) {
  return f(caf::meta::type_name("vigil.mail_inline_image"), x.content_id,
           x.content_type, x.filename, x.bytes);
}

/// One mail.
struct mail_message {
  /// Addresses ("ann@example.com"), at least one.
  std::vector<std::string> to;
  /// Without mail.subject-prefix, which the mailer adds.
  std::string subject;
  /// The text/plain part (UTF-8).
  std::string text;
  /// The text/html part; empty: a text-only mail.
  std::string html;
  /// Shown by the HTML part; ignored without one.
  std::vector<mail_inline_image> images;
  /// Extra headers in order (Reply-To, List-Id, In-Reply-To, ...); the
  /// mailer writes From, To, Subject, Date, Message-ID and MIME's own.
  std::vector<std::pair<std::string, std::string>> headers;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_message& x) {
  return f(caf::meta::type_name("vigil.mail_message"), x.to, x.subject,
           x.text, x.html, x.images, x.headers);
}

/// Why a mail cannot be sent as it is ("" = it can): no recipient, an
/// address or header with a line break or without '@', an empty subject
/// and body, an image without a content id.
std::string mail_problem(const mail_message& m);

/// RFC 2047 "encoded-word" of a header value when it is not plain ASCII
/// ("=?utf-8?b?...?="), else the value itself.
std::string mail_header_value(const std::string& value);

} // namespace vigil
