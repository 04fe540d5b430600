#include "adapters/curl_smtp.hpp"

#include <ctime>

#include <strings.h>

#include "adapters/curl_common.hpp"
#include "messages/clock.hpp"

namespace vigil {

namespace {

/// Date as RFC 5322 writes it, in UTC, independent of the locale.
std::string rfc5322_now() {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed",
                                         "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr",
                                           "May", "Jun", "Jul", "Aug",
                                           "Sep", "Oct", "Nov", "Dec"};
  std::time_t now = std::time(nullptr);
  std::tm t{};
  gmtime_r(&now, &t);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d +0000",
                days[t.tm_wday], t.tm_mday, months[t.tm_mon],
                t.tm_year + 1900, t.tm_hour, t.tm_min, t.tm_sec);
  return buf;
}

std::string domain_of(const std::string& address) {
  auto at = address.rfind('@');
  return at == std::string::npos ? "localhost" : address.substr(at + 1);
}

bool has_header(const mail_message& m, const char* name) {
  for (const auto& [k, v] : m.headers)
    if (strcasecmp(k.c_str(), name) == 0)
      return true;
  return false;
}

curl_slist* append(curl_slist* list, const std::string& line) {
  auto* next = curl_slist_append(list, line.c_str());
  return next != nullptr ? next : list;
}

/// A text part of `mime`, quoted-printable.
void add_text(curl_mime* mime, const std::string& body, const char* type) {
  auto* p = curl_mime_addpart(mime);
  curl_mime_data(p, body.data(), body.size());
  curl_mime_type(p, type);
  curl_mime_encoder(p, "quoted-printable");
}

/// The body: text alone, or an alternative of text and HTML, inside a
/// related part with the inline images when there are any.
curl_mime* build_body(CURL* c, const mail_message& m) {
  auto* root = curl_mime_init(c);
  if (m.html.empty()) {
    add_text(root, m.text, "text/plain; charset=utf-8");
    return root;
  }
  auto* alt = curl_mime_init(c);
  add_text(alt, m.text, "text/plain; charset=utf-8");
  add_text(alt, m.html, "text/html; charset=utf-8");
  if (m.images.empty()) {
    auto* p = curl_mime_addpart(root);
    curl_mime_subparts(p, alt);
    curl_mime_type(p, "multipart/alternative");
    return root;
  }
  auto* related = curl_mime_init(c);
  auto* ap = curl_mime_addpart(related);
  curl_mime_subparts(ap, alt);
  curl_mime_type(ap, "multipart/alternative");
  for (const auto& img : m.images) {
    auto* ip = curl_mime_addpart(related);
    curl_mime_data(ip, img.bytes.data(), img.bytes.size());
    curl_mime_type(ip, img.content_type.empty() ? "application/octet-stream"
                                                : img.content_type.c_str());
    curl_mime_encoder(ip, "base64");
    curl_slist* h = nullptr;
    h = append(h, "Content-ID: <" + img.content_id + ">");
    h = append(h, "Content-Disposition: inline"
                    + (img.filename.empty()
                         ? std::string{}
                         : "; filename=\"" + img.filename + "\""));
    curl_mime_headers(ip, h, 1);
  }
  auto* rp = curl_mime_addpart(root);
  curl_mime_subparts(rp, related);
  curl_mime_type(rp, "multipart/related");
  return root;
}

struct mime_deleter {
  void operator()(curl_mime* m) const { curl_mime_free(m); }
};

} // namespace

smtp_outcome smtp_send(const smtp_settings& s, const mail_message& m) {
  smtp_outcome out;
  auto where = s.host + ":" + std::to_string(s.port);
  if (auto problem = mail_problem(m); !problem.empty()) {
    out.message = problem;
    return out;
  }
  curl_global_once();
  curl_easy_ptr h(curl_easy_init());
  if (!h) {
    out.message = "curl_easy_init failed";
    return out;
  }
  CURL* c = h.get();
  // An IPv6 literal goes in brackets in the URL.
  auto host = s.host.find(':') != std::string::npos ? "[" + s.host + "]"
                                                     : s.host;
  auto url = std::string{s.use_ssl ? "smtps://" : "smtp://"} + host + ":"
             + std::to_string(s.port);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(s.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(s.timeout.count()));
  if (s.use_tls)
    curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!s.ca_file.empty())
    curl_easy_setopt(c, CURLOPT_CAINFO, s.ca_file.c_str());
  if (!s.username.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, s.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, s.password.c_str());
  }
  auto from = "<" + s.from + ">";
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
  curl_slist* rcpt = nullptr;
  std::string to_line = "To: ";
  for (size_t i = 0; i < m.to.size(); ++i) {
    rcpt = append(rcpt, "<" + m.to[i] + ">");
    to_line += (i > 0 ? ", " : "") + m.to[i];
  }
  curl_slist_ptr rcpt_owner(rcpt);
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
  // A recipient the server refuses (550 no such user) must not cost the
  // others their mail: libcurl then sends to those it accepted, and fails
  // only when it accepted none. (7.88 spells the option with three Ls.)
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
  curl_slist* headers = nullptr;
  headers = append(headers, "Date: " + rfc5322_now());
  headers = append(headers, "From: " + s.from);
  headers = append(headers, to_line);
  headers = append(headers, "Subject: " + mail_header_value(m.subject));
  if (!has_header(m, "Message-ID")) {
    auto id = new_uuid4();
    headers = append(headers, "Message-ID: <" + id + "@" + domain_of(s.from)
                                + ">");
  }
  for (const auto& [k, v] : m.headers)
    headers = append(headers, k + ": " + mail_header_value(v));
  curl_slist_ptr headers_owner(headers);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  std::unique_ptr<curl_mime, mime_deleter> body(build_body(c, m));
  curl_easy_setopt(c, CURLOPT_MIMEPOST, body.get());
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) {
    out.sent = true;
    return out;
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  // 4xx replies are the server's "try again later".
  out.transient = curl_transient(rc) || (code >= 400 && code < 500);
  out.message = "SMTP to " + where + ": "
                + (errbuf[0] != 0 ? std::string{errbuf}
                                  : std::string{curl_easy_strerror(rc)});
  if (code != 0)
    out.message += " (last reply " + std::to_string(code) + ")";
  return out;
}

} // namespace vigil
