#include "actors/quota.hpp"
#include "actors/metrics.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "config/config.hpp"
#include "config/organizations.hpp"
#include "messages/errors.hpp"

namespace vigil {

std::vector<quota_decision>
quota_unavailable_decisions(bool fail_open, size_t n, const std::string& reason,
                            quota_outage& outage, status_counters& counters,
                            std::chrono::steady_clock::time_point now) {
  // Logged once a minute: a dead store fails every batch.
  if (outage.last_warning == std::chrono::steady_clock::time_point{}
      || now - outage.last_warning >= std::chrono::minutes{1}) {
    outage.last_warning = now;
    if (fail_open)
      spdlog::warn("quotas: failing open for {} checks (quotas.fail-open): "
                   "{}; logged at most once a minute, failed_open counts "
                   "them",
                   n, reason);
    else
      spdlog::warn("quotas: failing closed for {} checks (rejected for {} s, "
                   "{}): {}; logged at most once a minute, failed_open "
                   "counts them",
                   n, reject_all_secs, quota_unavailable_reason, reason);
  }
  counters.fail("quota check failed: " + reason);
  outage.failed_open += n;
  quota_decision d;
  if (!fail_open) {
    d.accepted = false;
    d.retry_after = reject_all_secs;
    d.reason_code = quota_unavailable_reason;
  }
  return std::vector<quota_decision>(n, d);
}

namespace {

using self_ptr = quota_actor::stateful_pointer<quota_state>;

bool ensure_backend(self_ptr self) {
  auto& st = self->state;
  if (st.backend)
    return true;
  // Connecting to a hung server costs a timeout: try at most every 200 ms.
  auto now = std::chrono::steady_clock::now();
  if (now - st.last_attempt < std::chrono::milliseconds{200})
    return false;
  st.last_attempt = now;
  auto b = make_quota_backend(st.opts.backend);
  if (!b) {
    st.counters.fail(error_text(b.error()));
    return false;
  }
  st.backend = std::move(*b);
  return true;
}

std::vector<quota_decision> decide(self_ptr self,
                                   const std::vector<quota_check>& checks) {
  auto& st = self->state;
  caf::expected<std::vector<quota_decision>> decisions{caf::error{}};
  if (ensure_backend(self))
    decisions = st.backend->check_batch(checks);
  else
    decisions = caf::make_error(errc::connection_failed, "no quota store");
  ++st.batches;
  st.counters.processed += checks.size();
  if (!decisions)
    return quota_unavailable_decisions(
      st.opts.fail_open, checks.size(),
      "quota store: " + error_text(decisions.error()), st.outage, st.counters,
      std::chrono::steady_clock::now());
  uint64_t rejected = 0;
  for (auto& d : *decisions)
    rejected += d.accepted ? 0 : 1;
  st.rejected += rejected;
  metrics::incr("quotas.checked", static_cast<double>(decisions->size()));
  metrics::incr("quotas.rejected", static_cast<double>(rejected));
  return std::move(*decisions);
}

void run_batch(self_ptr self) {
  self->state.batch.run(
    [self](const std::vector<quota_check>& xs) { return decide(self, xs); });
}

// Decides at once when the batch is full, else after the mailbox drains.
void after_add(self_ptr self) {
  auto& st = self->state;
  if (st.batch.size() >= st.opts.max_batch)
    run_batch(self);
  else
    st.batch.schedule(self);
}

} // namespace

quota_actor::behavior_type quota_service(self_ptr self,
                                         quota_actor_options opts) {
  self->state.opts = std::move(opts);
  ensure_backend(self);
  return {
    [=](quota_check& c) -> caf::result<quota_decision> {
      auto rp = self->state.batch.add(self, std::move(c));
      after_add(self);
      return rp;
    },
    [=](std::vector<quota_check>& cs)
      -> caf::result<std::vector<quota_decision>> {
      auto rp = self->state.batch.add_all(self, cs);
      after_add(self);
      return rp;
    },
    [=](refund_atom, const quota_scoping& s,
        const std::vector<quota_config>& qs, int64_t n) -> caf::result<bool> {
      auto& st = self->state;
      // Checks queued before the refund are decided before it.
      run_batch(self);
      if (!ensure_backend(self))
        return caf::make_error(errc::connection_failed, "no quota store");
      if (auto err = st.backend->refund(s, qs, n)) {
        st.counters.fail(error_text(err));
        return err;
      }
      return true;
    },
    [=](usage_atom, const quota_scoping& s,
        const quota_config& q) -> caf::result<quota_usage> {
      auto& st = self->state;
      run_batch(self);
      if (!ensure_backend(self))
        return caf::make_error(errc::connection_failed, "no quota store");
      auto used = st.backend->get_usage(s, q);
      if (!used) {
        st.counters.fail(error_text(used.error()));
        return used.error();
      }
      return quota_usage{*used};
    },
    [=](batch_atom) { run_batch(self); },
    [=](status_atom) {
      auto& st = self->state;
      auto out = make_status(self, st.counters);
      out.extra["backend"] = st.backend ? st.backend->describe() : "none";
      out.extra["batches"] = std::to_string(st.batches);
      out.extra["rejected"] = std::to_string(st.rejected);
      out.extra["failed_open"] = std::to_string(st.outage.failed_open);
      out.extra["fail_open"] = st.opts.fail_open ? "true" : "false";
      if (st.backend) {
        auto s = st.backend->stats();
        out.extra["cache_hits"] = std::to_string(s.cache_hits);
        out.extra["scripts"] = std::to_string(s.scripts);
        out.extra["runs"] = std::to_string(s.runs);
        out.extra["reconnects"] = std::to_string(s.reconnects);
      }
      return out;
    },
  };
}

caf::expected<quota_actor_options> make_quota_actor_options(const config& cfg) {
  quota_actor_options out;
  out.backend.backend = cfg.get_string("quotas.backend");
  out.fail_open = cfg.get_bool("quotas.fail-open");
  if (out.backend.backend == "redis") {
    auto url = redis_cluster_url(cfg, "quotas.options");
    if (!url)
      return url.error();
    out.backend.url = *url;
  }
  return out;
}

} // namespace vigil
