#include "messages/errors.hpp"

#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace vigil {

const char* to_string(errc x) {
  switch (x) {
    case errc::none: return "none";
    case errc::malformed: return "malformed";
    case errc::wrong_type: return "wrong_type";
    case errc::missing_field: return "missing_field";
    case errc::too_large: return "too_large";
    case errc::unknown_task: return "unknown_task";
    case errc::bad_config: return "bad_config";
    case errc::connection_failed: return "connection_failed";
    case errc::command_failed: return "command_failed";
    case errc::timeout: return "timeout";
    case errc::not_found: return "not_found";
    case errc::unsupported: return "unsupported";
    case errc::unavailable: return "unavailable";
  }
  return "unknown";
}

std::string error_text(const caf::error& err) {
  if (!err)
    return "";
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  if (err.category() == caf::atom("vigil"))
    return to_string(static_cast<errc>(err.code()));
  if (err.category() == caf::atom("system"))
    return caf::to_string(static_cast<caf::sec>(err.code()));
  return caf::to_string(err);
}

std::string render_error(const caf::error& err) {
  std::string out = to_string(static_cast<errc>(err.code()));
  auto text = error_text(err);
  if (!text.empty() && text != out) {
    out += ": ";
    out += text;
  }
  return out;
}

} // namespace vigil
