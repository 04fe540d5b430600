#include "cli/buffer_commands.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/backends/buffer_sql.hpp"
#include "actors/buffer.hpp"
#include "actors/buffer_flush.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "node/actor_system.hpp"

namespace vigil {

namespace {

using clock_type = std::chrono::steady_clock;

// The memory store lives inside a node's process: another process cannot
// reach it, and the node applies it to SQL itself.
bool shared_store(const std::string& backend, const char* command) {
  if (backend == "redis")
    return true;
  std::cerr << "vigil buffer " << command << ": buffer.backend is '"
            << backend
            << "', which lives inside one node process (the node applies it "
               "to SQL every buffer.flush-interval and before it exits); "
               "set buffer.backend: redis (or VIGIL_BUFFER_BACKEND=redis) "
               "and buffer.options.cluster to reach a shared store\n";
  return false;
}

int failed(const char* command, const std::string& what,
           const caf::error& err) {
  std::cerr << "vigil buffer " << command << ": " << what << ": "
            << error_text(err) << "\n";
  return 1;
}

// "name=value" split at the first '='; false without one (or a name).
bool split_pair(const std::string& text, std::string& name,
                std::string& value) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    return false;
  name = text.substr(0, eq);
  value = text.substr(eq + 1);
  return true;
}

bool parse_int(const std::string& text, int64_t& out) {
  if (text.empty())
    return false;
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  out = x;
  return true;
}

buffer_value typed(const std::string& text) {
  int64_t x = 0;
  return parse_int(text, x) ? buffer_value::of(x) : buffer_value::of_text(text);
}

bool listed(const std::vector<std::string_view>& names, std::string_view x) {
  for (auto n : names)
    if (n == x)
      return true;
  return false;
}

std::string names(const std::vector<std::string_view>& xs) {
  std::string out;
  for (auto x : xs)
    out += (out.empty() ? "" : ", ") + std::string{x};
  return out.empty() ? "(none)" : out;
}

// The increment the options describe, or a message saying what is wrong.
caf::expected<buffer_incr> make_incr(const buffer_incr_command_options& o) {
  auto bad = [](std::string text) {
    return caf::make_error(errc::malformed, std::move(text));
  };
  const auto* m = find_buffer_model(o.model);
  if (m == nullptr)
    return bad("unknown model '" + o.model + "' (known: sentry.group)");
  buffer_incr x;
  x.model = o.model;
  std::string name, value;
  for (const auto& f : o.filters) {
    if (!split_pair(f, name, value))
      return bad("--filter wants column=value, got '" + f + "'");
    if (!listed(m->filter_columns, name))
      return bad("--filter " + name + ": " + o.model
                 + " rows are found by " + names(m->filter_columns));
    x.filters[name] = typed(value);
  }
  for (auto c : m->filter_columns)
    if (!x.filters.count(std::string{c}))
      return bad("--filter " + std::string{c} + "=... is required (which "
                 + o.model + " row)");
  auto columns = o.columns;
  if (columns.empty())
    columns.push_back("times_seen");
  for (const auto& c : columns) {
    int64_t amount = 1;
    if (c.find('=') != std::string::npos) {
      if (!split_pair(c, name, value) || !parse_int(value, amount))
        return bad("--column wants column or column=amount (an integer), "
                   "got '" + c + "'");
    } else {
      name = c;
    }
    if (!listed(m->counter_columns, name))
      return bad("--column " + name + ": the counters of " + o.model
                 + " are " + names(m->counter_columns));
    x.columns[name] += amount;
  }
  for (const auto& e : o.extra) {
    if (!split_pair(e, name, value))
      return bad("--extra wants column=value, got '" + e + "'");
    if (!listed(m->latest_columns, name))
      return bad("--extra " + name + ": the extra columns of " + o.model
                 + " are " + names(m->latest_columns));
    x.extra[name] = value == "now" ? buffer_value::of_datetime(now_unix_us())
                                   : typed(value);
  }
  return x;
}

} // namespace

int buffer_flush_command(const config& cfg,
                         const buffer_flush_command_options& opts) {
  auto fopts = make_buffer_flush_options(cfg);
  if (!fopts) {
    std::cerr << "vigil buffer flush: " << error_text(fopts.error()) << "\n";
    return 2;
  }
  if (!shared_store(fopts->store.backend, "flush"))
    return 2;
  auto flusher = buffer_flusher::open(*fopts);
  if (!flusher)
    return failed("flush", "opening the store and " + mask_url(fopts->db_url),
                  flusher.error());
  auto t0 = clock_type::now();
  auto wait = std::chrono::milliseconds{
    static_cast<int64_t>(opts.lock_wait * 1000)};
  auto r = (*flusher)->flush_pending(opts.batch_size, wait);
  if (!r)
    return failed("flush", "flushing", r.error());
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  if (opts.json) {
    nlohmann::json out{
      {"rows", r->rows},
      {"increments", r->increments},
      {"applied", r->applied.applied},
      {"already_applied", r->applied.already_applied},
      {"dropped", r->applied.dropped},
      {"skipped", r->skipped},
      {"transactions", r->tasks},
      {"sql_statements", r->applied.statements},
      {"seconds", secs},
    };
    std::cout << dump_json(out) << "\n";
  } else {
    std::cout << "applied " << r->rows << " row(s), " << r->increments
              << " increment(s), in " << r->applied.statements
              << " SQL statement(s), " << secs << " s";
    if (r->applied.already_applied > 0)
      std::cout << "; " << r->applied.already_applied
                << " take(s) already applied (counted once)";
    if (r->applied.dropped > 0)
      std::cout << "; " << r->applied.dropped
                << " row(s) dropped (their SQL row is gone)";
    if (r->skipped > 0)
      std::cout << "; " << r->skipped
                << " row(s) skipped (another flush holds them)";
    std::cout << "\n";
  }
  return 0;
}

int buffer_stats_command(const config& cfg, bool json) {
  auto fopts = make_buffer_flush_options(cfg);
  if (!fopts) {
    std::cerr << "vigil buffer stats: " << error_text(fopts.error()) << "\n";
    return 2;
  }
  if (!shared_store(fopts->store.backend, "stats"))
    return 2;
  auto store = make_buffer_backend(fopts->store);
  if (!store)
    return failed("stats", "opening the store", store.error());
  int partitions = std::max(1, fopts->store.partitions);
  nlohmann::json parts = nlohmann::json::array();
  size_t total = 0;
  for (int p = 0; p < partitions; ++p) {
    auto n = (*store)->pending_count(p);
    if (!n)
      return failed("stats", "counting pending rows", n.error());
    total += *n;
    parts.push_back({{"partition", p},
                     {"key", buffer_partition_key(p, partitions)},
                     {"pending", *n}});
  }
  // Every take not finished yet (a flush in progress, or one that died).
  auto takes = (*store)->unfinished(now_unix_us() / 1000000 + 1);
  if (!takes)
    return failed("stats", "listing takes", takes.error());
  if (json) {
    nlohmann::json out{{"store", (*store)->describe()},
                       {"pending", total},
                       {"partitions", parts},
                       {"takes_in_flight", takes->size()}};
    std::cout << dump_json(out) << "\n";
    return 0;
  }
  std::cout << (*store)->describe() << "\n";
  for (const auto& p : parts)
    std::cout << "  partition " << p["partition"].get<int>() << " ("
              << p["key"].get<std::string>() << "): "
              << p["pending"].get<size_t>() << " pending row(s)\n";
  std::cout << total << " pending row(s), " << takes->size()
            << " take(s) in flight\n";
  return 0;
}

int buffer_incr_command(const config& cfg,
                        const buffer_incr_command_options& opts) {
  auto x = make_incr(opts);
  if (!x) {
    std::cerr << "vigil buffer incr: " << error_text(x.error()) << "\n";
    return 2;
  }
  auto bopts = make_buffer_service_options(cfg);
  if (!bopts) {
    std::cerr << "vigil buffer incr: " << error_text(bopts.error()) << "\n";
    return 2;
  }
  if (!shared_store(bopts->store.backend, "incr"))
    return 2;
  actor_system_config_ext sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto buffer = sys.spawn<caf::detached>(buffer_service, *bopts);
  std::atomic<size_t> refused{0};
  auto clients = std::max<size_t>(1, opts.clients);
  auto batch = std::max<size_t>(1, opts.batch);
  auto t0 = clock_type::now();
  std::vector<std::thread> threads;
  for (size_t c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      caf::scoped_actor self{sys};
      // This client's share: the remainder goes to the first ones.
      size_t mine = opts.count / clients + (c < opts.count % clients ? 1 : 0);
      for (size_t sent = 0; sent < mine;) {
        auto n = std::min(batch, mine - sent);
        std::vector<buffer_incr> xs(n, *x);
        self->request(buffer, std::chrono::seconds{30}, incr_atom_v,
                      std::move(xs))
          .receive([&](bool ok) { refused += ok ? 0 : n; },
                   [&](caf::error&) { refused += n; });
        sent += n;
      }
    });
  for (auto& t : threads)
    t.join();
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::string writes = "?";
  {
    caf::scoped_actor self{sys};
    self->request(buffer, std::chrono::seconds{5}, status_atom_v)
      .receive([&](const actor_status& s) {
                 if (auto it = s.extra.find("writes"); it != s.extra.end())
                   writes = it->second;
               },
               [&](caf::error&) {});
    self->send_exit(buffer, caf::exit_reason::user_shutdown);
  }
  auto accepted = opts.count - refused.load();
  if (opts.json) {
    nlohmann::json out{{"increments", opts.count},
                       {"accepted", accepted},
                       {"refused", refused.load()},
                       {"store_writes", writes},
                       {"seconds", secs},
                       {"increments_per_s",
                        secs > 0 ? static_cast<double>(opts.count) / secs : 0.0}};
    std::cout << dump_json(out) << "\n";
  } else {
    std::cout << "accepted " << accepted << " of " << opts.count
              << " increment(s) in " << secs << " s, " << writes
              << " store write(s)\n";
  }
  if (refused.load() > 0) {
    std::cerr << "vigil buffer incr: " << refused.load()
              << " increment(s) not confirmed by the store (see the log)\n";
    return 1;
  }
  return 0;
}

} // namespace vigil
