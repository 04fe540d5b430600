#include "actors/reply_address.hpp"

#include <charconv>

#include "adapters/hmac.hpp"
#include "messages/ascii.hpp"
#include "messages/base64.hpp"
#include "messages/secret_compare.hpp"

namespace vigil {

namespace {

/// Django's default salt for Sentry's signer class ("<module>.<class>").
constexpr std::string_view signer_salt
  = "sentry.utils.email.signer._CaseInsensitiveSigner";

/// Django's Signer.signature, lower-cased: base64url(HMAC-SHA256(
/// key = SHA-256(salt + "signer" + secret), value)) without padding.
std::string signature(std::string_view value, std::string_view secret) {
  std::string key_material{signer_salt};
  key_material += "signer";
  key_material += secret;
  auto mac = hmac_sha256(sha256_bytes(key_material), value);
  auto b64 = base64_encode(mac);
  std::string out;
  for (char c : b64) {
    if (c == '=')
      continue;
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
    else if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
    out += c;
  }
  return out;
}

bool read_id(std::string_view text, int64_t& out) {
  auto res = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && res.ec == std::errc{}
         && res.ptr == text.data() + text.size() && out > 0;
}

} // namespace

std::string make_reply_address(int64_t group_id, int64_t org_id,
                               std::string_view secret,
                               std::string_view hostname) {
  auto value = std::to_string(group_id);
  if (org_id > 0)
    value.append(".").append(std::to_string(org_id));
  auto sig = signature(value, secret);
  return value.append("+").append(sig).append("@").append(hostname);
}

std::string bare_address(std::string_view header_value) {
  auto open = header_value.rfind('<');
  auto close = header_value.rfind('>');
  if (open != std::string_view::npos && close != std::string_view::npos
      && close > open)
    header_value = header_value.substr(open + 1, close - open - 1);
  while (!header_value.empty()
         && (header_value.front() == ' ' || header_value.front() == '\t'))
    header_value.remove_prefix(1);
  while (!header_value.empty()
         && (header_value.back() == ' ' || header_value.back() == '\t'
             || header_value.back() == '\r' || header_value.back() == '\n'))
    header_value.remove_suffix(1);
  return std::string{header_value};
}

std::optional<reply_target> read_reply_address(std::string_view address,
                                               std::string_view secret) {
  if (secret.empty())
    return std::nullopt;
  auto addr = bare_address(address);
  auto at = addr.rfind('@');
  if (at == std::string::npos)
    return std::nullopt;
  std::string_view local{addr.data(), at};
  auto plus = local.rfind('+');
  if (plus == std::string_view::npos)
    return std::nullopt;
  auto value = local.substr(0, plus);
  auto given = local.substr(plus + 1);
  if (!secrets_equal(ascii_lower(given), signature(value, secret)))
    return std::nullopt;
  reply_target out;
  auto dot = value.find('.');
  if (!read_id(value.substr(0, dot), out.group_id))
    return std::nullopt;
  if (dot != std::string_view::npos && !read_id(value.substr(dot + 1), out.org_id))
    return std::nullopt;
  return out;
}

} // namespace vigil
