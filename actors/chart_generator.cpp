#include "actors/chart_generator.hpp"

#include <random>

#include <nlohmann/json.hpp>

#include "actors/chart_renderer.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

/// 128 bits from std::random_device (the kernel's getrandom on Linux):
/// the name is the chart's only protection, as Sentry's uuid4.
std::string random_request_id() {
  static constexpr char digits[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  out.reserve(32);
  for (int i = 0; i < 4; ++i) {
    auto x = static_cast<uint32_t>(rd());
    for (int j = 0; j < 8; ++j, x >>= 4)
      out += digits[x & 0xf];
  }
  return out;
}

/// The renderer's JSON `detail`, or its whole body.
std::string reply_detail(const chart_reply& r) {
  auto doc = nlohmann::json::parse(r.body, nullptr, false);
  if (doc.is_object() && doc.contains("detail") && doc["detail"].is_string())
    return doc["detail"].get<std::string>();
  return r.body;
}

} // namespace

std::string chart_file_key(std::string_view request_id) {
  return "charts/" + std::string{request_id} + ".png";
}

bool is_chart_file_name(std::string_view name) {
  if (name.size() != 36 || !name.ends_with(".png"))
    return false;
  for (size_t i = 0; i < 32; ++i) {
    auto c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

caf::expected<generated_chart>
generate_chart(const chart_config* cfg, filestore_backend& files,
               std::string_view url_prefix, const std::string& style,
               const nlohmann::json& data, std::optional<int> width,
               std::optional<int> height) {
  generated_chart out;
  out.request_id = random_request_id();
  nlohmann::json body = {{"requestId", out.request_id},
                         {"style", style},
                         {"data", data}};
  if (width && height) {
    body["width"] = *width;
    body["height"] = *height;
  }
  auto reply = render_chart_body(cfg, dump_json(body));
  if (reply.status == 503)
    return caf::make_error(errc::unavailable, reply_detail(reply));
  if (reply.status != 200)
    return caf::make_error(errc::malformed, reply_detail(reply));
  if (auto err = files.put(chart_file_key(out.request_id), reply.body,
                           "image/png"))
    return err;
  std::string prefix{url_prefix};
  while (!prefix.empty() && prefix.back() == '/')
    prefix.pop_back();
  out.url = prefix + "/charts/" + out.request_id + ".png";
  return out;
}

} // namespace vigil
