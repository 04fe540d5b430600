#include "bench/bench_quota.hpp"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <thread>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/quota.hpp"
#include "config/organizations.hpp"
#include "messages/errors.hpp"
#include "runtime/actor_system.hpp"

namespace vigil {

namespace {

double percentile_ms(std::vector<int64_t>& xs, double p) {
  if (xs.empty())
    return 0;
  auto i = static_cast<size_t>(p * static_cast<double>(xs.size() - 1));
  std::nth_element(xs.begin(), xs.begin() + static_cast<ptrdiff_t>(i), xs.end());
  return static_cast<double>(xs[i]) / 1000.0;
}

quota_check make_check(const bench_quota_options& opts, uint64_t run,
                       size_t i) {
  quota_check c;
  quota_config q;
  q.id = "k";
  q.scope = quota_scope::key;
  q.window = opts.window;
  q.reason_code = "key_quota";
  if (opts.limit > 0) {
    q.limit = opts.limit;
    c.scoping = {run, 1, 1, "error"};
  } else {
    q.limit = 1000000000;
    c.scoping = {run, 1, 1 + i % 1000, "error"};
  }
  c.quotas = {q};
  return c;
}

} // namespace

int bench_quota_command(const config& cfg, const bench_quota_options& opts) {
  quota_actor_options qopts;
  qopts.backend.backend = opts.backend.empty() ? cfg.get_string("quotas.backend")
                                               : opts.backend;
  if (qopts.backend.backend == "redis") {
    if (!opts.url.empty()) {
      qopts.backend.url = opts.url;
    } else {
      auto url = redis_cluster_url(cfg, "quotas.options");
      if (!url) {
        std::cerr << "vigil bench quota: " << error_text(url.error()) << "\n";
        return 1;
      }
      qopts.backend.url = *url;
    }
  } else {
    qopts.backend.url = "memory://bench-quota";
  }
  // Exactness runs share one counter (fixed org); others use a fresh one.
  uint64_t run = opts.limit > 0 ? 777 : uint64_t(quota_system_now() % 100000) * 1000
                                          + uint64_t(getpid() % 1000);
  auto probe = make_quota_backend(qopts.backend);
  if (!probe) {
    std::cerr << "vigil bench quota: " << error_text(probe.error()) << "\n";
    return 1;
  }
  actor_system_config_ext sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto q = sys.spawn<caf::detached>(quota_service, qopts);
  std::atomic<size_t> accepted{0};
  std::vector<std::vector<int64_t>> lat(opts.clients);
  auto per_client = opts.count / opts.clients;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (size_t t = 0; t < opts.clients; ++t)
    threads.emplace_back([&, t] {
      caf::scoped_actor self{sys};
      size_t sent = 0;
      size_t ok = 0;
      while (sent < per_client) {
        auto n = std::min(opts.in_flight, per_client - sent);
        auto t0 = std::chrono::steady_clock::now();
        for (size_t i = 0; i < n; ++i)
          self->send(q, make_check(opts, run, sent + i + t * per_client));
        size_t got = 0;
        self->receive_for(got, n)(
          [&](quota_decision& d) { ok += d.accepted ? 1 : 0; },
          [&](caf::error&) {});
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
        lat[t].push_back(us);
        sent += n;
      }
      accepted += ok;
    });
  for (auto& th : threads)
    th.join();
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                            - start)
                .count();
  auto done = per_client * opts.clients;
  double rate = secs > 0 ? double(done) / secs : 0;
  std::vector<int64_t> all;
  for (auto& l : lat)
    all.insert(all.end(), l.begin(), l.end());
  auto p50 = percentile_ms(all, 0.5);
  auto p99 = percentile_ms(all, 0.99);
  // Baseline: one EVALSHA per check, same store, no batching, no cache.
  double base_rate = 0;
  if (opts.baseline_count > 0 && opts.limit == 0) {
    auto bopts = qopts.backend;
    bopts.cache_exhausted = false;
    auto b = make_quota_backend(bopts);
    if (b) {
      auto t0 = std::chrono::steady_clock::now();
      for (size_t i = 0; i < opts.baseline_count; ++i)
        if (!(*b)->check_batch({make_check(opts, run + 1, i)}))
          break;
      auto s = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                             - t0)
                 .count();
      base_rate = s > 0 ? double(opts.baseline_count) / s : 0;
    }
  }
  double ratio = base_rate > 0 ? rate / base_rate : 0;
  if (opts.json) {
    std::cout << fmt::format(
      R"({{"scenario": "quota", "backend": "{}", "count": {}, "accepted": {}, )"
      R"("clients": {}, "seconds": {:.3f}, "throughput_per_s": {:.0f}, )"
      R"("p50_ms": {:.3f}, "p99_ms": {:.3f}, "baseline_per_s": {:.0f}, )"
      R"("speedup": {:.1f}}})",
      qopts.backend.backend, done, accepted.load(), opts.clients, secs, rate,
      p50, p99, base_rate, ratio)
              << std::endl;
  } else {
    std::cout << fmt::format(
      "quota on {}: {} checks ({} accepted) in {:.3f} s = {:.0f} decisions/s; "
      "per window of {} in flight p50 {:.3f} ms, p99 {:.3f} ms; baseline "
      "(one EVALSHA per check) {:.0f}/s; speedup {:.1f}x\n",
      qopts.backend.backend, done, accepted.load(), secs, rate, opts.in_flight,
      p50, p99, base_rate, ratio);
  }
  std::cout.flush();
  std::_Exit(0);
}

} // namespace vigil
