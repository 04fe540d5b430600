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
#include "adapters/redis.hpp"
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

/// The nodes and nginx, stopped by `fail` too.
std::vector<pid_t> started_pids;

[[noreturn]] void fail(const std::string& text) {
  for (auto pid : started_pids)
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

/// The configuration keys of a node whose counters run as `services` says
/// (see bench_ingest_options::services).
std::string services_config(std::string_view services,
                            const std::string& redis_url) {
  if (services == "off")
    return "buffer.ingest-counters: transaction\ntsdb.backend: dummy\n";
  if (services == "memory")
    return "buffer.backend: memory\nbuffer.ingest-counters: buffer\n"
           "tsdb.backend: memory\n";
  if (services == "redis")
    return fmt::format("redis.clusters: {{default: {{hosts: [\"{}\"]}}}}\n"
                       "buffer.backend: redis\nbuffer.ingest-counters: buffer\n"
                       "tsdb.backend: redis\n",
                       redis_url);
  return {};
}

/// The metrics.* keys of a node whose metrics go to `backend` ("off": none).
std::string metrics_config_text(std::string_view backend, uint16_t udp_port) {
  if (backend.empty() || backend == "off")
    return {};
  return fmt::format("metrics.backend: {}\nmetrics.options: {{port: {}}}\n",
                     backend, udp_port == 0 ? 8125 : udp_port);
}

std::string node_config(uint16_t port, const fs::path& dir, size_t threads,
                        std::string_view services,
                        const std::string& redis_url,
                        std::string_view metrics = {},
                        uint16_t metrics_port = 0) {
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
                     port, threads, (dir / "data").string(), bench_key)
         + services_config(services, redis_url)
         + metrics_config_text(metrics, metrics_port);
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

/// One node under measurement: its counters' services, where it runs, and
/// what its rounds gave.
struct measured_node {
  std::string services;
  /// Its metrics backend ("off": none).
  std::string metrics = "off";
  fs::path dir;
  uint16_t port = 0;
  pid_t pid = 0;
  std::vector<run_figures> rounds;
  uint64_t answered = 0;
  size_t runs = 0;
  stored_counts stored;
  bool stored_ok = false;
  double peak_rss_mib = -1;

  std::string url() const {
    return fmt::format("http://127.0.0.1:{}/api/1/store/", port);
  }
  void count(const run_figures& r) {
    answered += r.requests - r.non_2xx;
    ++runs;
  }
};

/// Starts `vigil run node` from this very binary, as a single node runs in
/// production: its task workers consume the post_process and buffer tasks
/// from the in-process broker.
void start_node(measured_node& n, const std::string& exe,
                const bench_ingest_options& opts) {
  fs::create_directories(n.dir);
  n.port = free_port();
  write_file(n.dir / "node.yml",
             node_config(n.port, n.dir, opts.threads, n.services,
                         opts.redis_url, n.metrics, opts.metrics_port));
  auto log = n.dir / "node.log";
  n.pid = spawn({exe, "--config", (n.dir / "node.yml").string(), "run", "node"},
                log);
  started_pids.push_back(n.pid);
  wait_ready(n.pid, n.port, "/_health/", log, "the node");
}

/// Stops a node (SIGTERM: a memory buffer is applied to SQL on the way out,
/// a Redis buffer's local sums reach Redis), applies what a Redis buffer
/// still holds with `vigil buffer flush`, and counts what was stored.
void stop_and_count(measured_node& n, const std::string& exe,
                    const bench_ingest_options& opts) {
  n.peak_rss_mib = peak_rss_mib(n.pid);
  stop_process(n.pid, SIGTERM);
  if (n.services == "redis") {
    auto log = n.dir / "flush.log";
    auto pid = spawn({exe, "--config", (n.dir / "node.yml").string(), "buffer",
                      "flush"},
                     log);
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0)
      fail("vigil buffer flush failed:\n" + read_file(log));
  }
  n.stored = count_stored(n.dir);
  // Each wrk run may stop with up to `connections` requests sent but not
  // yet answered; the node stores those too.
  auto in_flight = static_cast<int64_t>(opts.connections * n.runs);
  auto answered = static_cast<int64_t>(n.answered);
  n.stored_ok = n.stored.nodes >= answered
                && n.stored.nodes - answered <= in_flight
                && n.stored.times_seen == n.stored.nodes;
}

/// Fails unless the Redis database of --redis-url is empty: what an
/// earlier run left in the buffer would be applied to this run's database.
void require_empty_redis(const std::string& url) {
  auto ep = parse_redis_url(url);
  if (!ep)
    fail("--redis-url: " + error_text(ep.error()));
  auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
  if (!conn)
    fail("cannot reach the Redis of --redis-url: " + error_text(conn.error()));
  auto n = conn->command({"DBSIZE"});
  if (!n)
    fail("DBSIZE on the Redis of --redis-url: " + error_text(n.error()));
  if (n->as_int() != 0)
    fail(fmt::format("the Redis database of --redis-url holds {} keys; give "
                     "an empty one (redis://host:port/N)",
                     n->as_int()));
}

double median_of(const std::vector<run_figures>& rs,
                 double (*field)(const run_figures&)) {
  std::vector<double> xs;
  for (auto& r : rs)
    xs.push_back(field(r));
  return median(xs);
}

double ok_rate(const run_figures& r) { return r.ok_per_s; }
double p50_of(const run_figures& r) { return r.p50_ms; }
double p99_of(const run_figures& r) { return r.p99_ms; }
double server_cpu_us(const run_figures& r) {
  return r.requests > 0 ? r.server_cpu_s * 1e6 / double(r.requests) : 0;
}
double wrk_cpu_us(const run_figures& r) {
  return r.requests > 0 ? r.wrk_cpu_s * 1e6 / double(r.requests) : 0;
}

/// A node's figures as the JSON output gives them.
nlohmann::json node_json(const measured_node& n) {
  uint64_t non_2xx = 0;
  uint64_t socket_errors = 0;
  auto rounds = nlohmann::json::array();
  for (auto& r : n.rounds) {
    non_2xx += r.non_2xx;
    socket_errors += r.socket_errors;
    rounds.push_back({{"per_s", std::round(r.ok_per_s)},
                      {"p50_ms", r.p50_ms},
                      {"p99_ms", r.p99_ms},
                      {"server_cpu_s", r.server_cpu_s},
                      {"wrk_cpu_s", r.wrk_cpu_s},
                      {"other_load_cores", r.other_cores}});
  }
  return {{"services", n.services},
          {"metrics", n.metrics},
          {"throughput_per_s", std::round(median_of(n.rounds, ok_rate))},
          {"p50_ms", median_of(n.rounds, p50_of)},
          {"p99_ms", median_of(n.rounds, p99_of)},
          {"cpu_us_per_event", median_of(n.rounds, server_cpu_us)},
          {"non_2xx", non_2xx},
          {"socket_errors", socket_errors},
          {"answered_2xx", n.answered},
          {"stored_nodes", n.stored.nodes},
          {"groups", n.stored.groups},
          {"times_seen", n.stored.times_seen},
          {"stored_ok", n.stored_ok},
          {"peak_rss_mib", n.peak_rss_mib},
          {"rounds", rounds}};
}

/// A node's median rate as a share of the metrics-off node's (0: none).
double metrics_ratio(const std::vector<measured_node>& nodes,
                     const measured_node& n) {
  for (auto& m : nodes)
    if (m.metrics == "off") {
      auto off = median_of(m.rounds, ok_rate);
      return off > 0 ? median_of(n.rounds, ok_rate) / off : 0;
    }
  return 0;
}

std::string node_line(const measured_node& n) {
  uint64_t non_2xx = 0;
  for (auto& r : n.rounds)
    non_2xx += r.non_2xx;
  return fmt::format(
    "  node ({}, metrics {}): {:.0f} events/s, p50 {:.2f} ms, p99 {:.2f} ms, {:.1f} us "
    "CPU/event\n"
    "    stored: {} nodes, {} group(s), times_seen {}, answered 200: {} ({}); "
    "non-2xx {}; peak RSS {:.0f} MiB\n",
    n.services, n.metrics, median_of(n.rounds, ok_rate),
    median_of(n.rounds, p50_of), median_of(n.rounds, p99_of),
    median_of(n.rounds, server_cpu_us), n.stored.nodes, n.stored.groups, n.stored.times_seen, n.answered,
    n.stored_ok ? "every answered event stored" : "MISMATCH", non_2xx,
    n.peak_rss_mib);
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
  if (opts.services == "redis") {
    if (opts.redis_url.empty())
      fail("--services redis needs --redis-url redis://host:port/N (an empty "
           "database)");
    require_empty_redis(opts.redis_url);
  }
  char tmpl[] = "/tmp/vigil-bench-ingest-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    fail("cannot create a temporary directory");
  fs::path dir{tmpl};
  auto event_file = dir / "event.json";
  write_file(event_file, event);
  ::signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec).string();
  // The measured node first; with --against-off, a node whose counters are
  // off (issue counts in the ingest transaction, no TSDB) beside it.
  std::vector<measured_node> nodes;
  nodes.push_back({.services = opts.services, .dir = dir / "node"});
  // With --metrics, one node per metrics backend in its place.
  if (!opts.metrics.empty()) {
    nodes.clear();
    std::string_view list = opts.metrics;
    while (!list.empty()) {
      auto comma = list.find(',');
      auto name = std::string{list.substr(0, comma)};
      list = comma == std::string_view::npos ? std::string_view{}
                                             : list.substr(comma + 1);
      if (name.empty())
        continue;
      nodes.push_back({.services = opts.services, .metrics = name,
                       .dir = dir / ("node-metrics-" + name)});
    }
    if (nodes.empty())
      fail("--metrics: expected backends such as off,statsd,prometheus");
  }
  if (opts.against_off && opts.metrics.empty())
    nodes.push_back({.services = "off", .dir = dir / "node-off"});
  for (auto& n : nodes)
    start_node(n, exe, opts);

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
  started_pids.push_back(nginx_pid);
  wait_ready(nginx_pid, nginx_port, "/", nginx_log, "nginx");

  auto nginx_url = fmt::format("http://127.0.0.1:{}/api/1/store/",
                               nginx_port);
  server_proc web{nginx_pid, true};
  auto wrk_out = dir / "wrk.out";
  int run_id = 1;
  auto run_node = [&](measured_node& n, double seconds) {
    auto r = run_wrk(opts, script, event_file, n.url(), seconds, run_id++,
                     server_proc{n.pid, false}, wrk_out);
    n.count(r);
    return r;
  };
  // Warm-up: page in, grow buffers, create the group.
  double warm = std::min(3.0, opts.duration);
  run_wrk(opts, script, event_file, nginx_url, warm, run_id++, web, wrk_out);
  for (auto& n : nodes)
    run_node(n, warm);
  std::vector<run_figures> nginx_runs;
  for (size_t i = 0; i < std::max<size_t>(1, opts.rounds); ++i) {
    nginx_runs.push_back(run_wrk(opts, script, event_file, nginx_url,
                                 opts.duration, run_id++, web, wrk_out));
    // The nodes take turns going first, so that a drift of the machine's
    // load during the run weighs on both alike.
    for (size_t k = 0; k < nodes.size(); ++k) {
      auto& n = nodes[(k + i) % nodes.size()];
      n.rounds.push_back(run_node(n, opts.duration));
    }
    if (!opts.json) {
      std::string line = fmt::format("round {}: nginx {:.0f}/s", i + 1,
                                     nginx_runs.back().ok_per_s);
      for (auto& n : nodes) {
        auto& r = n.rounds.back();
        line += fmt::format(", node ({}/{}) {:.0f}/s (p50 {:.2f} ms, p99 "
                            "{:.2f} ms, {} non-2xx)",
                            n.services, n.metrics, r.ok_per_s, r.p50_ms,
                            r.p99_ms,
                            r.non_2xx);
      }
      std::cerr << line << "\n";
    }
  }
  // Everything answered is committed; requests still in flight when wrk
  // stopped may still be queued: let them land before counting.
  auto deadline = clock_type::now() + std::chrono::seconds{10};
  for (auto& n : nodes)
    while (node_queued(n.port) != 0 && clock_type::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  stop_process(nginx_pid, SIGTERM);
  for (auto& n : nodes)
    stop_and_count(n, exe, opts);

  auto& node = nodes.front();
  auto rate = median_of(node.rounds, ok_rate);
  auto node_cpu_us = median_of(node.rounds, server_cpu_us);
  auto nginx_rate = median_of(nginx_runs, ok_rate);
  auto nginx_cpu_us = median_of(nginx_runs, server_cpu_us);
  std::vector<run_figures> all = nginx_runs;
  for (auto& n : nodes)
    all.insert(all.end(), n.rounds.begin(), n.rounds.end());
  auto other = median_of(all, [](const run_figures& r) {
    return r.other_cores;
  });
  double ratio = nginx_rate > 0 ? rate / nginx_rate : 0;
  double off_rate = opts.against_off ? median_of(nodes[1].rounds, ok_rate) : 0;
  double services_ratio = off_rate > 0 ? rate / off_rate : 0;
  bool stored_ok = std::all_of(nodes.begin(), nodes.end(),
                               [](auto& n) { return n.stored_ok; });
  double load1 = 0;
  {
    std::ifstream in{"/proc/loadavg"};
    in >> load1;
  }
  if (opts.json) {
    auto measured = node_json(node);
    nlohmann::json out{
      {"scenario", "ingest"},
      {"endpoint", "/api/1/store/"},
      {"event_bytes", event.size()},
      {"connections", opts.connections},
      {"duration_s", opts.duration},
      {"rounds", std::max<size_t>(1, opts.rounds)},
      {"threads", opts.threads},
      {"services", node.services},
      {"throughput_per_s", std::round(rate)},
      {"p50_ms", measured["p50_ms"]},
      {"p99_ms", measured["p99_ms"]},
      {"node_cpu_us_per_event", node_cpu_us},
      {"nginx_throughput_per_s", std::round(nginx_rate)},
      {"nginx_p50_ms", median_of(nginx_runs, p50_of)},
      {"nginx_p99_ms", median_of(nginx_runs, p99_of)},
      {"nginx_cpu_us_per_request", nginx_cpu_us},
      {"wrk_cpu_us_per_request", median_of(node.rounds, wrk_cpu_us)},
      {"ratio", ratio},
      {"cpu_ratio", node_cpu_us > 0 ? nginx_cpu_us / node_cpu_us : 0},
      {"non_2xx", measured["non_2xx"]},
      {"socket_errors", measured["socket_errors"]},
      {"answered_2xx", node.answered},
      {"stored_nodes", node.stored.nodes},
      {"groups", node.stored.groups},
      {"times_seen", node.stored.times_seen},
      {"stored_ok", stored_ok},
      {"node_peak_rss_mib", node.peak_rss_mib},
      {"other_load_cores", other},
      {"loadavg_1m", load1},
      {"cores", std::thread::hardware_concurrency()},
      {"node_rounds", measured["rounds"]},
      {"nginx_rounds", nlohmann::json::array()}};
    for (auto& r : nginx_runs)
      out["nginx_rounds"].push_back({{"per_s", std::round(r.ok_per_s)},
                                     {"p50_ms", r.p50_ms},
                                     {"p99_ms", r.p99_ms},
                                     {"server_cpu_s", r.server_cpu_s},
                                     {"wrk_cpu_s", r.wrk_cpu_s},
                                     {"other_load_cores", r.other_cores}});
    if (!opts.metrics.empty()) {
      out["metrics_nodes"] = nlohmann::json::array();
      for (auto& n : nodes) {
        auto j = node_json(n);
        j["ratio_to_metrics_off"] = metrics_ratio(nodes, n);
        out["metrics_nodes"].push_back(std::move(j));
      }
    }
    if (opts.against_off && opts.metrics.empty()) {
      out["services_off"] = node_json(nodes[1]);
      out["services_ratio"] = services_ratio;
    }
    std::cout << out.dump() << std::endl;
  } else {
    std::string text = fmt::format(
      "ingest (store endpoint, {} B event, {} connections, {} x {} s, "
      "medians):\n",
      event.size(), opts.connections, std::max<size_t>(1, opts.rounds),
      opts.duration);
    for (auto& n : nodes)
      text += node_line(n);
    text += fmt::format(
      "  nginx: {:.0f} requests/s, p50 {:.2f} ms, p99 {:.2f} ms, "
      "{:.1f} us CPU/request\n"
      "  ratio to nginx {:.2f} (CPU per request: nginx/node {:.2f}); "
      "wrk {:.1f} us CPU/request; other load {:.2f} cores\n",
      nginx_rate, median_of(nginx_runs, p50_of), median_of(nginx_runs, p99_of),
      nginx_cpu_us, ratio, node_cpu_us > 0 ? nginx_cpu_us / node_cpu_us : 0,
      median_of(node.rounds, wrk_cpu_us), other);
    for (auto& n : nodes)
      if (!opts.metrics.empty() && n.metrics != "off")
        text += fmt::format("  metrics {} vs off: {:.3f} of the rate\n",
                            n.metrics, metrics_ratio(nodes, n));
    if (opts.against_off && opts.metrics.empty())
      text += fmt::format("  {} vs off: {:.3f} of the rate with the counters "
                          "off\n",
                          node.services, services_ratio);
    std::cout << text;
  }
  std::cout.flush();
  if (!opts.keep)
    fs::remove_all(dir, ec);
  else
    std::cerr << "kept " << dir.string() << "\n";
  return stored_ok ? 0 : 1;
}

} // namespace vigil
