#include "config/metrics_options.hpp"

#include <charconv>

#include "config/config.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

caf::error bad(std::string text) {
  return caf::make_error(errc::bad_config, std::move(text));
}

bool scalar_text(const YAML::Node& v, std::string& out) {
  if (!v.IsScalar())
    return false;
  out = v.Scalar();
  return true;
}

caf::error read_int(const YAML::Node& v, std::string_view name, int64_t lo,
                    int64_t hi, int64_t& out) {
  auto range = "expected an integer in [" + std::to_string(lo) + ", "
               + std::to_string(hi) + "]";
  std::string s;
  if (!scalar_text(v, s))
    return bad(std::string{name} + ": " + range);
  auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  if (res.ec != std::errc{} || res.ptr != s.data() + s.size() || out < lo
      || out > hi)
    return bad(std::string{name} + ": " + range + ", got '" + s + "'");
  return {};
}

caf::error read_tags(const YAML::Node& v, metrics_config& out) {
  out.tags.clear();
  if (v.IsNull())
    return {};
  if (v.IsMap()) {
    for (const auto& kv : v) {
      std::string k, val;
      if (!scalar_text(kv.first, k) || !scalar_text(kv.second, val)
          || k.empty())
        return bad("tags: expected a map of names to strings, or a list of "
                   "\"name:value\"");
      out.tags.emplace_back(k, val);
    }
    return {};
  }
  if (v.IsSequence()) {
    for (const auto& item : v) {
      std::string s;
      if (!scalar_text(item, s) || s.empty())
        return bad("tags: expected a list of \"name:value\" strings");
      auto colon = s.find(':');
      if (colon == 0)
        return bad("tags: '" + s + "' has no name before ':'");
      if (colon == std::string::npos)
        out.tags.emplace_back(s, "");
      else
        out.tags.emplace_back(s.substr(0, colon), s.substr(colon + 1));
    }
    return {};
  }
  return bad("tags: expected a map of names to strings, or a list of "
             "\"name:value\"");
}

} // namespace

caf::error parse_metrics_options(const YAML::Node& node, metrics_config& out) {
  if (!node || node.IsNull())
    return {};
  if (!node.IsMap())
    return bad("expected a map (host, port, max-datagram, tags, api-key, "
               "app-key, site, url, bind)");
  for (const auto& entry : node) {
    std::string name;
    if (!scalar_text(entry.first, name))
      return bad("expected option names as keys");
    const auto& v = entry.second;
    std::string text;
    auto need_text = [&](std::string& into) -> caf::error {
      if (!scalar_text(v, text))
        return bad(name + ": expected a string");
      into = text;
      return {};
    };
    caf::error err;
    if (name == "host") {
      err = need_text(out.host);
      if (!err && out.host.empty())
        err = bad("host: expected a host name or address, got ''");
    } else if (name == "port") {
      int64_t x = 0;
      err = read_int(v, name, 1, 65535, x);
      out.port = static_cast<uint16_t>(x);
    } else if (name == "max-datagram") {
      int64_t x = 0;
      err = read_int(v, name, 64, 65000, x);
      out.max_datagram = static_cast<size_t>(x);
    } else if (name == "tags") {
      err = read_tags(v, out);
    } else if (name == "api-key") {
      // Never quoted back: whatever is wrong, the value stays out of it.
      if (!scalar_text(v, out.api_key))
        err = bad("api-key: expected a string");
    } else if (name == "app-key") {
      if (!scalar_text(v, out.app_key))
        err = bad("app-key: expected a string");
    } else if (name == "site") {
      err = need_text(out.site);
    } else if (name == "url") {
      err = need_text(out.url);
      if (!err && !out.url.empty() && !out.url.starts_with("http://")
          && !out.url.starts_with("https://"))
        err = bad("url: expected an http:// or https:// base URL, got '"
                  + out.url + "'");
    } else if (name == "bind") {
      err = need_text(out.bind);
    } else {
      err = bad("unknown option '" + name
                + "' (expected host, port, max-datagram, tags, api-key, "
                  "app-key, site, url or bind)");
    }
    if (err)
      return err;
  }
  return {};
}

caf::expected<metrics_config> read_metrics_config(const config& cfg) {
  metrics_config out;
  out.backend = cfg.get_string("metrics.backend");
  out.prefix = cfg.get_string("metrics.prefix");
  out.sample_rate = cfg.get_double("metrics.sample-rate");
  if (auto err = parse_metrics_options(cfg.get_node("metrics.options"), out))
    return caf::make_error(errc::bad_config,
                           "metrics.options: " + error_text(err));
  auto interval = cfg.get_double("metrics.interval");
  out.interval = interval > 0 ? interval
                              : (out.backend == "datadog" ? 10.0 : 1.0);
  if (out.backend == "datadog" && out.api_key.empty())
    return caf::make_error(errc::bad_config,
                           "metrics.options: api-key: required with "
                           "metrics.backend datadog");
  return out;
}

} // namespace vigil
