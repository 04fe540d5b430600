#include "actors/rate_limiter.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/backends/quota.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

using self_ptr = rate_limiter_actor::stateful_pointer<rate_limiter_state>;

void run_batch(self_ptr self) {
  auto& st = self->state;
  st.batch_scheduled = false;
  if (st.checks.empty())
    return;
  auto checks = std::move(st.checks);
  auto waiting = std::move(st.waiting);
  st.checks.clear();
  st.waiting.clear();
  caf::expected<std::vector<rate_limit_result>> results{caf::error{}};
  if (!st.backend) {
    auto b = make_rate_limiter_backend(st.opts);
    if (b)
      st.backend = std::move(*b);
    else
      results = b.error();
  }
  if (st.backend)
    results = st.backend->is_limited_batch(checks);
  st.counters.processed += checks.size();
  if (!results) {
    auto text = error_text(results.error());
    auto now = std::chrono::steady_clock::now();
    if (now - st.last_warning >= std::chrono::minutes{1}) {
      st.last_warning = now;
      spdlog::warn("ratelimiter: store failed, failing open: {}", text);
    }
    st.counters.fail(std::move(text));
    st.failed_open += checks.size();
    auto t = quota_system_now();
    std::vector<rate_limit_result> open;
    for (auto& c : checks) {
      auto window = c.window > 0 ? c.window : rate_limit_default_window;
      open.push_back({false, 0, (t / window + 1) * window});
    }
    results = std::move(open);
  }
  for (size_t i = 0; i < waiting.size(); ++i)
    waiting[i].deliver((*results)[i]);
}

} // namespace

rate_limiter_actor::behavior_type rate_limiter_service(self_ptr self,
                                                       rate_limiter_options opts) {
  self->state.opts = std::move(opts);
  return {
    [=](rate_limit_check& c) -> caf::result<rate_limit_result> {
      auto& st = self->state;
      st.checks.push_back(std::move(c));
      auto rp = self->make_response_promise<rate_limit_result>();
      st.waiting.push_back(rp);
      if (!st.batch_scheduled) {
        st.batch_scheduled = true;
        self->send(self, batch_atom_v);
      }
      return rp;
    },
    [=](batch_atom) { run_batch(self); },
    [=](status_atom) {
      auto& st = self->state;
      auto out = make_status(self, st.counters);
      out.extra["backend"] = st.backend ? st.backend->describe() : "none";
      out.extra["failed_open"] = std::to_string(st.failed_open);
      return out;
    },
  };
}

} // namespace vigil
