#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <unistd.h>

#include "config/config.hpp"
#include "config/schema.hpp"
#include "messages/errors.hpp"

using namespace vigil;

namespace {

using env_map = std::map<std::string, std::string>;

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed on destruction.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path()
           / ("vigil_config_test_" + std::to_string(::getpid()) + "_"
              + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    auto file = path / name;
    std::ofstream out(file, std::ios::binary);
    out << text;
    return file.string();
  }
};

// Runs a test body with the working directory set to `dir`.
struct cwd_guard {
  fs::path old;
  explicit cwd_guard(const fs::path& dir) : old(fs::current_path()) {
    fs::current_path(dir);
  }
  ~cwd_guard() {
    std::error_code ec;
    fs::current_path(old, ec);
  }
};

std::string problems_text(const std::string& yaml, const env_map& env = {}) {
  std::string out;
  for (const auto& p : config::validate(yaml, env))
    out += p.message + "\n";
  return out;
}

// The single problem of `yaml`; fails the test if there is not exactly one.
std::string one_problem(const std::string& yaml, const env_map& env = {}) {
  auto problems = config::validate(yaml, env);
  INFO(problems_text(yaml, env));
  REQUIRE(problems.size() == 1);
  return problems.front().message;
}

} // namespace

TEST_CASE("schema rows are unique, sorted and have valid defaults",
          "[config]") {
  const auto& schema = config_schema();
  REQUIRE(!schema.empty());
  std::set<std::string> keys;
  std::set<std::string> env_names;
  for (size_t i = 0; i < schema.size(); ++i) {
    const auto& spec = schema[i];
    INFO(spec.key);
    CHECK(keys.insert(spec.key).second);
    CHECK(env_names.insert(env_name(spec.key)).second);
    if (i > 0)
      CHECK(schema[i - 1].key < spec.key);
    CHECK(!spec.help.empty());
    CHECK(spec.help.find('\n') == std::string::npos);
    CHECK(find_key_spec(spec.key) == &spec);
    if (spec.type == key_type::choice || spec.type == key_type::url)
      CHECK(!spec.choices.empty());
    if (!spec.default_yaml.empty()) {
      auto parsed = parse_value(spec, YAML::Load(spec.default_yaml));
      INFO((parsed ? "" : error_text(parsed.error())));
      CHECK(parsed);
    }
  }
  CHECK(find_key_spec("broker") == nullptr);
  CHECK(find_key_spec("nope.nope") == nullptr);
  CHECK(std::string{to_string(key_type::integer)} == "integer");
}

TEST_CASE("defaults", "[config]") {
  auto cfg = config::defaults();
  CHECK(cfg.get_string("broker.url") == "memory://");
  CHECK(cfg.get_double("broker.visibility-timeout") == 3600.0);
  CHECK(cfg.get_int("broker.prefetch") == 256);
  CHECK(cfg.get_double("broker.restore-interval") == 10.0);
  CHECK(cfg.get_double("broker.poll-interval") == Approx(0.05));
  CHECK(!cfg.is_set("tasks.result-backend"));
  CHECK(cfg.get_string("tasks.result-backend").empty());
  CHECK(cfg.get_int("tasks.result-expires") == 86400);
  CHECK(cfg.get_string("tasks.default-queue") == "celery");
  CHECK(cfg.get_string_list("tasks.queues").empty());
  CHECK(cfg.is_set("tasks.queues"));
  CHECK(cfg.get_string("tasks.unknown-task") == "dead-letter");
  CHECK(cfg.get_int("tasks.max-deliveries") == 5);
  CHECK(cfg.get_int("worker.concurrency") == 0);
  CHECK(cfg.get_double("worker.shutdown-timeout") == 30.0);
  CHECK(cfg.get_string("log.level") == "info");
  CHECK(cfg.get_string("log.format") == "text");
  CHECK(!cfg.is_set("node.name"));
  CHECK(cfg.get_string("node.data-dir") == ".vigil");
  CHECK(cfg.get_node("redis.clusters").IsMap());
  CHECK(cfg.get_node("redis.clusters").size() == 0);
  CHECK(cfg.get_string("web.bind") == "127.0.0.1:9001");
  CHECK(cfg.source("broker.url") == "default");
  CHECK(cfg.source("no.such-key").empty());
  // Unknown keys read as zero values rather than throwing.
  CHECK(cfg.get_string("no.such-key").empty());
  CHECK(cfg.get_int("no.such-key") == 0);
  CHECK(!cfg.is_set("no.such-key"));
  CHECK(cfg.get_node("no.such-key").IsNull());
  // A default-constructed config is the defaults.
  config fresh;
  CHECK(fresh.get_int("broker.prefetch") == 256);
}

TEST_CASE("file values", "[config]") {
  auto cfg = config::from_yaml(R"(
# comment
broker.url: redis://localhost:6379/0
broker.visibility-timeout: 7200
broker.prefetch: 16
broker.poll-interval: 0.5
tasks.result-backend: redis://localhost:6379/1
tasks.queues: [high, low]
tasks.unknown-task: requeue
worker.concurrency: 4
log.level: DEBUG
node.name: worker-1
redis.clusters:
  default:
    url: redis://localhost:6379/2
)",
                               {});
  REQUIRE(cfg);
  CHECK(cfg->get_string("broker.url") == "redis://localhost:6379/0");
  CHECK(cfg->get_double("broker.visibility-timeout") == 7200.0);
  CHECK(cfg->get_int("broker.prefetch") == 16);
  CHECK(cfg->get_double("broker.poll-interval") == 0.5);
  CHECK(cfg->get_string("tasks.result-backend") == "redis://localhost:6379/1");
  CHECK(cfg->get_string_list("tasks.queues")
        == std::vector<std::string>{"high", "low"});
  CHECK(cfg->get_string("tasks.unknown-task") == "requeue");
  CHECK(cfg->get_int("worker.concurrency") == 4);
  CHECK(cfg->get_string("log.level") == "debug"); // choices are normalized
  CHECK(cfg->get_string("node.name") == "worker-1");
  auto clusters = cfg->get_node("redis.clusters");
  REQUIRE(clusters.IsMap());
  CHECK(clusters["default"]["url"].as<std::string>()
        == "redis://localhost:6379/2");
  CHECK(cfg->source("broker.prefetch") == "file");
  CHECK(cfg->source("log.format") == "default");
  // get_node hands out clones.
  clusters["default"]["url"] = "changed";
  CHECK(cfg->get_node("redis.clusters")["default"]["url"].as<std::string>()
        == "redis://localhost:6379/2");
}

TEST_CASE("nested sections flatten", "[config]") {
  auto cfg = config::from_yaml(R"(
broker:
  url: amqp://guest:guest@rabbit:5672/vhost
  prefetch: 8
tasks:
  queues:
    - a
log: {level: warning}
redis:
  clusters:
    main: {host: 10.0.0.1}
worker:
  # every key commented out
)",
                               {});
  REQUIRE(cfg);
  CHECK(cfg->get_string("broker.url")
        == "amqp://guest:guest@rabbit:5672/vhost");
  CHECK(cfg->get_int("broker.prefetch") == 8);
  CHECK(cfg->get_string_list("tasks.queues") == std::vector<std::string>{"a"});
  CHECK(cfg->get_string("log.level") == "warning");
  // A known map key is taken whole, not flattened further.
  CHECK(cfg->get_node("redis.clusters")["main"]["host"].as<std::string>()
        == "10.0.0.1");
  CHECK(cfg->source("broker.url") == "file");
  // A key given flat and nested is reported once.
  auto msg = one_problem("broker.prefetch: 1\nbroker:\n  prefetch: 2\n");
  CHECK(msg == "broker.prefetch: the key is given more than once");
  // Unknown keys inside a section are reported with their full name.
  CHECK(one_problem("broker:\n  prefech: 1\n")
        == "unknown key 'broker.prefech' (did you mean 'broker.prefetch'?)");
}

TEST_CASE("environment overrides", "[config]") {
  env_map env = {
    {"VIGIL_BROKER_PREFETCH", "32"},
    {"VIGIL_TASKS_QUEUES", "[x, y]"},
    {"VIGIL_LOG_FORMAT", "json"},
    {"VIGIL_NODE_NAME", "node #1: main"}, // taken verbatim, not as YAML
    {"VIGIL_TEST_REDIS_URL", "not ours"}, // other VIGIL_* are ignored
    {"BROKER_PREFETCH", "1"},
  };
  auto cfg = config::from_yaml("broker.prefetch: 8\nlog.format: text\n", env);
  REQUIRE(cfg);
  CHECK(cfg->get_int("broker.prefetch") == 32);
  CHECK(cfg->source("broker.prefetch") == "env");
  CHECK(cfg->get_string_list("tasks.queues")
        == std::vector<std::string>{"x", "y"});
  CHECK(cfg->get_string("log.format") == "json");
  CHECK(cfg->get_string("node.name") == "node #1: main");
  SECTION("comma-separated lists") {
    auto c = config::from_yaml("", {{"VIGIL_TASKS_QUEUES", "a, b,c"}});
    REQUIRE(c);
    CHECK(c->get_string_list("tasks.queues")
          == std::vector<std::string>{"a", "b", "c"});
  }
  SECTION("an empty variable resets to the default") {
    auto c = config::from_yaml("broker.prefetch: 8\n",
                               {{"VIGIL_BROKER_PREFETCH", ""}});
    REQUIRE(c);
    CHECK(c->get_int("broker.prefetch") == 256);
  }
  SECTION("bad values name the variable and the key") {
    CHECK(one_problem("", {{"VIGIL_BROKER_PREFETCH", "lots"}})
          == "VIGIL_BROKER_PREFETCH (broker.prefetch): expected an integer "
             ">= 1, got 'lots'");
    CHECK(one_problem("", {{"VIGIL_LOG_LEVEL", "loud"}})
          == "VIGIL_LOG_LEVEL (log.level): expected one of trace, debug, "
             "info, warning, error, critical, off, got 'loud'");
    auto msg = one_problem("", {{"VIGIL_TASKS_QUEUES", "[a, "}});
    CHECK_THAT(msg, Catch::StartsWith(
                      "VIGIL_TASKS_QUEUES (tasks.queues): not valid YAML"));
  }
  SECTION("file and env problems are all reported") {
    auto problems = config::validate("broker.prefetch: 0\nlog.level: x\n",
                                     {{"VIGIL_WORKER_CONCURRENCY", "-1"}});
    CHECK(problems.size() == 3);
  }
}

TEST_CASE("env_name mapping", "[config]") {
  CHECK(env_name("broker.visibility-timeout")
        == "VIGIL_BROKER_VISIBILITY_TIMEOUT");
  CHECK(env_name("broker.url") == "VIGIL_BROKER_URL");
  CHECK(env_name("tasks.result-backend") == "VIGIL_TASKS_RESULT_BACKEND");
  CHECK(env_name("log.level") == "VIGIL_LOG_LEVEL");
}

TEST_CASE("vigil_environment reads only VIGIL_ variables", "[config]") {
  ::setenv("VIGIL_CONFIG_TEST_VAR", "a=b", 1);
  ::setenv("NOT_VIGIL_CONFIG_TEST_VAR", "x", 1);
  auto env = vigil_environment();
  ::unsetenv("VIGIL_CONFIG_TEST_VAR");
  ::unsetenv("NOT_VIGIL_CONFIG_TEST_VAR");
  CHECK(env["VIGIL_CONFIG_TEST_VAR"] == "a=b");
  for (const auto& [name, value] : env)
    CHECK(name.starts_with("VIGIL_"));
}

TEST_CASE("unknown keys suggest the closest key", "[config]") {
  CHECK(one_problem("broker.prefech: 1\n")
        == "unknown key 'broker.prefech' (did you mean 'broker.prefetch'?)");
  CHECK(one_problem("broker.visibility_timeout: 1\n")
        == "unknown key 'broker.visibility_timeout' (did you mean "
           "'broker.visibility-timeout'?)");
  CHECK(one_problem("Log.Level: info\n")
        == "unknown key 'Log.Level' (did you mean 'log.level'?)");
  CHECK(one_problem("mail.hots: smtp\n")
        == "unknown key 'mail.hots' (did you mean 'mail.host'?)");
  CHECK(one_problem("mail:\n  hots: smtp\n")
        == "unknown key 'mail.hots' (did you mean 'mail.host'?)");
  CHECK(one_problem("nosuchsection.key: 1\n")
        == "unknown key 'nosuchsection.key'");
  CHECK(one_problem("bogus:\n") == "unknown key 'bogus'");
  CHECK(one_problem("broker: 5\n")
        == "'broker' is a section: expected a map of its keys (like "
           "'broker.poll-interval'), got a single value");
  auto problems = config::validate("zzz: 1\nbroker.url: memory://\n", {});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].key == "zzz");
}

TEST_CASE("wrong types", "[config]") {
  SECTION("integer") {
    CHECK(one_problem("broker.prefetch: lots")
          == "broker.prefetch: expected an integer >= 1, got 'lots'");
    CHECK(one_problem("broker.prefetch: 1.5")
          == "broker.prefetch: expected an integer >= 1, got '1.5'");
    CHECK(one_problem("broker.prefetch: 0")
          == "broker.prefetch: expected an integer >= 1, got '0'");
    CHECK(one_problem("broker.prefetch: '16'")
          == "broker.prefetch: expected an integer >= 1, got the string "
             "'16'");
    CHECK(one_problem("broker.prefetch: [1]")
          == "broker.prefetch: expected an integer >= 1, got a list");
    CHECK(one_problem("broker.prefetch: 99999999999999999999999")
          == "broker.prefetch: expected an integer >= 1, got "
             "'99999999999999999999999'");
    CHECK(one_problem("worker.concurrency: -1")
          == "worker.concurrency: expected an integer >= 0, got '-1'");
    CHECK(one_problem("tasks.max-deliveries: -1")
          == "tasks.max-deliveries: expected an integer between 0 and 10000, "
             "got '-1'");
  }
  SECTION("number") {
    CHECK(one_problem("broker.restore-interval: 0.01")
          == "broker.restore-interval: expected a number >= 0.1, got "
             "'0.01'");
    CHECK(one_problem("broker.visibility-timeout: soon")
          == "broker.visibility-timeout: expected a number >= 1, got "
             "'soon'");
    CHECK(one_problem("broker.visibility-timeout: .inf")
          == "broker.visibility-timeout: expected a number >= 1, got "
             "'.inf'");
    CHECK(one_problem("broker.visibility-timeout: {a: 1}")
          == "broker.visibility-timeout: expected a number >= 1, got a map");
    auto cfg = config::from_yaml("broker.visibility-timeout: 90\n"
                                 "broker.restore-interval: 2.5e-1\n",
                                 {});
    REQUIRE(cfg);
    CHECK(cfg->get_double("broker.visibility-timeout") == 90.0);
    CHECK(cfg->get_int("broker.visibility-timeout") == 90);
    CHECK(cfg->get_double("broker.restore-interval") == 0.25);
  }
  SECTION("string") {
    CHECK(one_problem("node.name: [a, b]")
          == "node.name: expected a string, got a list");
    auto cfg = config::from_yaml("node.name: 42\n", {});
    REQUIRE(cfg);
    CHECK(cfg->get_string("node.name") == "42");
  }
  SECTION("choice") {
    CHECK(one_problem("tasks.unknown-task: drop")
          == "tasks.unknown-task: expected one of dead-letter, requeue, got "
             "'drop'");
    CHECK(one_problem("log.format: {}")
          == "log.format: expected one of text, json, got a map");
  }
  SECTION("list") {
    CHECK(one_problem("tasks.queues: celery")
          == "tasks.queues: expected a list of strings, got 'celery'");
    CHECK(one_problem("tasks.queues: [a, [b]]")
          == "tasks.queues: expected a list of strings, got a list as item "
             "2");
    CHECK(one_problem("tasks.queues: [a, ~]")
          == "tasks.queues: expected a list of strings, got nothing as item "
             "2");
  }
  SECTION("map") {
    CHECK(one_problem("redis.clusters: [a]")
          == "redis.clusters: expected a map, got a list");
  }
  SECTION("boolean (no such key yet: checked through the schema layer)") {
    key_spec spec{.key = "x.flag", .type = key_type::boolean,
                  .default_yaml = "false", .help = "test"};
    for (auto text : {"true", "yes", "True", "NO", "false"}) {
      auto v = parse_value(spec, YAML::Load(text));
      REQUIRE(v);
    }
    CHECK(parse_value(spec, YAML::Load("yes"))->boolean);
    CHECK(!parse_value(spec, YAML::Load("no"))->boolean);
    auto bad = parse_value(spec, YAML::Load("maybe"));
    REQUIRE(!bad);
    CHECK(error_text(bad.error())
          == "expected a boolean (true/false/yes/no), got 'maybe'");
    CHECK(!parse_value(spec, YAML::Load("1")));
    CHECK(!parse_value(spec, YAML::Load("'true'")));
  }
  SECTION("empty values reset to the default") {
    auto cfg = config::from_yaml("broker.prefetch:\n"
                                 "tasks.default-queue: ''\n"
                                 "tasks.result-backend: ~\n",
                                 {});
    REQUIRE(cfg);
    CHECK(cfg->get_int("broker.prefetch") == 256);
    CHECK(cfg->get_string("tasks.default-queue") == "celery");
    CHECK(!cfg->is_set("tasks.result-backend"));
  }
  SECTION("the top level must be a map") {
    CHECK(one_problem("- a\n- b\n")
          == "the configuration must be a map of keys to values, got a list");
    CHECK_THAT(one_problem("broker.url: [\n"),
               Catch::StartsWith("invalid YAML: line "));
  }
}

TEST_CASE("url validation", "[config]") {
  auto ok = [](const std::string& url) {
    INFO(url);
    CHECK(config::validate("broker.url: '" + url + "'", {}).empty());
  };
  ok("memory://");
  ok("redis://localhost:6379/0");
  ok("redis://:s3cret@localhost:6379/0");
  ok("redis://localhost");
  ok("redis://[::1]:6379/2");
  ok("amqp://user:pw@rabbit:5672/vhost");
  ok("amqp://rabbit");
  CHECK(one_problem("broker.url: localhost:6379")
        == "broker.url: expected a URL (memory://, redis://, amqp://), got "
           "'localhost:6379'");
  CHECK(one_problem("broker.url: http://example.com")
        == "broker.url: unsupported URL scheme 'http' in 'http://example.com' "
           "(expected a URL (memory://, redis://, amqp://))");
  CHECK(one_problem("broker.url: redis:///0")
        == "broker.url: URL 'redis:///0' has no host");
  CHECK(one_problem("broker.url: amqp://user:pw@/vhost")
        == "broker.url: URL 'amqp://user:********@/vhost' has no host");
  CHECK(one_problem("broker.url: redis://h:port/0")
        == "broker.url: URL 'redis://h:port/0' has an invalid port 'port'");
  CHECK(one_problem("broker.url: redis://h:70000/0")
        == "broker.url: URL 'redis://h:70000/0' has an invalid port "
           "'70000'");
  CHECK(one_problem("broker.url: redis://h:6379/zero")
        == "broker.url: URL 'redis://h:6379/zero' has an invalid database "
           "number 'zero' (expected /0, /1, ...)");
  ok("memory://?max-messages=10");
  ok("memory://jobs?max-messages=1");
  CHECK(one_problem("broker.url: memory://?max=10")
        == "broker.url: URL 'memory://?max=10': unknown memory:// parameter "
           "'max' (known: max-messages)");
  CHECK(one_problem("broker.url: memory://?max-messages=0")
        == "broker.url: URL 'memory://?max-messages=0': max-messages expects "
           "an integer >= 1, got '0'");
  // The result backend takes redis only.
  CHECK(one_problem("tasks.result-backend: memory://")
        == "tasks.result-backend: unsupported URL scheme 'memory' in "
           "'memory://' (expected a URL (redis://))");
}

TEST_CASE("secrets are masked", "[config]") {
  CHECK(mask_url("redis://:secret@h:1/0") == "redis://:********@h:1/0");
  CHECK(mask_url("amqp://user:secret@host/vhost")
        == "amqp://user:********@host/vhost");
  CHECK(mask_url("amqp://user@host/vhost") == "amqp://user@host/vhost");
  CHECK(mask_url("redis://:p@ss/w:rd@h:1/0") == "redis://:********@h:1/0");
  CHECK(mask_url("redis://h:1/0?password=secret&db=1")
        == "redis://h:1/0?password=********&db=1");
  CHECK(mask_url("redis://h:1/0") == "redis://h:1/0");
  CHECK(mask_url("redis://:@h") == "redis://:@h");
  for (auto s : {"", "://", "@", ":@", "a://@", "a://:@", "a://x:@?", "?=&",
                 "a://h?password", "a://h?=x&password=", "x://h#a?password=1"})
    CHECK_NOTHROW(mask_url(s));

  const std::string secret = "s3cr3tpw";
  auto cfg = config::from_yaml(
    "broker.url: redis://:" + secret + "@redis-host:6379/0\n"
    "tasks.result-backend: redis://user:" + secret + "@redis-host:6379/1\n"
    "redis.clusters:\n"
    "  main: {url: 'redis://:" + secret + "@h:1/0', password: " + secret
      + ", port: 6379}\n",
    {});
  REQUIRE(cfg);
  CHECK(cfg->get_string("broker.url")
        == "redis://:" + secret + "@redis-host:6379/0");
  CHECK(cfg->display("broker.url") == "redis://:********@redis-host:6379/0");
  CHECK(cfg->display("tasks.result-backend")
        == "redis://user:********@redis-host:6379/1");
  auto clusters = cfg->display("redis.clusters");
  CHECK(clusters.find(secret) == std::string::npos);
  CHECK(clusters.find("6379") != std::string::npos);
  // display() masked a clone: the real value is intact.
  CHECK(cfg->get_node("redis.clusters")["main"]["password"].as<std::string>()
        == secret);
  CHECK(cfg->display("broker.prefetch") == "256");
  CHECK(cfg->display("tasks.queues") == "[]");
  CHECK(cfg->display("node.name").empty());

  // Passwords never show up in problems, from the file or the environment.
  auto problems = config::validate(
    "broker.url: http://:" + secret + "@h/0\n"
    "tasks.result-backend: redis://:" + secret + "@/0\n"
    "broker.prefetch: redis://:" + secret + "@h/0\n",
    {{"VIGIL_BROKER_URL", "redis://u:" + secret + "@h:bad/0"}});
  CHECK(problems.size() == 4);
  for (const auto& p : problems) {
    INFO(p.message);
    CHECK(p.message.find(secret) == std::string::npos);
    CHECK(p.message.find("********") != std::string::npos);
  }

  // Keys marked secret never show their value (none in the table yet).
  key_spec spec{.key = "x.token", .type = key_type::string,
                .default_yaml = "", .help = "test", .secret = true};
  auto v = parse_value(spec, YAML::Load(secret));
  REQUIRE(v);
  CHECK(display_value(spec, *v) == "********");
  spec.type = key_type::integer;
  auto bad = parse_value(spec, YAML::Load(secret));
  REQUIRE(!bad);
  CHECK(error_text(bad.error()).find(secret) == std::string::npos);
}

TEST_CASE("set", "[config]") {
  auto cfg = config::defaults();
  REQUIRE(cfg.set("broker.prefetch", "12"));
  CHECK(cfg.get_int("broker.prefetch") == 12);
  CHECK(cfg.source("broker.prefetch") == "set");
  REQUIRE(cfg.set("tasks.queues", "[a, b]"));
  CHECK(cfg.get_string_list("tasks.queues").size() == 2);
  auto bad = cfg.set("broker.prefetch", "lots");
  REQUIRE(!bad);
  CHECK(bad.error() == errc::bad_config);
  CHECK(error_text(bad.error())
        == "broker.prefetch: expected an integer >= 1, got 'lots'");
  CHECK(cfg.get_int("broker.prefetch") == 12); // unchanged
  auto unknown = cfg.set("broker.prefech", "1");
  REQUIRE(!unknown);
  CHECK(error_text(unknown.error())
        == "unknown key 'broker.prefech' (did you mean 'broker.prefetch'?)");
  CHECK(!cfg.set("broker.prefetch", "[1"));
  REQUIRE(cfg.set("broker.prefetch", ""));
  CHECK(cfg.get_int("broker.prefetch") == 256);
}

TEST_CASE("load", "[config]") {
  temp_dir dir;
  SECTION("a file with values and env overrides") {
    auto path = dir.write("vigil.yml", "broker:\n  prefetch: 3\n"
                                       "log.level: error\n");
    auto cfg = config::load(path, {{"VIGIL_LOG_LEVEL", "trace"}});
    REQUIRE(cfg);
    CHECK(cfg->get_int("broker.prefetch") == 3);
    CHECK(cfg->source("broker.prefetch") == "file");
    CHECK(cfg->get_string("log.level") == "trace");
    CHECK(cfg->source("log.level") == "env");
  }
  SECTION("a missing explicit file is an error") {
    auto cfg = config::load((dir.path / "missing.yml").string(), {});
    REQUIRE(!cfg);
    CHECK(cfg.error() == errc::bad_config);
    CHECK_THAT(error_text(cfg.error()), Catch::Contains("does not exist"));
  }
  SECTION("a directory is an error") {
    CHECK(!config::load(dir.path.string(), {}));
  }
  SECTION("empty and comment-only files are the defaults") {
    for (auto text : {"", "# nothing here\n", "---\n", "\n\n  # x\n"}) {
      auto cfg = config::load(dir.write("empty.yml", text), {});
      REQUIRE(cfg);
      CHECK(cfg->get_int("broker.prefetch") == 256);
      CHECK(cfg->source("broker.prefetch") == "default");
    }
  }
  SECTION("every problem, one per line") {
    auto path = dir.write("bad.yml", "broker.prefetch: 0\nlog.level: loud\n"
                                     "borker.url: memory://\n");
    auto cfg = config::load(path, {});
    REQUIRE(!cfg);
    auto text = error_text(cfg.error());
    CHECK(text
          == "broker.prefetch: expected an integer >= 1, got '0'\n"
             "log.level: expected one of trace, debug, info, warning, error, "
             "critical, off, got 'loud'\n"
             "unknown key 'borker.url' (did you mean 'broker.url'?)");
  }
  SECTION("no path: ./config.yml when it exists, else defaults") {
    cwd_guard cwd{dir.path};
    auto cfg = config::load("", {{"VIGIL_WORKER_CONCURRENCY", "2"}});
    REQUIRE(cfg);
    CHECK(cfg->get_int("worker.concurrency") == 2);
    CHECK(cfg->get_int("broker.prefetch") == 256);
    dir.write("config.yml", "broker.prefetch: 5\n");
    cfg = config::load("", {});
    REQUIRE(cfg);
    CHECK(cfg->get_int("broker.prefetch") == 5);
  }
}

TEST_CASE("service options maps name the option that is wrong", "[config]") {
  CHECK(problems_text("buffer:\n  options: {local-flush-ms: 50, cluster: b}\n")
        == "");
  CHECK(one_problem("buffer:\n  options: {local-flush-ms: soon}\n")
        == "buffer.options: local-flush-ms: expected an integer in [1, "
           "60000], got 'soon'");
  CHECK(one_problem("buffer:\n  options: {pending-partition: 2}\n")
        == "buffer.options: pending-partition: unknown option (expected one "
           "of cluster, pending-partitions, incr-batch-size, local-flush-ms)");
  CHECK(one_problem("tsdb:\n  options: {cluster: [a]}\n")
        == "tsdb.options: cluster: expected a string");
}
