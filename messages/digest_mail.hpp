#pragma once

// The notification mails of alert rules, built from data (no I/O): a
// digest of the issues a project's rules fired for in a window, grouped
// by rule, and the ordinary alert mail that a digest of one issue is sent
// as. Shaped as Sentry's digest and alert mails (subject, List-Id), plus a
// small chart per issue inline in the HTML part (`cid:`), which Sentry's
// mails do not have.

#include <cstdint>
#include <string>
#include <vector>

#include "messages/mail_message.hpp"

namespace vigil {

/// One issue of a digest.
struct digest_issue {
  int64_t group_id = 0;
  std::string title;
  std::string culprit;
  /// The event's level ("error", "warning", ...).
  std::string level;
  /// Events and distinct users in the digest's window (TSDB).
  int64_t event_count = 0;
  int64_t user_count = 0;
  /// A PNG of the issue's events over the window; empty: none shown.
  std::string chart_png;
};

/// The issues one rule fired for, most events first.
struct digest_rule {
  std::string id;
  std::string label;
  std::vector<digest_issue> issues;
};

/// What a digest mail says, and where it points.
struct digest_mail_input {
  std::string org_slug;
  std::string project_slug;
  /// The window the records span, Unix seconds.
  double start = 0;
  double end = 0;
  /// Rules with the most issues first (Sentry's order).
  std::vector<digest_rule> rules;
  std::vector<std::string> to;
  /// system.url-prefix: the issue links start with it.
  std::string url_prefix;
  /// mail.list-namespace (List-Id).
  std::string list_namespace = "localhost";
  /// When replies are enabled, the signed reply address of the issue of
  /// a single-issue mail (a digest of several issues gets none).
  std::string reply_to;
};

/// Sentry's qualified short id of an issue: the project's slug in upper
/// case, '-', the group's number in Sentry's base32 ("BACKEND-1F").
std::string issue_short_id(const std::string& project_slug, int64_t group_id);

/// The distinct issues of a digest (an issue under two rules counts once).
size_t digest_issue_count(const digest_mail_input& in);

/// The mail: a digest of several issues ("{SHORT-ID} - {n} new alerts
/// since {date}", the top issue's short id), or for one issue the alert
/// mail ("{SHORT-ID} - {title}"). The subject is without
/// mail.subject-prefix (the mailer adds it). Text and HTML parts; each
/// issue's chart an inline image `chart-{group}@vigil`; headers List-Id
/// `<{project}.{org}.{namespace}>`, X-Sentry-Project, and Reply-To when
/// `reply_to` is set.
mail_message build_digest_mail(const digest_mail_input& in);

/// `text` with &, <, >, " and ' escaped for HTML.
std::string html_escape(const std::string& text);

} // namespace vigil
