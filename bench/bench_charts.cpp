// vigil bench charts: the native renderer against the Chartcuterie way
// (Node, echarts' SSR SVG, resvg), on the same bodies and the same cores.

#include "bench/bench_charts.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <variant>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "actors/chart_renderer.hpp"
#include "adapters/chart_canvas.hpp"
#include "bench/bench_charts_data.hpp"
#include "messages/chart_series.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"

extern char** environ;

namespace vigil {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

int fail(const std::string& what) {
  std::cerr << "vigil bench charts: " << what << "\n";
  return 1;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty())
    return 0;
  auto i = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  return sorted[std::min(sorted.size() - 1, i)];
}

/// The figures of one style or of the whole run, in the peer's JSON shape.
json figures(std::vector<double> lat_ms, double seconds, double cpu) {
  std::sort(lat_ms.begin(), lat_ms.end());
  auto n = static_cast<double>(lat_ms.size());
  return json{{"renders", lat_ms.size()},
              {"seconds", seconds},
              {"renders_per_s", seconds > 0 ? n / seconds : 0},
              {"p50_ms", percentile(lat_ms, 0.5)},
              {"p99_ms", percentile(lat_ms, 0.99)},
              {"cpu_ms_per_render", n > 0 ? cpu * 1000 / n : 0}};
}

/// The per-style and overall figures of a run, added a style at a time.
struct run_figures {
  json per_style = json::array();
  std::vector<double> all;
  double total_seconds = 0;
  double total_cpu = 0;

  /// Adds one style's phase: each thread's latencies, its wall and CPU time.
  void add(const std::string& style, std::vector<std::vector<double>>& lat,
           double wall, double cpu) {
    std::vector<double> merged;
    for (auto& v : lat)
      merged.insert(merged.end(), v.begin(), v.end());
    all.insert(all.end(), merged.begin(), merged.end());
    total_seconds += wall;
    total_cpu += cpu;
    auto f = figures(std::move(merged), wall, cpu);
    f["style"] = style;
    per_style.push_back(std::move(f));
  }

  /// The run's JSON: `renderer`, `threads`, `overall`, `styles`.
  json done(const std::string& renderer, size_t threads) {
    return json{{"renderer", renderer},
                {"threads", threads},
                {"overall", figures(std::move(all), total_seconds, total_cpu)},
                {"styles", std::move(per_style)}};
  }
};

/// The short name of a style: "slack:discover.top5Period" -> "top5Period".
std::string short_name(const std::string& style) {
  auto at = style.find_last_of(":.");
  return at == std::string::npos ? style : style.substr(at + 1);
}

/// Renders every style's bodies on `threads` threads, a style at a time.
json run_native(const chart_config& cfg,
                const std::vector<chart_bench_style>& styles, size_t threads,
                double seconds_per_style, size_t count, size_t& failures) {
  run_figures run;
  std::atomic<size_t> failed{0};
  for (auto& s : styles) {
    std::vector<std::vector<double>> lat(threads);
    auto cpu0 = cpu_seconds();
    auto t0 = clock_type::now();
    auto end = t0 + std::chrono::duration_cast<clock_type::duration>(
                      std::chrono::duration<double>(seconds_per_style));
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        auto& mine = lat[t];
        mine.reserve(4096);
        for (size_t i = t;; ++i) {
          auto a = clock_type::now();
          if (count ? mine.size() >= count : a >= end)
            break;
          auto r = render_chart_body(&cfg, s.bodies[i % s.bodies.size()]);
          auto b = clock_type::now();
          if (r.status != 200)
            failed.fetch_add(1, std::memory_order_relaxed);
          mine.push_back(std::chrono::duration<double, std::milli>(b - a)
                           .count());
        }
      });
    for (auto& th : pool)
      th.join();
    double wall = std::chrono::duration<double>(clock_type::now() - t0).count();
    run.add(s.style, lat, wall, cpu_seconds() - cpu0);
  }
  failures = failed.load();
  return run.done("vigil (cairo + pango, render_chart_body)", threads);
}

/// The first existing path of `candidates`, or "".
std::string first_existing(const std::vector<fs::path>& candidates) {
  std::error_code ec;
  for (auto& c : candidates)
    if (fs::exists(c, ec))
      return fs::canonical(c, ec).string();
  return {};
}

/// Where the repository's files are: beside the binary (build/vigil ->
/// ..), then the working directory.
std::vector<fs::path> roots() {
  std::vector<fs::path> out;
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back(exe.parent_path().parent_path());
    out.push_back(exe.parent_path());
  }
  out.push_back(fs::current_path());
  return out;
}

std::string find_in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream ss{path ? path : ""};
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty())
      continue;
    auto p = fs::path{dir} / program;
    if (::access(p.c_str(), X_OK) == 0)
      return p.string();
  }
  return {};
}

std::string read_file(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool write_file(const fs::path& path, std::string_view text) {
  std::ofstream out{path, std::ios::binary};
  out << text;
  return static_cast<bool>(out);
}

/// Runs `argv` with stdout to `out` and stderr to `err`; its exit status
/// (-1 if it could not start).
int run_program(const std::vector<std::string>& argv, const fs::path& out,
                const fs::path& err) {
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  auto rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// ---- through the HTTP server (--http) ---------------------------------------

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// One `POST /render` on a keep-alive connection; the status (0: the
/// connection failed).
int post_render(int fd, const std::string& body, std::string& buf) {
  auto req = "POST /render HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Content-Type: application/json\r\nContent-Length: "
             + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL)
      != static_cast<ssize_t>(req.size()))
    return 0;
  buf.clear();
  size_t head_end = std::string::npos;
  char chunk[65536];
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0)
      return 0;
    buf.append(chunk, static_cast<size_t>(n));
  }
  int status = std::atoi(buf.c_str() + 9);
  size_t length = 0;
  for (auto key : {"Content-Length: ", "content-length: "})
    if (auto at = buf.find(key); at != std::string::npos && at < head_end)
      length = std::strtoul(buf.c_str() + at + std::strlen(key), nullptr, 10);
  while (buf.size() < head_end + 4 + length) {
    auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0)
      return 0;
    buf.append(chunk, static_cast<size_t>(n));
  }
  return status;
}

/// CPU seconds of process `pid` (/proc/pid/stat), -1 if unknown.
double process_cpu(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  auto at = text.rfind(')');
  if (at == std::string::npos)
    return -1;
  std::stringstream ss{text.substr(at + 2)};
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && ss >> field; ++i)
    if (i == 14 || i == 15)
      ticks += std::atof(field.c_str());
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// `vigil run chartcuterie` on a free port with `threads` renderers, and
/// the same phases as run_native from `threads` keep-alive clients.
std::variant<json, std::string>
run_http(const std::vector<chart_bench_style>& styles, size_t threads,
         double seconds_per_style, size_t count, const fs::path& dir,
         size_t& failures) {
  auto port = free_port();
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "VIGIL_CHART_RENDERING_", 22) != 0)
      env.emplace_back(*e);
  env.push_back("VIGIL_CHART_RENDERING_BIND=127.0.0.1:" + std::to_string(port));
  env.push_back("VIGIL_CHART_RENDERING_THREADS=" + std::to_string(threads));
  std::vector<char*> envp;
  for (auto& e : env)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string exe = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> argv{exe, "run", "chartcuterie"};
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  auto log = dir / "chartcuterie.log";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  auto rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, args.data(),
                        envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return std::string{"cannot start vigil run chartcuterie"};
  auto stop = [&] {
    ::kill(pid, SIGTERM);
    int st = 0;
    ::waitpid(pid, &st, 0);
  };
  // Ready when a render answers 200 (the built-in styles load at once).
  std::string buf;
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    int fd = connect_to(port);
    if (fd >= 0) {
      ready = post_render(fd, styles.front().bodies.front(), buf) == 200;
      ::close(fd);
    }
    if (!ready)
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  if (!ready) {
    stop();
    auto text = read_file(log);
    return "vigil run chartcuterie did not answer: " + text.substr(0, 1000);
  }
  run_figures run;
  std::atomic<size_t> failed{0};
  for (auto& s : styles) {
    std::vector<std::vector<double>> lat(threads);
    auto cpu0 = process_cpu(pid);
    auto t0 = clock_type::now();
    auto end = t0 + std::chrono::duration_cast<clock_type::duration>(
                      std::chrono::duration<double>(seconds_per_style));
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        int fd = connect_to(port);
        std::string b;
        auto& mine = lat[t];
        for (size_t i = t; fd >= 0; ++i) {
          auto a = clock_type::now();
          if (count ? mine.size() >= count : a >= end)
            break;
          auto st = post_render(fd, s.bodies[i % s.bodies.size()], b);
          auto z = clock_type::now();
          if (st != 200)
            failed.fetch_add(1, std::memory_order_relaxed);
          if (st == 0) {
            ::close(fd);
            fd = connect_to(port);
          }
          mine.push_back(std::chrono::duration<double, std::milli>(z - a)
                           .count());
        }
        if (fd >= 0)
          ::close(fd);
      });
    for (auto& th : pool)
      th.join();
    double wall = std::chrono::duration<double>(clock_type::now() - t0).count();
    run.add(s.style, lat, wall, process_cpu(pid) - cpu0);
  }
  stop();
  failures += failed.load();
  return run.done("vigil run chartcuterie (POST /render, keep-alive; "
                  "CPU: the server's)",
                  threads);
}

/// The body to show of a style: the one with the most series.
size_t showcase(const chart_config& cfg, const chart_bench_style& s) {
  size_t best = 0, most = 0;
  for (size_t i = 0; i < s.bodies.size(); ++i) {
    json data;
    auto req = parse_render_request(s.bodies[i], data);
    if (!req)
      continue;
    auto series = transform_chart_data(cfg.styles.at(s.style), data);
    if (series && series->size() > most) {
      most = series->size();
      best = i;
    }
  }
  return best;
}

/// The peer's run, or a text saying why there is none.
std::variant<json, std::string>
run_node(const bench_charts_options& opts, const chart_config& cfg,
         const std::vector<chart_bench_style>& styles, size_t procs,
         double seconds_per_style, const fs::path& dir) {
  auto node = find_in_path("node");
  if (node.empty())
    return std::string{"node is not on PATH"};
  std::vector<fs::path> scripts, modules;
  for (auto& r : roots()) {
    scripts.push_back(r / "bench" / "charts_node.mjs");
    modules.push_back(r / "tests" / "js" / "node_modules");
  }
  auto script = opts.node_script.empty() ? first_existing(scripts)
                                         : opts.node_script;
  if (script.empty())
    return std::string{"cannot find bench/charts_node.mjs (--node-script)"};
  auto mods = opts.node_modules.empty() ? first_existing(modules)
                                        : opts.node_modules;
  std::error_code ec;
  if (mods.empty() || !fs::exists(fs::path{mods} / "echarts", ec)
      || !fs::exists(fs::path{mods} / "@resvg" / "resvg-js", ec))
    return std::string{"echarts and @resvg/resvg-js are not installed in "
                       "tests/js/node_modules (run scripts/js-deps.sh, or "
                       "pass --node-modules DIR)"};
  json file{{"styles", json::array()}};
  for (auto& s : styles)
    file["styles"].push_back(
      json{{"style", s.style},
           {"spec", json::parse(chart_style_json(cfg.styles.at(s.style)))},
           {"showcase", showcase(cfg, s)},
           {"bodies", s.bodies}});
  auto bodies = dir / "bodies.json";
  if (!write_file(bodies, dump_json(file)))
    return "cannot write " + bodies.string();
  std::vector<std::string> argv{node,
                                script,
                                "--bodies",
                                bodies.string(),
                                "--procs",
                                std::to_string(procs),
                                "--seconds",
                                std::to_string(seconds_per_style),
                                "--count",
                                std::to_string(opts.count),
                                "--modules",
                                mods};
  if (!opts.save_dir.empty()) {
    argv.push_back("--save");
    argv.push_back(opts.save_dir);
  }
  auto out = dir / "node.json", err = dir / "node.err";
  auto rc = run_program(argv, out, err);
  if (rc != 0) {
    auto text = read_file(err);
    if (text.size() > 2000)
      text = text.substr(text.size() - 2000);
    return "the Node peer failed (exit " + std::to_string(rc) + "): " + text;
  }
  auto j = json::parse(read_file(out), nullptr, false);
  if (j.is_discarded() || !j.contains("overall"))
    return std::string{"the Node peer printed no figures"};
  return j;
}

void print_table(const json& run, const char* who) {
  std::printf("%s: %s\n", who, run["renderer"].get<std::string>().c_str());
  std::printf("  %-34s %10s %9s %9s %9s\n", "style", "renders/s", "p50 ms",
              "p99 ms", "CPU ms");
  auto row = [](const std::string& name, const json& f) {
    std::printf("  %-34s %10.1f %9.2f %9.2f %9.2f\n", name.c_str(),
                f["renders_per_s"].get<double>(), f["p50_ms"].get<double>(),
                f["p99_ms"].get<double>(),
                f["cpu_ms_per_render"].get<double>());
  };
  for (auto& s : run["styles"])
    row(s["style"].get<std::string>(), s);
  row("overall", run["overall"]);
}

} // namespace

int bench_charts_command(const config&, const bench_charts_options& opts) {
  auto cfg = parse_chart_config(builtin_chart_config_json());
  if (!cfg)
    return fail("the built-in chart configuration: " + error_text(cfg.error()));
  if (opts.variants == 0)
    return fail("--variants must be at least 1");
  auto threads = opts.threads ? opts.threads
                              : std::max(1u, std::thread::hardware_concurrency());
  auto styles = chart_bench_bodies(*cfg, opts.variants, opts.seed);
  double per_style = opts.seconds / static_cast<double>(styles.size());
  // Every body once: a check that all render, and the warm-up (fonts,
  // pango's caches) before the measured phases.
  for (auto& s : styles)
    for (auto& b : s.bodies) {
      auto r = render_chart_body(&*cfg, b);
      if (r.status != 200)
        return fail(s.style + ": status " + std::to_string(r.status) + ": "
                    + r.body);
    }
  std::error_code ec;
  if (!opts.save_dir.empty()) {
    fs::create_directories(opts.save_dir, ec);
    for (auto& s : styles) {
      auto r = render_chart_body(&*cfg, s.bodies[showcase(*cfg, s)]);
      auto path = fs::path{opts.save_dir} / ("charts-" + short_name(s.style)
                                             + ".png");
      if (!write_file(path, r.body))
        return fail("cannot write " + path.string());
    }
  }
  size_t failures = 0;
  json steps = json::array();
  if (opts.steps) {
    struct step {
      const char* name;
      chart_canvas_tuning tuning;
    };
    const step all_steps[] = {
      {"baseline: cairo's PNG writer, a new canvas per chart",
       {false, false, false}},
      {"+ vigil's PNG writer (RGB, row filters, ISA-L)", {true, false, false}},
      {"+ the canvas reused per thread", {true, true, false}},
      {"+ shaped text cached per thread", {true, true, true}},
    };
    auto saved = chart_canvas_tuning_in_use();
    for (auto& st : all_steps) {
      set_chart_canvas_tuning(st.tuning);
      size_t f = 0;
      auto run = run_native(*cfg, styles, threads, per_style, opts.count, f);
      failures += f;
      // One chart's PNG size: what the mail carries.
      auto sample = render_chart_body(&*cfg, styles.front().bodies.front());
      steps.push_back(json{{"step", st.name},
                           {"overall", run["overall"]},
                           {"png_bytes", sample.body.size()}});
    }
    set_chart_canvas_tuning(saved);
  }
  chart_canvas_tuning main_tuning;
  if (opts.tuning != "all") {
    main_tuning = {false, false, false};
    std::stringstream ss{opts.tuning == "none" ? "" : opts.tuning};
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (item == "own-png")
        main_tuning.own_png = true;
      else if (item == "reuse-canvas")
        main_tuning.reuse_canvas = true;
      else if (item == "cache-text")
        main_tuning.cache_text = true;
      else
        return fail("--tuning: unknown " + item
                    + " (all, none, own-png, reuse-canvas, cache-text)");
    }
  }
  auto saved_tuning = chart_canvas_tuning_in_use();
  set_chart_canvas_tuning(main_tuning);
  auto native = run_native(*cfg, styles, threads, per_style, opts.count,
                           failures);
  set_chart_canvas_tuning(saved_tuning);
  native["tuning"] = opts.tuning;
  auto dir = fs::temp_directory_path()
             / ("vigil-bench-charts-" + std::to_string(::getpid()));
  fs::create_directories(dir, ec);
  std::variant<json, std::string> http = std::string{"not run (--http)"};
  if (opts.http)
    http = run_http(styles, threads, per_style, opts.count, dir, failures);
  std::variant<json, std::string> peer = std::string{"not run (--no-node)"};
  if (opts.node)
    peer = run_node(opts, *cfg, styles, threads, per_style, dir);
  fs::remove_all(dir, ec);
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  json out{{"bench", "charts"},
           {"threads", threads},
           {"cores", std::thread::hardware_concurrency()},
           {"variants", opts.variants},
           {"seconds_per_style", per_style},
           {"count", opts.count},
           {"load_average", {load[0], load[1], load[2]}},
           {"failures", failures},
           {"vigil", native},
           {"steps", steps},
           {"target", {{"ratio", 10}, {"p99_ms", 20}}}};
  if (auto* h = std::get_if<json>(&http))
    out["http"] = *h;
  else if (opts.http)
    out["http_error"] = std::get<std::string>(http);
  const bool have_node = std::holds_alternative<json>(peer);
  if (have_node) {
    auto& n = std::get<json>(peer);
    double vr = native["overall"]["renders_per_s"].get<double>();
    double nr = n["overall"]["renders_per_s"].get<double>();
    double vc = native["overall"]["cpu_ms_per_render"].get<double>();
    double nc = n["overall"]["cpu_ms_per_render"].get<double>();
    out["node"] = n;
    out["ratio"] = nr > 0 ? vr / nr : 0;
    out["cpu_ratio"] = vc > 0 ? nc / vc : 0;
    out["met"] = out["ratio"].get<double>() >= 10
                 && native["overall"]["p99_ms"].get<double>() < 20;
  } else {
    out["node"] = nullptr;
    out["node_missing"] = std::get<std::string>(peer);
  }
  if (opts.json) {
    std::cout << dump_json(out) << "\n";
  } else {
    std::printf("vigil bench charts: %zu threads, %zu bodies per style, "
                "%.2f s per style, load %.2f\n",
                threads, opts.variants, per_style, load[0]);
    for (auto& st : steps) {
      auto& f = st["overall"];
      std::printf("step: %-52s %9.1f/s p50 %6.2f p99 %6.2f ms, CPU %5.2f ms, "
                  "%zu B PNG\n",
                  st["step"].get<std::string>().c_str(),
                  f["renders_per_s"].get<double>(), f["p50_ms"].get<double>(),
                  f["p99_ms"].get<double>(),
                  f["cpu_ms_per_render"].get<double>(),
                  st["png_bytes"].get<size_t>());
    }
    print_table(native, "vigil");
    if (auto* h = std::get_if<json>(&http))
      print_table(*h, "vigil over HTTP");
    else if (opts.http)
      std::printf("http: %s\n", std::get<std::string>(http).c_str());
    if (have_node) {
      print_table(out["node"], "node");
      std::printf("ratio vigil/node renders/s: %.1fx (CPU per render: "
                  "%.1fx less); target 10x, p99 < 20 ms: %s\n",
                  out["ratio"].get<double>(), out["cpu_ratio"].get<double>(),
                  out["met"].get<bool>() ? "met" : "missed");
    } else {
      std::printf("node: no peer run: %s; vigil's figures only\n",
                  std::get<std::string>(peer).c_str());
    }
  }
  return failures == 0 ? 0 : 1;
}

} // namespace vigil
