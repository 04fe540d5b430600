#include "actors/backends/mailer.hpp"

#include <spdlog/spdlog.h>

#include "messages/errors.hpp"

namespace vigil {

mail_backend::~mail_backend() = default;

namespace {

mail_message prefixed(const mail_message& mail, const std::string& prefix) {
  auto out = mail;
  out.subject = prefix + mail.subject;
  return out;
}

class smtp_backend final : public mail_backend {
public:
  explicit smtp_backend(mail_options opts) : opts_(std::move(opts)) {}

  std::string describe() const override {
    const auto& s = opts_.smtp;
    return std::string{s.use_ssl ? "smtps://" : "smtp://"} + s.host + ":"
           + std::to_string(s.port) + (s.use_tls ? " (STARTTLS)" : "")
           + (s.username.empty() ? "" : " as " + s.username);
  }

  smtp_outcome send(const mail_message& mail) override {
    return smtp_send(opts_.smtp, prefixed(mail, opts_.subject_prefix));
  }

private:
  mail_options opts_;
};

/// Writes each mail to the log at info level, as Sentry's console backend
/// prints it: for development, nothing leaves the node.
class console_backend final : public mail_backend {
public:
  explicit console_backend(std::string prefix) : prefix_(std::move(prefix)) {}

  std::string describe() const override { return "console (the log)"; }

  smtp_outcome send(const mail_message& mail) override {
    smtp_outcome out;
    if (auto problem = mail_problem(mail); !problem.empty()) {
      out.message = problem;
      return out;
    }
    std::string to;
    for (const auto& t : mail.to)
      to += (to.empty() ? "" : ", ") + t;
    spdlog::info("mail (console): To: {} | Subject: {}{} | {} bytes of "
                 "text, {} of HTML, {} inline images\n{}",
                 to, prefix_, mail.subject, mail.text.size(),
                 mail.html.size(), mail.images.size(), mail.text);
    out.sent = true;
    return out;
  }

private:
  std::string prefix_;
};

/// Drops every mail (the default: a node sends nothing until told where).
class dummy_backend final : public mail_backend {
public:
  std::string describe() const override { return "dummy (dropped)"; }

  smtp_outcome send(const mail_message& mail) override {
    smtp_outcome out;
    out.message = mail_problem(mail);
    out.sent = out.message.empty();
    return out;
  }
};

} // namespace

caf::expected<std::unique_ptr<mail_backend>>
make_mail_backend(const mail_options& opts) {
  if (opts.backend == "dummy")
    return std::make_unique<dummy_backend>();
  if (opts.backend == "console")
    return std::make_unique<console_backend>(opts.subject_prefix);
  if (opts.backend != "smtp")
    return caf::make_error(errc::bad_config,
                           "mail.backend: unknown backend '" + opts.backend
                             + "' (expected smtp, console or dummy)");
  if (opts.smtp.use_tls && opts.smtp.use_ssl)
    return caf::make_error(errc::bad_config,
                           "mail.use-ssl: mail.use-tls is on too; choose "
                           "one");
  if (opts.smtp.host.empty())
    return caf::make_error(errc::bad_config,
                           "mail.host: empty (mail.backend is smtp)");
  if (opts.smtp.from.find('@') == std::string::npos)
    return caf::make_error(errc::bad_config,
                           "mail.from: expected an address, got '"
                             + opts.smtp.from + "'");
  return std::make_unique<smtp_backend>(opts);
}

} // namespace vigil
