#include "actors/quota.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/errors.hpp"

namespace vigil {

namespace {

using self_ptr = quota_actor::stateful_pointer<quota_state>;

// What a check gets when the store is unreachable.
quota_decision unavailable(const quota_actor_options& opts) {
  quota_decision d;
  if (!opts.fail_open) {
    d.accepted = false;
    d.retry_after = reject_all_secs;
    d.reason_code = "quota_unavailable";
  }
  return d;
}

void schedule(self_ptr self) {
  if (!self->state.batch_scheduled) {
    self->state.batch_scheduled = true;
    // Goes behind everything already queued: those join this batch.
    self->send(self, batch_atom_v);
  }
}

bool ensure_backend(self_ptr self) {
  auto& st = self->state;
  if (st.backend)
    return true;
  auto b = make_quota_backend(st.opts.backend);
  if (!b) {
    st.counters.fail(error_text(b.error()));
    return false;
  }
  st.backend = std::move(*b);
  return true;
}

void run_batch(self_ptr self) {
  auto& st = self->state;
  st.batch_scheduled = false;
  if (st.checks.empty())
    return;
  auto checks = std::move(st.checks);
  auto waiting = std::move(st.waiting);
  st.checks.clear();
  st.waiting.clear();
  caf::expected<std::vector<quota_decision>> decisions{caf::error{}};
  if (ensure_backend(self))
    decisions = st.backend->check_batch(checks);
  else
    decisions = caf::make_error(errc::connection_failed, "no quota store");
  ++st.batches;
  st.counters.processed += checks.size();
  if (!decisions) {
    auto text = error_text(decisions.error());
    if (st.counters.last_error != text)
      spdlog::warn("quotas: store failed, failing {}: {}",
                   st.opts.fail_open ? "open" : "closed", text);
    st.counters.fail(std::move(text));
    st.failed_open += checks.size();
    decisions = std::vector<quota_decision>(checks.size(),
                                            unavailable(st.opts));
  }
  auto& ds = *decisions;
  for (auto& d : ds)
    st.rejected += d.accepted ? 0 : 1;
  for (auto& w : waiting) {
    if (w.single) {
      w.one.deliver(ds[w.first]);
    } else {
      auto first = ds.begin() + static_cast<ptrdiff_t>(w.first);
      w.many.deliver(std::vector<quota_decision>(
        first, first + static_cast<ptrdiff_t>(w.count)));
    }
  }
}

} // namespace

quota_actor::behavior_type quota_service(self_ptr self,
                                         quota_actor_options opts) {
  self->state.opts = std::move(opts);
  ensure_backend(self);
  return {
    [=](quota_check& c) -> caf::result<quota_decision> {
      auto& st = self->state;
      quota_state::pending p;
      p.first = st.checks.size();
      p.count = 1;
      p.one = self->make_response_promise<quota_decision>();
      st.checks.push_back(std::move(c));
      auto rp = p.one;
      st.waiting.push_back(std::move(p));
      if (st.checks.size() >= st.opts.max_batch)
        run_batch(self);
      else
        schedule(self);
      return rp;
    },
    [=](std::vector<quota_check>& cs)
      -> caf::result<std::vector<quota_decision>> {
      auto& st = self->state;
      quota_state::pending p;
      p.first = st.checks.size();
      p.count = cs.size();
      p.single = false;
      p.many = self->make_response_promise<std::vector<quota_decision>>();
      for (auto& c : cs)
        st.checks.push_back(std::move(c));
      auto rp = p.many;
      st.waiting.push_back(std::move(p));
      if (st.checks.size() >= st.opts.max_batch)
        run_batch(self);
      else
        schedule(self);
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
      out.extra["failed_open"] = std::to_string(st.failed_open);
      out.extra["fail_open"] = st.opts.fail_open ? "true" : "false";
      return out;
    },
  };
}

} // namespace vigil
