#include "messages/digest_mail.hpp"

#include <cctype>
#include <cmath>
#include <ctime>
#include <set>

namespace vigil {

namespace {

/// "Dec 7, 2026, 15:04 UTC": the window's start in the subject and body.
std::string mail_date(double unix_seconds) {
  auto t = static_cast<time_t>(std::floor(unix_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  auto n = std::strftime(buf, sizeof buf, "%b %e, %Y, %H:%M UTC", &tm);
  std::string out{buf, n};
  // %e pads a one-digit day with a space.
  if (auto i = out.find("  "); i != std::string::npos)
    out.erase(i, 1);
  return out;
}

std::string plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string issue_link(const digest_mail_input& in, int64_t group_id) {
  std::string prefix = in.url_prefix;
  while (!prefix.empty() && prefix.back() == '/')
    prefix.pop_back();
  return prefix + "/organizations/" + in.org_slug + "/issues/"
         + std::to_string(group_id) + "/";
}

std::string content_id(int64_t group_id) {
  return "chart-" + std::to_string(group_id) + "@vigil";
}

/// The dot-atom label of List-Id: letters, digits and '-' kept, anything
/// else '-' (RFC 2822's atext without the symbols mail clients mangle).
std::string list_label(const std::string& s) {
  std::string out;
  for (unsigned char c : s)
    out += std::isalnum(c) || c == '-' ? static_cast<char>(c) : '-';
  return out.empty() ? "-" : out;
}

const digest_issue* first_issue(const digest_mail_input& in) {
  for (const auto& r : in.rules)
    if (!r.issues.empty())
      return &r.issues.front();
  return nullptr;
}

} // namespace

std::string issue_short_id(const std::string& project_slug, int64_t group_id) {
  // Crockford's base32, as Sentry's base32_encode.
  static constexpr char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::string digits;
  auto n = static_cast<uint64_t>(group_id < 0 ? 0 : group_id);
  do {
    digits.insert(digits.begin(), alphabet[n % 32]);
    n /= 32;
  } while (n > 0);
  std::string slug;
  for (unsigned char c : project_slug)
    slug += static_cast<char>(std::toupper(c));
  return slug + "-" + digits;
}

size_t digest_issue_count(const digest_mail_input& in) {
  std::set<int64_t> ids;
  for (const auto& r : in.rules)
    for (const auto& i : r.issues)
      ids.insert(i.group_id);
  return ids.size();
}

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

mail_message build_digest_mail(const digest_mail_input& in) {
  mail_message m;
  m.to = in.to;
  auto count = digest_issue_count(in);
  const auto* top = first_issue(in);
  auto since = mail_date(in.start);
  auto top_id = top ? issue_short_id(in.project_slug, top->group_id)
                    : in.project_slug;
  if (count == 1 && top)
    m.subject = top_id + " - " + top->title;
  else
    m.subject = top_id + " - " + plural(static_cast<int64_t>(count),
                                        "new alert", "new alerts")
                + " since " + since;

  std::string text, html;
  html += "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>"
          "<body style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,"
          "sans-serif;color:#2b1d38;background:#ffffff\">";
  html += "<h2 style=\"font-weight:600;margin:0 0 4px\">"
          + html_escape(in.project_slug) + "</h2>";
  auto window = plural(static_cast<int64_t>(count), "issue", "issues")
                + " since " + since;
  html += "<p style=\"color:#80708f;margin:0 0 16px\">" + html_escape(window)
          + "</p>";
  text += in.org_slug + " / " + in.project_slug + ": " + window + "\n";

  std::set<int64_t> charted;
  for (const auto& rule : in.rules) {
    if (rule.issues.empty())
      continue;
    text += "\n" + rule.label + "\n" + std::string(rule.label.size(), '=')
            + "\n";
    html += "<h3 style=\"font-weight:600;border-bottom:1px solid #e0dce5;"
            "padding-bottom:4px\">"
            + html_escape(rule.label) + "</h3>";
    for (const auto& issue : rule.issues) {
      auto sid = issue_short_id(in.project_slug, issue.group_id);
      auto link = issue_link(in, issue.group_id);
      auto counts = plural(issue.event_count, "event", "events") + ", "
                    + plural(issue.user_count, "user", "users");
      text += "\n* " + sid + " " + issue.title + " [" + issue.level + "]\n";
      if (!issue.culprit.empty())
        text += "  " + issue.culprit + "\n";
      text += "  " + counts + "\n  " + link + "\n";
      html += "<table role=\"presentation\" style=\"margin:0 0 16px;"
              "border-collapse:collapse\"><tr><td style=\"padding:0\">"
              "<a href=\""
              + html_escape(link)
              + "\" style=\"color:#6c5fc7;font-weight:600;"
                "text-decoration:none\">"
              + html_escape(sid) + " " + html_escape(issue.title)
              + "</a> <span style=\"color:#80708f\">["
              + html_escape(issue.level) + "]</span>";
      if (!issue.culprit.empty())
        html += "<br><span style=\"color:#80708f;font-size:13px\">"
                + html_escape(issue.culprit) + "</span>";
      html += "<br><span style=\"font-size:13px\">" + html_escape(counts)
              + "</span>";
      if (!issue.chart_png.empty()) {
        html += "<br><img src=\"cid:" + content_id(issue.group_id)
                + "\" alt=\"events of " + html_escape(sid)
                + "\" width=\"450\" height=\"150\" style=\"display:block;"
                  "margin-top:6px\">";
        // An issue under two rules shows its chart twice, attached once.
        if (charted.insert(issue.group_id).second)
          m.images.push_back({content_id(issue.group_id), "image/png",
                              "chart-" + std::to_string(issue.group_id)
                                + ".png",
                              issue.chart_png});
      }
      html += "</td></tr></table>";
    }
  }
  html += "<p style=\"color:#80708f;font-size:12px\">You receive this "
          "because you are a member of "
          + html_escape(in.org_slug) + ".</p></body></html>";
  m.text = std::move(text);
  m.html = std::move(html);
  m.headers.emplace_back("List-Id", "<" + list_label(in.project_slug) + "."
                                      + list_label(in.org_slug) + "."
                                      + in.list_namespace + ">");
  m.headers.emplace_back("X-Sentry-Project", in.project_slug);
  if (!in.reply_to.empty())
    m.headers.emplace_back("Reply-To", in.reply_to);
  return m;
}

} // namespace vigil
