#include "bench/bench_quota.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <iostream>
#include <thread>

#include <unistd.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/quota.hpp"
#include "config/organizations.hpp"
#include "messages/errors.hpp"
#include "node/actor_system.hpp"

namespace vigil {

namespace {

using clock_type = std::chrono::steady_clock;

double percentile_ms(std::vector<int64_t>& xs, double p) {
  if (xs.empty())
    return 0;
  auto i = static_cast<size_t>(p * static_cast<double>(xs.size() - 1));
  std::nth_element(xs.begin(), xs.begin() + static_cast<ptrdiff_t>(i), xs.end());
  return static_cast<double>(xs[i]) / 1000.0;
}

// Check number `i` of the run: most go to one of 1000 key quotas with a
// high limit (decided by the store), `exhausted_share` percent to one of ten
// key quotas of limit 100 (rejected from the cache once exhausted).
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
  } else if (i % 100 < opts.exhausted_share) {
    q.limit = 100;
    c.scoping = {run, 1, 1000001 + i % 10, "error"};
  } else {
    q.limit = 1000000000;
    c.scoping = {run, 1, 1 + i % 1000, "error"};
  }
  c.quotas.push_back(std::move(q));
  return c;
}

struct client_result {
  size_t accepted = 0;
  size_t decided = 0;
  std::vector<int64_t> latency_us; // one per message
  bool failed = false;
};

// One client: keeps `in_flight` checks outstanding in messages of
// `client_batch`, sending the next message as each answer arrives. The
// actor answers one sender in order, so answers match sends first-in
// first-out.
void run_client(caf::actor_system& sys, const quota_actor& q,
                const bench_quota_options& opts, uint64_t run, size_t begin,
                size_t count, client_result& out) {
  caf::scoped_actor self{sys};
  auto batch = std::max<size_t>(opts.client_batch, 1);
  auto window = std::max<size_t>(opts.in_flight / batch, 1);
  std::deque<clock_type::time_point> sent_at;
  size_t next = 0;
  out.latency_us.reserve(count / batch + 1);
  auto send_one = [&] {
    auto n = std::min(batch, count - next);
    if (batch == 1) {
      self->send(q, make_check(opts, run, begin + next));
    } else {
      std::vector<quota_check> xs;
      xs.reserve(n);
      for (size_t i = 0; i < n; ++i)
        xs.push_back(make_check(opts, run, begin + next + i));
      self->send(q, std::move(xs));
    }
    sent_at.push_back(clock_type::now());
    next += n;
  };
  while (next < count && sent_at.size() < window)
    send_one();
  while (!sent_at.empty()) {
    bool ok = true;
    self->receive(
      [&](std::vector<quota_decision>& ds) {
        for (auto& d : ds)
          out.accepted += d.accepted ? 1 : 0;
        out.decided += ds.size();
      },
      [&](quota_decision& d) {
        out.accepted += d.accepted ? 1 : 0;
        ++out.decided;
      },
      [&](caf::error&) { ok = false; },
      caf::after(std::chrono::seconds{60}) >> [&] { ok = false; });
    if (!ok) {
      out.failed = true;
      return;
    }
    out.latency_us.push_back(
      std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now()
                                                            - sent_at.front())
        .count());
    sent_at.pop_front();
    if (next < count)
      send_one();
  }
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
  auto clients = std::max<size_t>(opts.clients, 1);
  std::vector<client_result> results(clients);
  auto per_client = opts.count / clients;
  auto start = clock_type::now();
  std::vector<std::thread> threads;
  for (size_t t = 0; t < clients; ++t)
    threads.emplace_back([&, t] {
      run_client(sys, q, opts, run, t * per_client, per_client, results[t]);
    });
  for (auto& th : threads)
    th.join();
  auto secs = std::chrono::duration<double>(clock_type::now() - start).count();
  size_t done = 0;
  size_t accepted = 0;
  std::vector<int64_t> all;
  for (auto& r : results) {
    if (r.failed) {
      std::cerr << "vigil bench quota: a client got no answer in time\n";
      std::cout.flush();
      std::_Exit(1);
    }
    done += r.decided;
    accepted += r.accepted;
    all.insert(all.end(), r.latency_us.begin(), r.latency_us.end());
  }
  double rate = secs > 0 ? double(done) / secs : 0;
  auto p50 = percentile_ms(all, 0.5);
  auto p99 = percentile_ms(all, 0.99);
  // The actor's figures: cache hits, script calls, runs.
  std::map<std::string, std::string> figures;
  {
    caf::scoped_actor self{sys};
    self->request(q, std::chrono::seconds{5}, status_atom_v)
      .receive([&](actor_status& st) { figures = st.extra; },
               [&](caf::error&) {});
  }
  auto figure = [&](const char* name) {
    auto i = figures.find(name);
    return i == figures.end() ? std::string{"0"} : i->second;
  };
  // Baseline: one EVALSHA per check, same store and checks, no batching, no
  // cache.
  double base_rate = 0;
  if (opts.baseline_count > 0 && opts.limit == 0) {
    auto bopts = qopts.backend;
    bopts.cache_exhausted = false;
    auto b = make_quota_backend(bopts);
    if (b) {
      std::vector<quota_check> one(1);
      auto t0 = clock_type::now();
      for (size_t i = 0; i < opts.baseline_count; ++i) {
        one[0] = make_check(opts, run + 1, i);
        if (!(*b)->check_batch(one))
          break;
      }
      auto s = std::chrono::duration<double>(clock_type::now() - t0).count();
      base_rate = s > 0 ? double(opts.baseline_count) / s : 0;
    }
  }
  double ratio = base_rate > 0 ? rate / base_rate : 0;
  if (opts.json) {
    std::cout << fmt::format(
      R"({{"scenario": "quota", "backend": "{}", "count": {}, "accepted": {}, )"
      R"("rejected": {}, "clients": {}, "client_batch": {}, "in_flight": {}, )"
      R"("exhausted_share": {}, "seconds": {:.3f}, "throughput_per_s": {:.0f}, )"
      R"("p50_ms": {:.3f}, "p99_ms": {:.3f}, "cache_hits": {}, "scripts": {}, )"
      R"("runs": {}, "batches": {}, "baseline_per_s": {:.0f}, )"
      R"("speedup": {:.1f}}})",
      qopts.backend.backend, done, accepted, done - accepted, clients,
      opts.client_batch, opts.in_flight,
      opts.limit > 0 ? 0 : opts.exhausted_share, secs, rate, p50, p99,
      figure("cache_hits"), figure("scripts"), figure("runs"),
      figure("batches"), base_rate, ratio)
              << std::endl;
  } else {
    std::cout << fmt::format(
      "quota on {}: {} checks ({} accepted) in {:.3f} s = {:.0f} decisions/s; "
      "{} clients x {} in flight in messages of {}; per message p50 {:.3f} "
      "ms, p99 {:.3f} ms; {} cache hits, {} scripts, {} runs, {} batches; "
      "baseline (one store call per check: one EVALSHA on redis) {:.0f}/s; "
      "speedup {:.1f}x\n",
      qopts.backend.backend, done, accepted, secs, rate, clients,
      opts.in_flight, opts.client_batch, p50, p99, figure("cache_hits"),
      figure("scripts"), figure("runs"), figure("batches"), base_rate, ratio);
  }
  std::cout.flush();
  std::_Exit(0);
}

} // namespace vigil
