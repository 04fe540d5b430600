#include "bench/bench_buffer.hpp"

#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/buffer.hpp"
#include "actors/buffer_flush.hpp"
#include "adapters/redis.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "bench/redis_cpu.hpp"
#include "node/actor_system.hpp"

namespace vigil {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

const std::string times_seen = "times_seen";
const std::string last_seen = "last_seen";

buffer_incr seen(int64_t group, int64_t now_us) {
  buffer_incr x;
  x.model = "sentry.group";
  x.columns = {{"times_seen", 1}};
  x.filters = {{"id", buffer_value::of(group)}};
  x.extra = {{"last_seen", buffer_value::of_datetime(now_us)}};
  return x;
}

// CPU seconds this process has used (every thread).
double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// Commands Redis has run so far (the sum of INFO commandstats' calls).
caf::expected<int64_t> redis_commands(const std::string& url) {
  auto ep = parse_redis_url(url);
  if (!ep)
    return ep.error();
  auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
  if (!conn)
    return conn.error();
  auto info = conn->command({"INFO", "commandstats"});
  if (!info)
    return info.error();
  std::string_view text = info->as_string();
  int64_t total = 0;
  for (size_t at = text.find("calls="); at != std::string_view::npos;
       at = text.find("calls=", at + 6))
    total += std::atoll(std::string{text.substr(at + 6, 20)}.c_str());
  // This INFO call itself.
  return total - 1;
}

int fail(const std::string& what, const caf::error& err) {
  std::cerr << "vigil bench buffer: " << what << ": " << error_text(err)
            << "\n";
  return 1;
}

} // namespace

int bench_buffer_command(const config& cfg, const bench_buffer_options& opts) {
  auto fopts = make_buffer_flush_options(cfg);
  if (!fopts)
    return fail("configuration", fopts.error());
  if (!opts.backend.empty())
    fopts->store.backend = opts.backend;
  if (!opts.url.empty())
    fopts->store.url = opts.url;
  if (fopts->store.backend == "memory")
    fopts->store.url = "memory://bench-buffer";
  auto dir = std::filesystem::temp_directory_path()
             / ("vigil-bench-buffer-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  fopts->db_url = "sqlite://" + (dir / "bench.db").string();
  auto flusher = buffer_flusher::open(*fopts);
  if (!flusher)
    return fail("opening the store and database", flusher.error());
  auto& db = (*flusher)->db();
  std::vector<int64_t> groups;
  for (size_t i = 0; i < opts.rows; ++i) {
    auto r = db.query("INSERT INTO groups (project_id, hash, title, culprit,"
                      " first_seen, last_seen, times_seen, status) VALUES"
                      " (1, ?, 'bench', '', 0, 0, 0, 'unresolved')"
                      " RETURNING id",
                      {"bench-" + std::to_string(i)});
    if (!r)
      return fail("creating groups", r.error());
    groups.push_back(r->get_int64(0, 0));
  }
  // What a previous run left in a shared store would count here too.
  if (auto left = (*flusher)->flush_all(); !left)
    return fail("emptying the store", left.error());
  bool redis = fopts->store.backend == "redis";
  int64_t commands_before = 0;
  if (redis) {
    auto n = redis_commands(fopts->store.url);
    if (!n)
      return fail("reading INFO commandstats", n.error());
    commands_before = *n;
  }

  actor_system_config_ext sys_cfg;
  caf::actor_system sys{sys_cfg};
  buffer_service_options bopts;
  bopts.store = fopts->store;
  auto buffer = sys.spawn<caf::detached>(buffer_service, bopts);
  std::atomic<size_t> refused{0};
  auto per_client = opts.count / std::max<size_t>(1, opts.clients);
  auto now_us = now_unix_us();
  double redis_cpu_before = redis ? redis_cpu_seconds(fopts->store.url) : -1;
  auto cpu_before = process_cpu_seconds();
  auto t0 = clock_type::now();
  std::vector<std::thread> clients;
  for (size_t c = 0; c < opts.clients; ++c)
    clients.emplace_back([&, c] {
      caf::scoped_actor self{sys};
      size_t sent = 0;
      size_t row = c;
      while (sent < per_client) {
        auto n = std::min(opts.client_batch, per_client - sent);
        auto answered = [&](bool ok) { refused += ok ? 0 : n; };
        auto failed = [&](caf::error&) { refused += n; };
        if (opts.summed) {
          // As an ingest batch would: each group's row found once per
          // request, every event counted into it, its latest time
          // formatted once.
          buffer_batch batch;
          std::vector<size_t> index(groups.size(), SIZE_MAX);
          std::vector<int64_t> latest(groups.size(), 0);
          for (size_t i = 0; i < n; ++i) {
            auto g = row++ % groups.size();
            if (index[g] == SIZE_MAX)
              index[g] = batch.row(
                "sentry.group", {{"id", buffer_value::of(groups[g])}});
            batch.count(index[g], times_seen);
            latest[g] = std::max(latest[g], now_us);
          }
          for (size_t g = 0; g < groups.size(); ++g)
            if (index[g] != SIZE_MAX)
              batch.set(index[g], last_seen,
                        buffer_value::of_datetime(latest[g]));
          self->request(buffer, std::chrono::seconds{30}, incr_atom_v,
                        std::move(batch))
            .receive(answered, failed);
        } else {
          std::vector<buffer_incr> batch;
          batch.reserve(n);
          for (size_t i = 0; i < n; ++i)
            batch.push_back(seen(groups[row++ % groups.size()], now_us));
          self->request(buffer, std::chrono::seconds{30}, incr_atom_v,
                        std::move(batch))
            .receive(answered, failed);
        }
        sent += n;
      }
    });
  for (auto& t : clients)
    t.join();
  auto accept_secs = seconds_since(t0);
  auto accept_cpu = process_cpu_seconds() - cpu_before;
  double redis_cpu = redis && redis_cpu_before >= 0
                       ? redis_cpu_seconds(fopts->store.url) - redis_cpu_before
                       : -1;
  auto sent = per_client * opts.clients;
  {
    caf::scoped_actor self{sys};
    self->send_exit(buffer, caf::exit_reason::user_shutdown);
  }
  int64_t commands = 0;
  if (redis) {
    auto n = redis_commands(fopts->store.url);
    if (!n)
      return fail("reading INFO commandstats", n.error());
    commands = *n - commands_before;
  }
  t0 = clock_type::now();
  auto flushed = (*flusher)->flush_all();
  if (!flushed)
    return fail("flushing", flushed.error());
  auto flush_secs = seconds_since(t0);
  auto total = db.query("SELECT sum(times_seen) FROM groups");
  if (!total)
    return fail("reading the sums", total.error());
  auto counted = total->get_int64(0, 0);

  // Baseline: one UPDATE per event, each its own commit (as an event
  // written straight to its group would be).
  double baseline_rate = 0;
  if (opts.baseline_count > 0) {
    t0 = clock_type::now();
    for (size_t i = 0; i < opts.baseline_count; ++i) {
      if (auto err = db.begin())
        return fail("baseline", err);
      auto r = db.exec("UPDATE groups SET times_seen = times_seen + 1,"
                       " last_seen = max(last_seen, ?) WHERE id = ?",
                       {static_cast<double>(now_us) / 1e6,
                        groups[i % groups.size()]});
      if (!r)
        return fail("baseline", r.error());
      if (auto err = db.commit())
        return fail("baseline", err);
    }
    baseline_rate = static_cast<double>(opts.baseline_count)
                    / seconds_since(t0);
  }
  std::filesystem::remove_all(dir);

  auto rate = static_cast<double>(sent) / accept_secs;
  // SQL writes: the buffer's statements against one UPDATE per event.
  auto statements = static_cast<double>(flushed->applied.statements);
  auto fewer = statements > 0 ? static_cast<double>(sent) / statements : 0;
  nlohmann::json out{
    {"backend", fopts->store.backend},
    {"message", opts.summed ? "summed" : "per-increment"},
    {"increments", sent},
    {"refused", refused.load()},
    {"exact", counted == static_cast<int64_t>(sent - refused.load())},
    {"increments_per_s", rate},
    {"accept_seconds", accept_secs},
    // CPU per increment: what a busy machine's wall clock hides (this
    // process, every thread; and the Redis server's, -1 when unknown).
    {"cpu_us_per_increment", accept_cpu * 1e6 / static_cast<double>(sent)},
    {"redis_cpu_us_per_increment",
     redis_cpu >= 0 ? redis_cpu * 1e6 / static_cast<double>(sent) : -1.0},
    {"redis_commands", commands},
    {"redis_commands_per_increment",
     redis ? static_cast<double>(commands) / static_cast<double>(sent) : 0.0},
    {"rows_flushed", flushed->rows},
    {"sql_statements", flushed->applied.statements},
    {"flush_seconds", flush_secs},
    {"baseline_updates_per_s", baseline_rate},
    {"sql_writes_fewer_by", fewer},
  };
  if (opts.json) {
    std::cout << dump_json(out) << "\n";
  } else {
    std::cout << "buffer (" << fopts->store.backend << "): " << sent
              << " increments of " << opts.rows << " rows accepted at "
              << static_cast<int64_t>(rate) << "/s, "
              << out["cpu_us_per_increment"].get<double>()
              << " us CPU per increment";
    if (redis)
      std::cout << ", " << out["redis_commands_per_increment"].get<double>()
                << " Redis commands per increment";
    std::cout << "\nflush: " << flushed->rows << " rows, "
              << flushed->applied.statements << " SQL statements in "
              << flush_secs << " s; sums "
              << (out["exact"].get<bool>() ? "exact" : "WRONG") << "\n";
    if (baseline_rate > 0)
      std::cout << "baseline: one UPDATE per event, "
                << static_cast<int64_t>(baseline_rate) << " events/s; the "
                << "buffer made " << static_cast<int64_t>(fewer)
                << " times fewer SQL writes\n";
  }
  return out["exact"].get<bool>() ? 0 : 1;
}

} // namespace vigil
