// `vigil bench ingest`: the HTTP ingestion benchmark of docs/BENCHMARKS.md.
// A node and nginx run side by side as subprocesses; wrk drives both with
// the same script, alternating, and the medians are compared.

#include "bench/bench_ingest.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "actors/backends/event_store.hpp"
#include "messages/errors.hpp"
#include "messages/sentry_event.hpp"

extern char** environ;

namespace vigil {

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

constexpr const char* bench_key = "b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8";

// A Python SDK exception event as sentry-sdk 1.9 sends it to /store/
// (trimmed from tests/fixtures/sentry_sdk_exception.json, plus the contexts
// and request the SDK adds in a web app): ~2 KiB.
constexpr std::string_view builtin_event = R"j({"level":"error",)j"
  R"j("exception":{"values":[{"module":null,"type":"ZeroDivisionError",)j"
  R"j("value":"division by zero",)j"
  R"j("mechanism":{"type":"django","handled":false},)j"
  R"j("stacktrace":{"frames":[{"filename":"shop/views.py",)j"
  R"j("abs_path":"/srv/shop/shop/views.py","function":"checkout",)j"
  R"j("module":"shop.views","lineno":97,"pre_context":["    try:"],)j"
  R"j("context_line":"        total = handle_order(order)",)j"
  R"j("post_context":["    except OrderError:"],)j"
  R"j("vars":{"order":"<Order o-99>","user":"<User u-17>"},"in_app":true},)j"
  R"j({"filename":"shop/orders.py","abs_path":"/srv/shop/shop/orders.py",)j"
  R"j("function":"handle_order","module":"shop.orders","lineno":63,)j"
  R"j("context_line":)j"
  R"j("    return compute_discount(order.price, order.percent)",)j"
  R"j("vars":{"order":"<Order o-99>"},"in_app":true},)j"
  R"j({"filename":"shop/pricing.py","abs_path":"/srv/shop/shop/pricing.py",)j"
  R"j("function":"compute_discount","module":"shop.pricing","lineno":59,)j"
  R"j("context_line":"    return price / (100 - percent)",)j"
  R"j("vars":{"price":"10","percent":"100"},"in_app":true}]}}]},)j"
  R"j("event_id":"096dfdc717f74312839b87e620460be6",)j"
  R"j("timestamp":"2026-11-23T06:59:18.380460Z",)j"
  R"j("breadcrumbs":{"values":[{"category":"auth","message":"user logged in",)j"
  R"j("level":"info","timestamp":"2026-11-23T06:59:18.376511Z",)j"
  R"j("type":"default"},)j"
  R"j({"category":"cart","message":"checkout started","data":{"items":3},)j"
  R"j("timestamp":"2026-11-23T06:59:18.377770Z","type":"default"},)j"
  R"j({"category":"query","message":"SELECT * FROM orders WHERE id = %s",)j"
  R"j("timestamp":"2026-11-23T06:59:18.378012Z","type":"default"}]},)j"
  R"j("user":{"id":"u-17","email":"ada@example.com","ip_address":"10.0.0.7"},)j"
  R"j("request":{"url":"https://shop.example.com/checkout","method":"POST",)j"
  R"j("headers":{"User-Agent":"Mozilla/5.0","Accept":"text/html"}},)j"
  R"j("contexts":{"os":{"name":"Linux","version":"6.1.0"},)j"
  R"j("runtime":{"name":"CPython","version":"3.11.2"},)j"
  R"j("trace":{"trace_id":"4c79f60c11214eb38604f4ae0781bfb2",)j"
  R"j("span_id":"a0cfbde2e5bd4c6a","op":"http.server"}},)j"
  R"j("fingerprint":["{{ default }}","discounts"],)j"
  R"j("tags":{"shop":"north","order":"o-99","url":"/checkout"},)j"
  R"j("release":"shop@1.2.3","environment":"production",)j"
  R"j("server_name":"web-3",)j"
  R"j("sdk":{"name":"sentry.python","version":"1.9.10","packages":[{"name":)j"
  R"j("pypi:sentry-sdk","version":"1.9.10"}],"integrations":["django"]},)j"
  R"j("platform":"python"})j";

/// The node and nginx, stopped by `fail` too.
pid_t started_node = 0;
pid_t started_nginx = 0;

[[noreturn]] void fail(const std::string& text) {
  for (auto pid : {started_nginx, started_node})
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  std::cerr << "vigil bench ingest: " << text << "\n";
  std::cerr.flush();
  std::_Exit(1);
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    fail("cannot find a free port");
  ::close(fd);
  return ntohs(addr.sin_port);
}

void write_file(const fs::path& path, std::string_view text) {
  std::ofstream out{path, std::ios::binary};
  out << text;
  if (!out)
    fail("cannot write " + path.string());
}

std::string read_file(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Starts `argv` with stdout and stderr to `log`; returns its pid.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  auto rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    fail("cannot start " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

/// Sends a plain GET and returns the raw answer ("" if none).
std::string http_get(uint16_t port, std::string_view path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    auto req = fmt::format("GET {} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL)
        == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0)
        out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

bool process_alive(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == 0;
}

void wait_ready(pid_t pid, uint16_t port, std::string_view path,
                const fs::path& log, const char* what) {
  auto deadline = clock_type::now() + std::chrono::seconds{30};
  while (clock_type::now() < deadline) {
    if (!process_alive(pid))
      fail(std::string{what} + " exited at start:\n" + read_file(log));
    if (http_get(port, path).starts_with("HTTP/1.1 200"))
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  fail(std::string{what} + " did not answer within 30 s:\n" + read_file(log));
}

void stop_process(pid_t pid, int sig) {
  ::kill(pid, sig);
  auto deadline = clock_type::now() + std::chrono::seconds{20};
  int status = 0;
  while (clock_type::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
}

/// CPU seconds (user + system) of a process and, for nginx, its workers.
double cpu_seconds(pid_t pid, bool with_children) {
  auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  auto one = [&](const fs::path& stat_path, pid_t* parent) {
    auto text = read_file(stat_path);
    auto close = text.rfind(')');
    if (close == std::string::npos)
      return 0.0;
    std::istringstream in{text.substr(close + 2)};
    std::string field;
    std::vector<std::string> f;
    while (in >> field)
      f.push_back(field);
    // After "(comm)": state ppid ... utime(12th) stime(13th), 0-based 11/12.
    if (f.size() < 13)
      return 0.0;
    if (parent)
      *parent = static_cast<pid_t>(std::stol(f[1]));
    return (std::stod(f[11]) + std::stod(f[12])) / ticks;
  };
  double total = one(fmt::format("/proc/{}/stat", pid), nullptr);
  if (!with_children)
    return total;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator{"/proc", ec}) {
    auto name = entry.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0])))
      continue;
    pid_t parent = 0;
    double t = one(entry.path() / "stat", &parent);
    if (parent == pid)
      total += t;
  }
  return total;
}

/// Busy and total jiffies of the whole machine (/proc/stat "cpu" line).
std::pair<double, double> machine_jiffies() {
  std::ifstream in{"/proc/stat"};
  std::string cpu;
  in >> cpu;
  double busy = 0;
  double total = 0;
  for (int i = 0; i < 8; ++i) {
    double x = 0;
    in >> x;
    total += x;
    if (i != 3 && i != 4) // idle, iowait
      busy += x;
  }
  return {busy, total};
}

/// One wrk run's figures.
struct run_figures {
  double seconds = 0;
  uint64_t requests = 0;
  uint64_t non_2xx = 0;
  uint64_t socket_errors = 0;
  double ok_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double server_cpu_s = 0;
  double wrk_cpu_s = 0;
  /// Cores busy with other work than the server and wrk.
  double other_cores = 0;
};

struct server_proc {
  pid_t pid = 0;
  bool with_children = false;
};

run_figures run_wrk(const bench_ingest_options& opts, const std::string& script,
                    const fs::path& event_file, const std::string& url,
                    double seconds, int run_id, const server_proc& server,
                    const fs::path& out_file) {
  std::vector<std::string> argv{
    "wrk", "-t1", fmt::format("-c{}", opts.connections),
    fmt::format("-d{}s", std::max(1, static_cast<int>(seconds + 0.5))),
    "--timeout", "5s", "-s", script, url, "--", event_file.string(),
    bench_key, std::to_string(run_id)};
  fs::remove(out_file);
  auto cpu0 = cpu_seconds(server.pid, server.with_children);
  auto [busy0, total0] = machine_jiffies();
  auto pid = spawn(argv, out_file);
  int status = 0;
  rusage ru{};
  if (::wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status)
      || WEXITSTATUS(status) != 0)
    fail("wrk failed:\n" + read_file(out_file));
  auto [busy1, total1] = machine_jiffies();
  auto cpu1 = cpu_seconds(server.pid, server.with_children);
  auto text = read_file(out_file);
  auto at = text.find("WRKJSON ");
  if (at == std::string::npos)
    fail("wrk printed no figures (is " + script + " the ingest script?):\n"
         + text);
  auto line = text.substr(at + 8, text.find('\n', at) - at - 8);
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded())
    fail("cannot parse wrk's figures: " + line);
  run_figures r;
  r.seconds = j["duration_us"].get<double>() / 1e6;
  r.requests = j["requests"].get<uint64_t>();
  r.non_2xx = j["errors_status"].get<uint64_t>();
  r.socket_errors = j["errors_connect"].get<uint64_t>()
                    + j["errors_read"].get<uint64_t>()
                    + j["errors_write"].get<uint64_t>()
                    + j["errors_timeout"].get<uint64_t>();
  r.ok_per_s = r.seconds > 0 ? double(r.requests - r.non_2xx) / r.seconds : 0;
  r.p50_ms = j["p50_us"].get<double>() / 1000;
  r.p99_ms = j["p99_us"].get<double>() / 1000;
  r.server_cpu_s = cpu1 - cpu0;
  auto secs = [](const timeval& tv) {
    return double(tv.tv_sec) + double(tv.tv_usec) / 1e6;
  };
  r.wrk_cpu_s = secs(ru.ru_utime) + secs(ru.ru_stime);
  auto ncpu = static_cast<double>(std::thread::hardware_concurrency());
  auto busy_cores = total1 > total0
                      ? (busy1 - busy0) / (total1 - total0) * ncpu
                      : 0;
  r.other_cores = std::max(0.0, busy_cores - (r.server_cpu_s + r.wrk_cpu_s)
                                               / std::max(r.seconds, 1e-3));
  return r;
}

double median(std::vector<double> xs) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  auto n = xs.size();
  return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

std::string find_script(const std::string& given) {
  if (!given.empty())
    return given;
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) {
    candidates.push_back(exe.parent_path().parent_path() / "bench"
                         / "ingest_post.lua");
    candidates.push_back(exe.parent_path() / "bench" / "ingest_post.lua");
  }
  candidates.push_back(fs::current_path() / "bench" / "ingest_post.lua");
  for (auto& c : candidates)
    if (fs::exists(c, ec))
      return c.string();
  fail("cannot find bench/ingest_post.lua; pass --script PATH");
}

std::string node_config(uint16_t port, const fs::path& dir, size_t threads) {
  return fmt::format(R"(web.bind: "127.0.0.1:{}"
web.threads: {}
node.data-dir: "{}"
log.level: warning
broker.url: "memory://"
quotas.backend: memory
organizations:
  - {{id: 1, slug: bench}}
projects:
  - id: 1
    organization: 1
    slug: ingest
    keys:
      - id: 1
        public: "{}"
        rate-limit: {{count: 1000000000, window: 3600}}
)",
                     port, threads, (dir / "data").string(), bench_key);
}

std::string nginx_config(uint16_t port, const fs::path& dir, size_t workers) {
  auto d = dir.string();
  // `return` answers from the rewrite phase; before sending, nginx reads
  // the whole request body off the socket and drops it (it must, to keep
  // the connection), so every byte wrk sends is read, as the node reads
  // it. keepalive_requests: nginx closes after 1000 by default, the node
  // never.
  return fmt::format(R"(daemon off;
master_process on;
worker_processes {1};
pid {0}/nginx.pid;
error_log {0}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {0}/nginx-body;
  proxy_temp_path {0}/nginx-proxy;
  fastcgi_temp_path {0}/nginx-fastcgi;
  uwsgi_temp_path {0}/nginx-uwsgi;
  scgi_temp_path {0}/nginx-scgi;
  client_body_buffer_size 64k;
  client_max_body_size 1m;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  server {{
    listen 127.0.0.1:{2};
    location / {{
      default_type application/json;
      return 200 '{{"id":"096dfdc717f74312839b87e620460be6"}}';
    }}
  }}
}}
)",
                     d, workers, port);
}

struct stored_counts {
  int64_t nodes = 0;
  int64_t groups = 0;
  int64_t times_seen = 0;
};

stored_counts count_stored(const fs::path& dir) {
  auto url = "sqlite://" + (dir / "data" / "vigil.db").string();
  auto store = event_store::open(url);
  if (!store)
    fail("cannot open the node's database: " + error_text(store.error()));
  stored_counts out;
  auto& db = (*store)->db();
  if (auto rows = db.query("SELECT count(*) FROM nodestore_node");
      rows && !rows->empty())
    out.nodes = rows->get_int64(0, 0);
  if (auto rows = db.query("SELECT count(*), coalesce(sum(times_seen), 0)"
                           " FROM groups");
      rows && !rows->empty()) {
    out.groups = rows->get_int64(0, 0);
    out.times_seen = rows->get_int64(0, 1);
  }
  return out;
}

/// The peak resident memory of a process (VmHWM), MiB; -1 if unknown.
double peak_rss_mib(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  return -1;
}

/// The node's ingest queue length from /_health/, or -1.
int64_t node_queued(uint16_t port) {
  auto raw = http_get(port, "/_health/");
  auto body = raw.find("\r\n\r\n");
  if (body == std::string::npos)
    return -1;
  auto j = nlohmann::json::parse(raw.substr(body + 4), nullptr, false);
  if (j.is_discarded() || !j.contains("queued"))
    return -1;
  return j["queued"].get<int64_t>();
}

} // namespace

int bench_ingest_command(const config&, const bench_ingest_options& opts) {
  auto script = find_script(opts.script);
  std::string event{builtin_event};
  if (!opts.event_path.empty()) {
    event = read_file(opts.event_path);
    if (event.empty())
      fail("cannot read " + opts.event_path);
  }
  if (auto ev = normalize_event(event, 1, 0); !ev)
    fail("the event is not valid: " + error_text(ev.error()));
  char tmpl[] = "/tmp/vigil-bench-ingest-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    fail("cannot create a temporary directory");
  fs::path dir{tmpl};
  auto event_file = dir / "event.json";
  write_file(event_file, event);
  ::signal(SIGPIPE, SIG_IGN);

  // The node: `vigil run node` from this very binary, as a single node runs
  // in production: its task workers consume the post_process tasks from the
  // in-process broker (with `run web` they would pile up in memory).
  auto node_port = free_port();
  write_file(dir / "node.yml", node_config(node_port, dir, opts.threads));
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec).string();
  auto node_log = dir / "node.log";
  auto node_pid = spawn({exe, "--config", (dir / "node.yml").string(), "run",
                         "node"},
                        node_log);
  started_node = node_pid;
  wait_ready(node_pid, node_port, "/_health/", node_log, "the node");

  // nginx with the same number of workers as the node has HTTP threads.
  auto nginx_port = free_port();
  write_file(dir / "nginx.conf", nginx_config(nginx_port, dir, opts.threads));
  auto nginx_log = dir / "nginx.log";
  // Debian installs it in /usr/sbin, which a user's PATH may lack.
  std::string nginx_bin = fs::exists("/usr/sbin/nginx", ec) ? "/usr/sbin/nginx"
                                                            : "nginx";
  auto nginx_pid = spawn({nginx_bin, "-p", dir.string(), "-e",
                          (dir / "nginx-error.log").string(), "-c",
                          (dir / "nginx.conf").string()},
                         nginx_log);
  started_nginx = nginx_pid;
  wait_ready(nginx_pid, nginx_port, "/", nginx_log, "nginx");

  auto node_url = fmt::format("http://127.0.0.1:{}/api/1/store/", node_port);
  auto nginx_url = fmt::format("http://127.0.0.1:{}/api/1/store/",
                               nginx_port);
  server_proc node{node_pid, false};
  server_proc web{nginx_pid, true};
  auto wrk_out = dir / "wrk.out";
  int run_id = 1;
  uint64_t node_answered = 0;
  uint64_t node_runs = 0;
  auto count_node = [&](const run_figures& r) {
    node_answered += r.requests - r.non_2xx;
    ++node_runs;
  };
  // Warm-up: page in, grow buffers, create the group.
  double warm = std::min(3.0, opts.duration);
  run_wrk(opts, script, event_file, nginx_url, warm, run_id++, web, wrk_out);
  count_node(run_wrk(opts, script, event_file, node_url, warm, run_id++, node,
                     wrk_out));
  std::vector<run_figures> nginx_runs;
  std::vector<run_figures> node_runs_fig;
  for (size_t i = 0; i < std::max<size_t>(1, opts.rounds); ++i) {
    nginx_runs.push_back(run_wrk(opts, script, event_file, nginx_url,
                                 opts.duration, run_id++, web, wrk_out));
    auto r = run_wrk(opts, script, event_file, node_url, opts.duration,
                     run_id++, node, wrk_out);
    count_node(r);
    node_runs_fig.push_back(r);
    if (!opts.json)
      std::cerr << fmt::format("round {}: nginx {:.0f}/s, node {:.0f}/s "
                               "(p50 {:.2f} ms, p99 {:.2f} ms, {} non-2xx)\n",
                               i + 1, nginx_runs.back().ok_per_s, r.ok_per_s,
                               r.p50_ms, r.p99_ms, r.non_2xx);
  }
  // Everything answered is committed; requests still in flight when wrk
  // stopped may still be queued: let them land before counting.
  auto deadline = clock_type::now() + std::chrono::seconds{10};
  while (node_queued(node_port) != 0 && clock_type::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  auto stored = count_stored(dir);
  auto node_peak_rss_mib = peak_rss_mib(node_pid);
  stop_process(nginx_pid, SIGTERM);
  stop_process(node_pid, SIGTERM);

  auto pick = [](const std::vector<run_figures>& rs, auto field) {
    std::vector<double> xs;
    for (auto& r : rs)
      xs.push_back(field(r));
    return median(xs);
  };
  auto rate = pick(node_runs_fig, [](auto& r) { return r.ok_per_s; });
  auto p50 = pick(node_runs_fig, [](auto& r) { return r.p50_ms; });
  auto p99 = pick(node_runs_fig, [](auto& r) { return r.p99_ms; });
  auto node_cpu_us = pick(node_runs_fig, [](auto& r) {
    auto n = double(r.requests);
    return n > 0 ? r.server_cpu_s * 1e6 / n : 0;
  });
  auto nginx_rate = pick(nginx_runs, [](auto& r) { return r.ok_per_s; });
  auto nginx_p50 = pick(nginx_runs, [](auto& r) { return r.p50_ms; });
  auto nginx_p99 = pick(nginx_runs, [](auto& r) { return r.p99_ms; });
  auto nginx_cpu_us = pick(nginx_runs, [](auto& r) {
    auto n = double(r.requests);
    return n > 0 ? r.server_cpu_s * 1e6 / n : 0;
  });
  auto wrk_cpu_us = pick(node_runs_fig, [](auto& r) {
    auto n = double(r.requests);
    return n > 0 ? r.wrk_cpu_s * 1e6 / n : 0;
  });
  std::vector<run_figures> all = nginx_runs;
  all.insert(all.end(), node_runs_fig.begin(), node_runs_fig.end());
  auto other = pick(all, [](auto& r) { return r.other_cores; });
  uint64_t non_2xx = 0;
  uint64_t socket_errors = 0;
  for (auto& r : node_runs_fig) {
    non_2xx += r.non_2xx;
    socket_errors += r.socket_errors;
  }
  double ratio = nginx_rate > 0 ? rate / nginx_rate : 0;
  // Each wrk run may stop with up to `connections` requests sent but not
  // yet answered; the node stores those too.
  auto in_flight = static_cast<int64_t>(opts.connections * node_runs);
  auto answered = static_cast<int64_t>(node_answered);
  bool stored_ok = stored.nodes >= answered
                   && stored.nodes - answered <= in_flight
                   && stored.times_seen == stored.nodes;
  double load1 = 0;
  {
    std::ifstream in{"/proc/loadavg"};
    in >> load1;
  }
  if (opts.json) {
    nlohmann::json out{
      {"scenario", "ingest"},
      {"endpoint", "/api/1/store/"},
      {"event_bytes", event.size()},
      {"connections", opts.connections},
      {"duration_s", opts.duration},
      {"rounds", std::max<size_t>(1, opts.rounds)},
      {"threads", opts.threads},
      {"throughput_per_s", std::round(rate)},
      {"p50_ms", p50},
      {"p99_ms", p99},
      {"node_cpu_us_per_event", node_cpu_us},
      {"nginx_throughput_per_s", std::round(nginx_rate)},
      {"nginx_p50_ms", nginx_p50},
      {"nginx_p99_ms", nginx_p99},
      {"nginx_cpu_us_per_request", nginx_cpu_us},
      {"wrk_cpu_us_per_request", wrk_cpu_us},
      {"ratio", ratio},
      {"cpu_ratio", node_cpu_us > 0 ? nginx_cpu_us / node_cpu_us : 0},
      {"non_2xx", non_2xx},
      {"socket_errors", socket_errors},
      {"answered_2xx", node_answered},
      {"stored_nodes", stored.nodes},
      {"groups", stored.groups},
      {"times_seen", stored.times_seen},
      {"stored_ok", stored_ok},
      {"node_peak_rss_mib", node_peak_rss_mib},
      {"other_load_cores", other},
      {"loadavg_1m", load1},
      {"cores", std::thread::hardware_concurrency()},
      {"node_rounds", nlohmann::json::array()},
      {"nginx_rounds", nlohmann::json::array()}};
    for (auto* rs : {&node_runs_fig, &nginx_runs})
      for (auto& r : *rs)
        out[rs == &nginx_runs ? "nginx_rounds" : "node_rounds"].push_back(
          {{"per_s", std::round(r.ok_per_s)},
           {"p50_ms", r.p50_ms},
           {"p99_ms", r.p99_ms},
           {"server_cpu_s", r.server_cpu_s},
           {"wrk_cpu_s", r.wrk_cpu_s},
           {"other_load_cores", r.other_cores}});
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << fmt::format(
      "ingest (store endpoint, {} B event, {} connections, {} x {} s, "
      "medians):\n"
      "  node : {:.0f} events/s, p50 {:.2f} ms, p99 {:.2f} ms, "
      "{:.1f} us CPU/event\n"
      "  nginx: {:.0f} requests/s, p50 {:.2f} ms, p99 {:.2f} ms, "
      "{:.1f} us CPU/request\n"
      "  ratio {:.2f} (CPU per request: nginx/node {:.2f}); "
      "wrk {:.1f} us CPU/request; other load {:.2f} cores\n"
      "  stored: {} nodes, {} group(s), times_seen {}, answered 200: {} "
      "({}); non-2xx {}, socket errors {}; node peak RSS {:.0f} MiB\n",
      event.size(), opts.connections, std::max<size_t>(1, opts.rounds),
      opts.duration, rate, p50, p99, node_cpu_us, nginx_rate, nginx_p50,
      nginx_p99, nginx_cpu_us, ratio,
      node_cpu_us > 0 ? nginx_cpu_us / node_cpu_us : 0, wrk_cpu_us, other,
      stored.nodes, stored.groups, stored.times_seen, node_answered,
      stored_ok ? "every answered event stored" : "MISMATCH", non_2xx,
      socket_errors, node_peak_rss_mib);
  }
  std::cout.flush();
  if (!opts.keep)
    fs::remove_all(dir, ec);
  else
    std::cerr << "kept " << dir.string() << "\n";
  return stored_ok ? 0 : 1;
}

} // namespace vigil
