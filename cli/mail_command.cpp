#include "cli/mail_command.hpp"

#include <fstream>
#include <iostream>
#include <iterator>

#include "actors/mailer.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  out.assign(std::istreambuf_iterator<char>(in), {});
  return true;
}

std::string image_type(const std::string& file) {
  auto ends = [&](const char* ext) {
    std::string e{ext};
    return file.size() >= e.size()
           && file.compare(file.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".jpg") || ends(".jpeg"))
    return "image/jpeg";
  if (ends(".gif"))
    return "image/gif";
  if (ends(".svg"))
    return "image/svg+xml";
  return "image/png";
}

} // namespace

int mail_send_command(const config& cfg, const mail_command_options& o) {
  auto opts = make_mailer_options(cfg);
  if (!opts) {
    std::cerr << "vigil mail send: " << error_text(opts.error()) << "\n";
    return 2;
  }
  auto backend = make_mail_backend(opts->mail);
  if (!backend) {
    std::cerr << "vigil mail send: " << error_text(backend.error()) << "\n";
    return 2;
  }
  mail_message m;
  m.to = o.to;
  m.subject = o.subject;
  m.text = o.text;
  if (!o.text_file.empty() && !read_file(o.text_file, m.text)) {
    std::cerr << "vigil mail send: cannot read " << o.text_file << "\n";
    return 2;
  }
  if (m.text.empty())
    m.text = "This is a test mail from vigil (vigil mail send).\n";
  if (!o.html_file.empty() && !read_file(o.html_file, m.html)) {
    std::cerr << "vigil mail send: cannot read " << o.html_file << "\n";
    return 2;
  }
  for (const auto& spec : o.images) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      std::cerr << "vigil mail send: --image: expected CID=FILE, got '"
                << spec << "'\n";
      return 2;
    }
    mail_inline_image img;
    img.content_id = spec.substr(0, eq);
    auto file = spec.substr(eq + 1);
    if (!read_file(file, img.bytes)) {
      std::cerr << "vigil mail send: cannot read " << file << "\n";
      return 2;
    }
    img.content_type = image_type(file);
    img.filename = file.substr(file.find_last_of('/') + 1);
    m.images.push_back(std::move(img));
  }
  if (auto problem = mail_problem(m); !problem.empty()) {
    std::cerr << "vigil mail send: " << problem << "\n";
    return 2;
  }
  auto out = (*backend)->send(m);
  if (!out.sent) {
    std::cerr << "vigil mail send: " << out.message << "\n";
    return 1;
  }
  std::cout << "sent to " << m.to.size() << " recipient(s) through "
            << (*backend)->describe() << "\n";
  return 0;
}

} // namespace vigil
