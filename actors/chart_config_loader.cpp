#include "actors/chart_config_loader.hpp"

#include <fstream>
#include <sstream>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "adapters/curl_http.hpp"
#include "messages/errors.hpp"

namespace vigil {

caf::expected<std::string>
fetch_chart_config(const std::string& source,
                   std::chrono::milliseconds timeout) {
  if (source.starts_with("http://") || source.starts_with("https://")) {
    curl_request req;
    req.url = source;
    req.timeout = timeout;
    req.connect_timeout = std::min(timeout, std::chrono::milliseconds{5000});
    auto res = curl_perform(req);
    if (!res)
      return caf::make_error(errc::connection_failed, res.failure.message);
    if (res.response->status != 200)
      return caf::make_error(errc::not_found,
                             "GET " + source + " answered "
                               + std::to_string(res.response->status));
    return std::move(res.response->body);
  }
  std::ifstream in{source, std::ios::binary};
  if (!in)
    return caf::make_error(errc::not_found, "cannot read " + source);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

chart_config_loader_actor::behavior_type chart_config_loader(
  chart_config_loader_actor::stateful_pointer<chart_config_loader_state> self,
  chart_config_loader_options opts) {
  self->state.opts = std::move(opts);
  self->send(self, poll_atom_v);
  return {
    [self](poll_atom) {
      auto& st = self->state;
      auto current = st.opts.store->get();
      auto text = fetch_chart_config(st.opts.source, st.opts.fetch_timeout);
      caf::expected<chart_config> parsed{caf::error{}};
      if (text)
        parsed = parse_chart_config(*text);
      auto err = !text ? text.error() : !parsed ? parsed.error() : caf::error{};
      if (err) {
        auto why = error_text(err);
        if (why != st.last_error)
          spdlog::warn("charts: configuration from {} not loaded: {}{}",
                       st.opts.source, why,
                       current ? " (keeping version " + current->version + ")"
                               : std::string{" (answering 503)"});
        st.last_error = std::move(why);
      } else {
        st.last_error.clear();
        if (!current || current->version != parsed->version) {
          spdlog::info("charts: configuration version {} loaded from {} "
                       "({} styles)",
                       parsed->version, st.opts.source, parsed->styles.size());
          st.opts.store->set(
            std::make_shared<const chart_config>(std::move(*parsed)));
          current = st.opts.store->get();
        }
      }
      self->delayed_send(self, current ? st.opts.refresh : st.opts.retry,
                         poll_atom_v);
    },
  };
}

std::shared_ptr<const chart_config> builtin_chart_config() {
  static const std::shared_ptr<const chart_config> cfg = [] {
    auto parsed = parse_chart_config(builtin_chart_config_json());
    if (!parsed) {
      // Part of the program, checked by the unit tests: only a broken
      // build gets here, and its renders answer 503.
      spdlog::error("charts: the built-in configuration does not parse: {}",
                    error_text(parsed.error()));
      return std::shared_ptr<const chart_config>{};
    }
    return std::make_shared<const chart_config>(std::move(*parsed));
  }();
  return cfg;
}

} // namespace vigil
