#include "bench/bench_digests.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "actors/backends/digests.hpp"
#include "adapters/redis.hpp"
#include "config/organizations.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "bench/redis_cpu.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double unix_now() {
  return static_cast<double>(now_unix_us()) / 1e6;
}

std::string timeline(size_t project) {
  return "mail:p:" + std::to_string(project + 1);
}

// Runs `work(client, backend)` on `clients` threads, each with its own
// backend; the first error wins.
template <class Work>
caf::error on_clients(const digest_backend_options& o, size_t clients,
                      Work work) {
  std::mutex mtx;
  caf::error first;
  std::vector<std::thread> threads;
  for (size_t c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      auto b = make_digest_backend(o);
      caf::error err = b ? work(c, **b) : b.error();
      if (err) {
        std::lock_guard<std::mutex> guard{mtx};
        if (!first)
          first = std::move(err);
      }
    });
  for (auto& t : threads)
    t.join();
  return first;
}

// The project of each record: Zipf-distributed (s = 1, a few projects
// send most alerts, as events do), or round-robin with `uniform`. Fixed
// seed: every run adds the same records.
std::vector<uint32_t> projects_of(size_t count, size_t projects,
                                  bool uniform) {
  std::vector<uint32_t> out(count);
  if (uniform) {
    for (size_t i = 0; i < count; ++i)
      out[i] = static_cast<uint32_t>(i % projects);
    return out;
  }
  std::vector<double> cumulative(projects);
  double sum = 0;
  for (size_t k = 0; k < projects; ++k)
    cumulative[k] = sum += 1.0 / static_cast<double>(k + 1);
  std::mt19937_64 rng{17};
  std::uniform_real_distribution<double> pick{0.0, sum};
  for (auto& p : out) {
    auto at = std::lower_bound(cumulative.begin(), cumulative.end(),
                               pick(rng));
    p = static_cast<uint32_t>(
      std::min<size_t>(static_cast<size_t>(at - cumulative.begin()),
                       projects - 1));
  }
  return out;
}

// Adds `count` records (ids from `first_id`) over the projects, split
// between the clients: in batches, or one add each.
caf::error add_records(const digest_backend_options& o,
                       const bench_digests_options& opts, size_t first_id,
                       size_t count, bool batched) {
  const std::string value(opts.value_size, 'v');
  auto per_client = count / opts.clients;
  auto project = projects_of(first_id + count, opts.projects, opts.uniform);
  return on_clients(o, opts.clients, [&](size_t c, digest_backend& b) {
    auto begin = first_id + c * per_client;
    std::vector<digest_add> batch;
    batch.reserve(opts.batch);
    for (size_t i = begin; i < begin + per_client; ++i) {
      auto now = unix_now();
      digest_add x{timeline(project[i]),
                   {"e" + std::to_string(i), value, now},
                   o.increment_delay, o.maximum_delay};
      if (!batched) {
        if (auto r = b.add(x, now); !r)
          return r.error();
        continue;
      }
      batch.push_back(std::move(x));
      if (batch.size() == opts.batch || i + 1 == begin + per_client) {
        if (auto r = b.add_many(batch, now); !r)
          return r.error();
        batch.clear();
      }
    }
    return caf::error{};
  });
}

// Opens and closes the digests of `keys`, split between the clients;
// counts the records delivered.
caf::error deliver_all(const digest_backend_options& o, size_t clients,
                       const std::vector<std::string>& keys,
                       std::atomic<size_t>& records) {
  return on_clients(o, clients, [&](size_t c, digest_backend& b) {
    for (size_t i = c; i < keys.size(); i += clients) {
      auto now = unix_now();
      auto lease = b.open_digest(keys[i], o.minimum_delay, now);
      // A project that got no record has no timeline.
      if (!lease && is_digest_not_ready(lease.error()))
        continue;
      if (!lease)
        return lease.error();
      if (auto err = b.close_digest(*lease, now))
        return err;
      records += lease->records.size();
    }
    return caf::error{};
  });
}

int fail(const std::string& what, const caf::error& err) {
  std::cerr << "vigil bench digests: " << what << ": " << error_text(err)
            << "\n";
  return 1;
}

} // namespace

int bench_digests_command(const config& cfg,
                          const bench_digests_options& opts) {
  if (opts.clients == 0 || opts.batch == 0 || opts.projects == 0)
    return fail("options", caf::make_error(errc::bad_config,
                                           "--clients, --batch and "
                                           "--projects must be positive"));
  // The configuration's digests.* keys, then the command line's choices.
  auto backend = opts.backend.empty() ? cfg.get_string("digests.backend")
                                      : opts.backend;
  auto from_cfg = make_digest_backend_options(cfg);
  digest_backend_options defaults;
  if (!from_cfg && backend == "redis" && opts.redis_url.empty())
    return fail("configuration", from_cfg.error());
  auto o = from_cfg ? &*from_cfg : &defaults;
  o->backend = backend;
  if (backend == "memory") {
    o->url = "memory://bench-digests";
  } else if (backend == "redis") {
    if (!opts.redis_url.empty()) {
      o->url = opts.redis_url;
    } else if (!from_cfg || from_cfg->url.rfind("redis://", 0) != 0) {
      auto url = redis_cluster_url(cfg, "digests.options");
      if (!url)
        return fail("configuration (or give --redis URL)", url.error());
      o->url = *url;
    }
  } else {
    return fail("configuration",
                caf::make_error(errc::bad_config,
                                "--backend: expected memory or redis (the "
                                "dummy backend keeps nothing to measure)"));
  }
  // Its own namespace: a shared server's digests stay untouched. The
  // busiest projects' digests hold tens of thousands of records (no
  // capacity): give their opens time.
  o->key_namespace = "bench";
  o->timeout = std::max(o->timeout, std::chrono::milliseconds{30000});
  auto probe = make_digest_backend(*o);
  if (!probe)
    return fail("opening the store", probe.error());
  std::vector<std::string> keys;
  for (size_t p = 0; p < opts.projects; ++p)
    keys.push_back(timeline(p));
  // What a previous run left.
  for (const auto& k : keys)
    if (auto err = (*probe)->delete_timeline(k, unix_now()))
      return fail("emptying the store", err);

  // Records: batched, then the one-call-per-record baseline.
  auto batched_count = opts.records / opts.clients * opts.clients;
  bool redis = o->backend == "redis";
  auto cpu0 = redis ? redis_cpu_seconds(o->url) : -1;
  auto t0 = clock_type::now();
  if (auto err = add_records(*o, opts, 0, batched_count, true))
    return fail("adding records", err);
  auto batched_secs = seconds_since(t0);
  auto cpu1 = redis ? redis_cpu_seconds(o->url) : -1;
  double redis_us_per_record =
    cpu0 >= 0 && cpu1 >= 0
      ? (cpu1 - cpu0) * 1e6 / static_cast<double>(batched_count)
      : -1.0;
  auto baseline_count = opts.baseline_records / opts.clients * opts.clients;
  double baseline_secs = 0;
  if (baseline_count > 0) {
    t0 = clock_type::now();
    if (auto err = add_records(*o, opts, batched_count, baseline_count, false))
      return fail("adding records one by one", err);
    baseline_secs = seconds_since(t0);
  }

  // Every timeline with records is ready (its first record made it so):
  // deliver them all, which leaves them waiting the minimum delay.
  std::atomic<size_t> first_records{0};
  t0 = clock_type::now();
  if (auto err = deliver_all(*o, opts.clients, keys, first_records))
    return fail("delivering", err);
  auto first_secs = seconds_since(t0);

  // One more record each, then a whole cycle: schedule (every waiting
  // timeline due; those that had no record are ready at once), open and
  // close.
  std::vector<std::string> due_keys;
  {
    std::vector<digest_add> xs;
    const std::string value(opts.value_size, 'v');
    auto now = unix_now();
    for (size_t p = 0; p < opts.projects; ++p)
      xs.push_back({keys[p], {"n" + std::to_string(p), value, now},
                    o->increment_delay, o->maximum_delay});
    auto r = (*probe)->add_many(xs, now);
    if (!r)
      return fail("adding records", r.error());
    for (size_t p = 0; p < opts.projects; ++p)
      if ((*r)[p])
        due_keys.push_back(keys[p]);
  }
  std::atomic<size_t> cycle_records{0};
  t0 = clock_type::now();
  auto far = unix_now() + 1e6;
  auto due = (*probe)->schedule(far, unix_now());
  if (!due)
    return fail("scheduling", due.error());
  auto schedule_secs = seconds_since(t0);
  for (auto& e : *due)
    due_keys.push_back(std::move(e.key));
  if (auto err = deliver_all(*o, opts.clients, due_keys, cycle_records))
    return fail("delivering", err);
  auto cycle_secs = seconds_since(t0);
  for (const auto& k : keys)
    if (auto err = (*probe)->delete_timeline(k, unix_now()))
      return fail("cleaning up", err);

  auto total = batched_count + baseline_count;
  // A capacity may drop records on purpose.
  bool exact = (o->capacity > 0 || first_records.load() == total)
               && cycle_records.load() == opts.projects
               && due_keys.size() == opts.projects;
  auto rate = static_cast<double>(batched_count) / batched_secs;
  auto baseline_rate = baseline_secs > 0
                         ? static_cast<double>(baseline_count) / baseline_secs
                         : 0.0;
  auto digests_rate = static_cast<double>(due_keys.size()) / cycle_secs;
  nlohmann::json out{
    {"backend", o->backend},
    {"clients", opts.clients},
    {"batch", opts.batch},
    {"value_bytes", opts.value_size},
    {"distribution", opts.uniform ? "uniform" : "zipf"},
    {"records", batched_count},
    {"records_per_s", rate},
    {"redis_cpu_us_per_record", redis_us_per_record},
    {"baseline_records", baseline_count},
    {"baseline_records_per_s", baseline_rate},
    {"batched_over_baseline", baseline_rate > 0 ? rate / baseline_rate : 0.0},
    {"projects", opts.projects},
    {"first_delivery_seconds", first_secs},
    {"first_delivery_records", first_records.load()},
    {"cycle_scheduled", due_keys.size()},
    {"cycle_schedule_seconds", schedule_secs},
    {"cycle_seconds", cycle_secs},
    {"digests_per_s", digests_rate},
    {"exact", exact},
  };
  if (opts.json) {
    std::cout << dump_json(out) << "\n";
  } else {
    std::cout << "digests (" << o->backend << "): " << batched_count
              << " records over " << opts.projects << " timelines added at "
              << static_cast<int64_t>(rate) << "/s (add_many of "
              << opts.batch << ", " << opts.clients << " clients)";
    if (redis_us_per_record >= 0)
      std::cout << ", " << redis_us_per_record << " us of Redis CPU each";
    std::cout << "\n";
    if (baseline_rate > 0)
      std::cout << "baseline: one script call per record, "
                << static_cast<int64_t>(baseline_rate) << " records/s; "
                << "batched is " << rate / baseline_rate << " times that\n";
    std::cout << "cycle: " << due_keys.size() << " digests scheduled in "
              << schedule_secs << " s, scheduled+opened+closed at "
              << static_cast<int64_t>(digests_rate) << "/s; records "
              << (exact ? "exact" : "WRONG") << "\n";
  }
  return exact ? 0 : 1;
}

} // namespace vigil
