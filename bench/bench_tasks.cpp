#include "bench/bench_tasks.hpp"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <thread>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/backends/broker.hpp"
#include "actors/metrics_service.hpp"
#include "actors/task_supervisor.hpp"
#include "config/metrics_options.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/task_body.hpp"
#include "node/actor_system.hpp"
#include "node/node.hpp"

namespace vigil {

namespace {

// Latencies (publish to run) in microseconds, one slot per task.
struct latency_log {
  std::vector<int64_t> samples;
  std::atomic<size_t> next{0};

  void record(int64_t us) {
    auto i = next.fetch_add(1, std::memory_order_relaxed);
    if (i < samples.size())
      samples[i] = us;
  }
};

double percentile_ms(std::vector<int64_t>& xs, double p) {
  if (xs.empty())
    return 0;
  auto i = static_cast<size_t>(p * static_cast<double>(xs.size() - 1));
  std::nth_element(xs.begin(), xs.begin() + static_cast<ptrdiff_t>(i), xs.end());
  return static_cast<double>(xs[i]) / 1000.0;
}

std::shared_ptr<const task_registry> bench_registry(latency_log& log) {
  auto reg = std::make_shared<task_registry>();
  register_builtin_tasks(*reg);
  task_schema noop;
  noop.name = "vigil.bench.noop";
  noop.params = {required("sent_us", param_type::integer)};
  reg->add(noop, [&log](const task_context& ctx) {
    log.record(now_unix_us() - ctx.args.get_int("sent_us"));
    return task_result::success(nullptr);
  });
  return reg;
}

/// The metrics actor of the run, as a node runs it (no directory: the
/// bench's actors are not listed); returns the backend's name.
std::string start_bench_metrics(caf::actor_system& sys, const config& cfg,
                                const std::string& backend) {
  auto mcfg = read_metrics_config(cfg);
  if (!mcfg) {
    std::cerr << "vigil bench tasks: " << error_text(mcfg.error()) << "\n";
    std::_Exit(2);
  }
  if (!backend.empty())
    mcfg->backend = backend == "off" ? "dummy" : backend;
  if (mcfg->backend == "dummy")
    return "off";
  auto b = make_metrics_backend(*mcfg);
  if (!b) {
    std::cerr << "vigil bench tasks: " << error_text(b.error()) << "\n";
    std::_Exit(2);
  }
  metrics_service_options mo;
  mo.config = *mcfg;
  mo.backend = std::move(*b);
  sys.spawn<caf::detached>(metrics_service, std::move(mo));
  return mcfg->backend;
}

} // namespace

int bench_tasks_command(const config& cfg, const bench_tasks_options& opts) {
  auto url = opts.broker_url.empty() ? cfg.get_string("broker.url")
                                     : opts.broker_url;
  auto producer = connect_broker(url, std::chrono::seconds{10});
  if (!producer) {
    std::cerr << "vigil bench tasks: " << error_text(producer.error()) << "\n";
    return 1;
  }
  auto probe = connect_broker(url, std::chrono::seconds{10});
  if (!probe) {
    std::cerr << "vigil bench tasks: " << error_text(probe.error()) << "\n";
    return 1;
  }
  // Deliveries other clients hold unacknowledged on this database are not
  // ours to wait for.
  auto unacked_before = (*probe)->unacked_count();
  size_t baseline = unacked_before ? *unacked_before : 0;
  // A fresh queue per run: leftovers of an earlier run cannot skew this one.
  auto queue = "vigil.bench." + new_uuid4().substr(0, 8);
  latency_log log;
  log.samples.assign(opts.count, 0);
  auto registry = bench_registry(log);
  auto copts = make_consumer_options(cfg, {queue});
  copts.broker_url = url;
  copts.result_backend_url.clear();
  copts.prefetch = opts.prefetch;
  copts.fetch_batch = std::min<size_t>(opts.prefetch, 1000);
  copts.poll_interval = 0.002;
  // As a node with its remote control runs them (running tasks tracked for
  // `inspect active`, held ones for `reserved`).
  copts.running = std::make_shared<running_tasks>();
  actor_system_config_ext sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto sup = sys.spawn(task_supervisor, copts, opts.consumers,
                       opts.concurrency, registry);
  auto metrics_backend_name = start_bench_metrics(sys, cfg, opts.metrics);

  auto start = std::chrono::steady_clock::now();
  std::atomic<bool> publish_failed{false};
  std::chrono::steady_clock::time_point published_at;
  std::thread producer_thread{[&] {
    std::vector<outgoing_task> batch;
    size_t sent = 0;
    while (sent < opts.count) {
      batch.clear();
      auto n = std::min(opts.publish_batch, opts.count - sent);
      auto now = now_unix_us();
      for (size_t i = 0; i < n; ++i) {
        outgoing_task out;
        out.queue = queue;
        auto& msg = out.msg;
        msg.task = "vigil.bench.noop";
        msg.id = new_uuid4();
        msg.ignore_result = true;
        msg.body = encode_task_body({}, value_map{{"sent_us", now}},
                                    content_type_msgpack);
        batch.push_back(std::move(out));
      }
      auto err = (*producer)->publish(batch);
      // A full memory:// broker (max-messages) is backpressure: wait for
      // the consumers, but not for a batch that can never fit.
      auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds{10};
      while (err == errc::too_large
             && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds{1});
        err = (*producer)->publish(batch);
      }
      if (err) {
        std::cerr << "vigil bench tasks: publish failed: " << error_text(err)
                  << "\n";
        publish_failed = true;
        return;
      }
      sent += n;
    }
    published_at = std::chrono::steady_clock::now();
  }};
  // Done when every task ran and nothing is left unacknowledged.
  auto deadline = start + std::chrono::seconds{600};
  while (log.next.load() < opts.count && !publish_failed
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  producer_thread.join();
  for (;;) {
    auto unacked = (*probe)->unacked_count();
    if (!unacked || *unacked <= baseline
        || std::chrono::steady_clock::now() > deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  auto end = std::chrono::steady_clock::now();
  auto done = std::min(log.next.load(), opts.count);
  {
    caf::scoped_actor self{sys};
    self->request(sup, std::chrono::seconds{10}, drain_atom_v)
      .receive([](bool) {}, [](caf::error&) {});
    self->send_exit(sup, caf::exit_reason::user_shutdown);
  }
  double secs = std::chrono::duration<double>(end - start).count();
  double pub_secs = std::chrono::duration<double>(published_at - start).count();
  log.samples.resize(done);
  auto p50 = percentile_ms(log.samples, 0.50);
  auto p99 = percentile_ms(log.samples, 0.99);
  auto max = percentile_ms(log.samples, 1.0);
  double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  double pub_rate = pub_secs > 0 ? static_cast<double>(opts.count) / pub_secs : 0;
  if (opts.json) {
    std::cout << fmt::format(
      R"({{"scenario": "tasks", "broker": "{}", "metrics": "{}", "count": {}, "completed": {}, )"
      R"("concurrency": {}, "seconds": {:.3f}, "throughput_per_s": {:.0f}, )"
      R"("publish_per_s": {:.0f}, "p50_ms": {:.3f}, "p99_ms": {:.3f}, "max_ms": {:.3f}}})",
      mask_url(url), metrics_backend_name, opts.count, done, opts.concurrency,
      secs, rate, pub_rate, p50, p99, max)
              << std::endl;
  } else {
    std::cout << fmt::format(
      "tasks on {} (metrics {}): {} of {} done in {:.3f} s = {:.0f} tasks/s (publish "
      "{:.0f}/s); latency p50 {:.3f} ms, p99 {:.3f} ms, max {:.3f} ms\n",
      mask_url(url), metrics_backend_name, done, opts.count, secs, rate,
      pub_rate, p50, p99, max);
  }
  std::cout.flush();
  // Worker threads are idle now; skip the actor system's slow teardown.
  std::_Exit(done == opts.count ? 0 : 1);
}

} // namespace vigil
