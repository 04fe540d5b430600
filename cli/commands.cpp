#include "cli/commands.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include <spdlog/fmt/fmt.h>

#include <unistd.h>

#include "actors/backends/broker.hpp"
#include "actors/pidbox_transport.hpp"
#include "config/schema.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/json_writer.hpp"
#include "messages/task_body.hpp"

namespace vigil {

namespace {

constexpr std::chrono::milliseconds cli_timeout{5000};

caf::expected<std::unique_ptr<broker>> shared_broker(const config& cfg) {
  auto url = cfg.get_string("broker.url");
  if (url.substr(0, 9) == "memory://")
    return caf::make_error(errc::unsupported,
                           "broker.url is memory://, which lives inside one "
                           "node process; point broker.url (or "
                           "VIGIL_BROKER_URL) at redis://host:port/db");
  return connect_broker(url, cli_timeout);
}

std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

} // namespace

int send_task_command(const config& cfg, const send_task_options& opts) {
  auto args = decode_json(opts.args_json);
  if (!args || !args->is_array()) {
    std::cerr << "vigil send-task: --args must be a JSON array, e.g. '[1, 2]'"
              << (args ? "" : ": " + error_text(args.error())) << "\n";
    return 2;
  }
  auto kwargs = decode_json(opts.kwargs_json);
  if (!kwargs || !kwargs->is_map()) {
    std::cerr << "vigil send-task: --kwargs must be a JSON object, e.g. "
                 "'{\"x\": 1}'"
              << (kwargs ? "" : ": " + error_text(kwargs.error())) << "\n";
    return 2;
  }
  if (opts.priority < 0 || opts.priority > 9) {
    std::cerr << "vigil send-task: --priority must be 0..9\n";
    return 2;
  }
  auto conn = shared_broker(cfg);
  if (!conn) {
    std::cerr << "vigil send-task: " << error_text(conn.error()) << "\n";
    return 1;
  }
  outgoing_task out;
  out.queue = opts.queue.empty() ? cfg.get_string("tasks.default-queue")
                                 : opts.queue;
  auto& msg = out.msg;
  msg.task = opts.name;
  msg.id = new_uuid4();
  msg.root_id = msg.id;
  msg.correlation_id = msg.id;
  auto now = now_unix_us();
  if (opts.countdown > 0)
    msg.eta_us = now + static_cast<int64_t>(opts.countdown * 1e6);
  if (opts.expires > 0)
    msg.expires_us = now + static_cast<int64_t>(opts.expires * 1e6);
  msg.priority = opts.priority;
  msg.origin = "vigil@" + hostname();
  msg.content_type = opts.serializer == "json" ? std::string{content_type_json}
                                               : std::string{content_type_msgpack};
  msg.argsrepr = to_repr(*args);
  msg.kwargsrepr = to_repr(*kwargs);
  // Celery's dict form of a signature; chained ones get their ids now, as
  // chain.apply_async freezes them, so the caller can wait on the last.
  auto signature = [](const std::string& name, const std::string& id) {
    value_map options;
    if (!id.empty())
      options.emplace_back("task_id", id);
    return value{value_map{{"task", name},
                           {"args", value_array{}},
                           {"kwargs", value_map{}},
                           {"options", std::move(options)},
                           {"subtask_type", nullptr},
                           {"immutable", false}}};
  };
  value_array links;
  for (auto& name : opts.link)
    links.push_back(signature(name, {}));
  std::vector<std::string> chain_ids;
  value_array chain;
  for (auto& name : opts.chain) {
    chain_ids.push_back(new_uuid4());
    chain.push_back(signature(name, chain_ids.back()));
  }
  std::reverse(chain.begin(), chain.end()); // Celery pops from the end
  value embed;
  if (!links.empty() || !chain.empty())
    embed = value_map{{"callbacks", links.empty() ? value{} : value{links}},
                      {"errbacks", nullptr},
                      {"chain", chain.empty() ? value{} : value{chain}},
                      {"chord", nullptr}};
  msg.body = encode_task_body(args->as_array(), kwargs->as_map(),
                              msg.content_type, embed);
  if (auto err = (*conn)->publish({out})) {
    std::cerr << "vigil send-task: " << error_text(err) << "\n";
    return 1;
  }
  // Celery's task_send_sent_event: best effort, the task is sent already.
  if (cfg.get_bool("tasks.send-sent-event"))
    if (auto err = publish_task_sent(cfg.get_string("broker.url"),
                                     "gen" + std::to_string(::getpid()) + "@"
                                       + hostname(),
                                     msg, out.queue, cli_timeout))
      std::cerr << "vigil send-task: task-sent event not published: "
                << error_text(err) << "\n";
  std::cout << msg.id << "\n";
  for (auto& id : chain_ids)
    std::cout << id << "\n";
  return 0;
}

int dead_letters_list_command(const config& cfg, const std::string& queue,
                              bool json) {
  auto conn = shared_broker(cfg);
  if (!conn) {
    std::cerr << "vigil dead-letters: " << error_text(conn.error()) << "\n";
    return 1;
  }
  auto letters = (*conn)->list_dead_letters();
  if (!letters) {
    std::cerr << "vigil dead-letters: " << error_text(letters.error()) << "\n";
    return 1;
  }
  std::vector<const dead_letter*> shown;
  for (auto& x : *letters)
    if (queue.empty() || x.queue == queue)
      shown.push_back(&x);
  if (json) {
    std::string out = "[";
    for (size_t i = 0; i < shown.size(); ++i) {
      if (i > 0)
        out += ", ";
      out += to_json(*shown[i]);
    }
    out += "]";
    std::cout << out << "\n";
    return 0;
  }
  if (shown.empty()) {
    std::cout << "no dead letters\n";
    return 0;
  }
  for (auto* x : shown) {
    if (!x->unreadable.empty()) {
      // Shown, not skipped: an operator must see that the list holds it.
      std::string raw;
      append_json_string(raw, x->envelope, 200);
      std::cout << x->id << "  (unreadable record: " << x->unreadable
                << ")\n    " << raw << "\n";
      continue;
    }
    std::cout << x->id << "  " << format_iso8601(x->time_us).substr(0, 19)
              << "  " << (x->queue.empty() ? "-" : x->queue) << "  "
              << (x->task.empty() ? "(undecodable)" : x->task) << "  "
              << (x->task_id.empty() ? "-" : x->task_id) << "\n    "
              << x->reason << "\n";
  }
  std::cout << shown.size() << " dead letter(s)\n";
  return 0;
}

int dead_letters_replay_command(const config& cfg, const std::string& id,
                                bool all) {
  if (id.empty() == !all) {
    std::cerr << "vigil dead-letters replay: give one ID or --all\n";
    return 2;
  }
  auto conn = shared_broker(cfg);
  if (!conn) {
    std::cerr << "vigil dead-letters: " << error_text(conn.error()) << "\n";
    return 1;
  }
  auto n = (*conn)->replay_dead_letters(all ? std::string{} : id);
  if (!n) {
    std::cerr << "vigil dead-letters: " << error_text(n.error()) << "\n";
    return 1;
  }
  if (!all && *n == 0) {
    std::cerr << "vigil dead-letters replay: no dead letter with id '" << id
              << "'\n";
    return 1;
  }
  std::cout << "requeued " << *n << " message(s)\n";
  return 0;
}

int config_get_command(const config& cfg, const std::string& key) {
  if (find_key_spec(key) == nullptr) {
    std::cerr << "vigil config get: unknown key '" << key << "'\n";
    return 2;
  }
  std::cout << cfg.display(key) << "\n";
  return 0;
}

namespace {

std::string describe_type(const key_spec& k) {
  std::string out = to_string(k.type);
  if (k.type == key_type::choice || (k.type == key_type::url && !k.choices.empty())) {
    out += k.type == key_type::choice ? ": " : " (";
    for (size_t i = 0; i < k.choices.size(); ++i)
      out += (i > 0 ? (k.type == key_type::choice ? " \\| " : ", ") : "")
             + k.choices[i] + (k.type == key_type::url ? "://" : "");
    if (k.type == key_type::url)
      out += ")";
  }
  auto num = [](double x) {
    auto text = fmt::format("{}", x);
    return text;
  };
  bool has_min = k.min > -std::numeric_limits<double>::infinity();
  bool has_max = k.max < std::numeric_limits<double>::infinity();
  if (has_min && has_max)
    out += ", " + num(k.min) + ".." + num(k.max);
  else if (has_min)
    out += ", >= " + num(k.min);
  else if (has_max)
    out += ", <= " + num(k.max);
  return out;
}

} // namespace

int config_keys_command() {
  std::cout << "| Key | Type | Default | Meaning | Environment variable |\n"
               "|-----|------|---------|---------|----------------------|\n";
  for (auto& k : config_schema()) {
    auto dflt = k.default_yaml.empty() ? std::string{"unset"}
                                       : "`" + k.default_yaml + "`";
    if (k.secret && !k.default_yaml.empty())
      dflt = "(secret)";
    std::cout << "| `" << k.key << "` | " << describe_type(k) << " | " << dflt
              << " | " << k.help << " | `" << env_name(k.key) << "` |\n";
  }
  return 0;
}

int config_validate_command(const std::string& path) {
  std::string file = path.empty() ? "config.yml" : path;
  std::string text;
  if (std::filesystem::exists(file)) {
    std::ifstream in{file};
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  } else if (!path.empty()) {
    std::cerr << file << ": no such file\n";
    return 1;
  }
  auto problems = config::validate(text, vigil_environment());
  for (auto& p : problems)
    std::cerr << (std::filesystem::exists(file) ? file + ": " : "")
              << p.message << "\n";
  if (!problems.empty())
    return 1;
  std::cout << (std::filesystem::exists(file) ? file : "built-in defaults")
            << ": ok\n";
  return 0;
}

} // namespace vigil
