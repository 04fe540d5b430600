#pragma once

// `vigil mail send`: one mail through the configured backend (mail.*), as
// Sentry's `sendtestemail`: to check the settings, and the tests' way in.

#include <string>
#include <vector>

#include "config/config.hpp"

namespace vigil {

/// What `vigil mail send` sends.
struct mail_command_options {
  std::vector<std::string> to;
  std::string subject = "vigil test mail";
  /// The text part; "" with text_file unset: a line saying what this is.
  std::string text;
  std::string text_file;
  /// The HTML part, from a file; "" = text only.
  std::string html_file;
  /// Inline images "CID=FILE" (the HTML refers to cid:CID), PNG assumed
  /// unless the name ends otherwise.
  std::vector<std::string> images;
};

/// 0 when sent, 1 when the backend failed, 2 for bad input or config.
int mail_send_command(const config& cfg, const mail_command_options& o);

} // namespace vigil
