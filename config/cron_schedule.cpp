#include "config/cron_schedule.hpp"

#include "config/text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <exception>
#include <set>

#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/task_body.hpp"

namespace vigil {

namespace {

constexpr std::array<std::string_view, 7> entry_keys
  = {"name", "task", "every", "crontab", "options", "kwargs", "args"};
constexpr std::array<std::string_view, 2> option_keys = {"queue", "expires"};
constexpr uint64_t max_skipped_count = 10000;

int64_t floor_div(int64_t a, int64_t b) {
  auto q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0)))
    --q;
  return q;
}

template <size_t N>
std::string unknown_key_text(std::string_view what, std::string_view key,
                             const std::array<std::string_view, N>& known) {
  std::string out = "unknown " + std::string{what} + " '" + std::string{key}
                    + "'";
  auto best = closest_match(key, {known.begin(), known.end()});
  if (!best.empty())
    out += " (did you mean '" + std::string{best} + "'?)";
  else {
    out += " (expected one of ";
    for (size_t i = 0; i < N; ++i)
      out += (i == 0 ? "" : ", ") + std::string{known[i]};
    out += ")";
  }
  return out;
}

std::string kind_text(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
    default: return "nothing";
  }
}

bool is_plain(const YAML::Node& node) {
  return node.IsScalar() && node.Tag() == "?";
}

// A YAML value as a task argument: plain scalars resolve like YAML's core
// schema (null, booleans, integers, floats), quoted ones stay strings.
caf::expected<value> to_value(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return value{};
    case YAML::NodeType::Sequence: {
      value_array out;
      for (const auto& item : node) {
        auto x = to_value(item);
        if (!x)
          return x.error();
        out.push_back(std::move(*x));
      }
      return value{std::move(out)};
    }
    case YAML::NodeType::Map: {
      value_map out;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar())
          return caf::make_error(errc::bad_config,
                                 "keys must be strings, got "
                                   + kind_text(kv.first));
        auto x = to_value(kv.second);
        if (!x)
          return x.error();
        out.emplace_back(kv.first.Scalar(), std::move(*x));
      }
      return value{std::move(out)};
    }
    case YAML::NodeType::Scalar: break;
  }
  const auto& text = node.Scalar();
  if (!is_plain(node))
    return value{text};
  if (text.empty() || text == "~" || text == "null" || text == "Null"
      || text == "NULL")
    return value{};
  if (text == "true" || text == "True" || text == "TRUE")
    return value{true};
  if (text == "false" || text == "False" || text == "FALSE")
    return value{false};
  int64_t i = 0;
  if (parse_int(text, i))
    return value{i};
  double d = 0;
  if (parse_double(text, d))
    return value{d};
  return value{text};
}

std::string format_seconds(int64_t ms) {
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000);
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf),
                           static_cast<double>(ms) / 1000.0);
  return std::string(buf, res.ptr);
}

// Checks one entry; appends problems (without the entry label) to `out`.
void parse_entry(const YAML::Node& node, cron_entry& entry,
                 std::vector<std::string>& out) {
  auto fail = [&](std::string text) { out.push_back(std::move(text)); };
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      fail("keys must be plain names, got " + kind_text(kv.first));
      continue;
    }
    auto key = kv.first.Scalar();
    if (std::find(entry_keys.begin(), entry_keys.end(), key)
        == entry_keys.end())
      fail(unknown_key_text("key", key, entry_keys));
  }
  auto name = node["name"];
  if (!name.IsDefined() || name.IsNull())
    fail("missing 'name'");
  else if (!name.IsScalar() || name.Scalar().empty())
    fail("name: expected a non-empty string, got " + kind_text(name));
  else
    entry.name = name.Scalar();
  auto task = node["task"];
  if (!task.IsDefined() || task.IsNull())
    fail("missing 'task' (the task name to send, e.g. vigil.ping)");
  else if (!task.IsScalar() || task.Scalar().empty())
    fail("task: expected a task name, got " + kind_text(task));
  else
    entry.task = task.Scalar();
  auto every = node["every"];
  auto cron = node["crontab"];
  bool has_every = every.IsDefined() && !every.IsNull();
  bool has_cron = cron.IsDefined() && !cron.IsNull();
  if (has_every && has_cron) {
    fail("give either 'every' or 'crontab', not both");
  } else if (!has_every && !has_cron) {
    fail("missing 'every' (seconds) or 'crontab' (minute hour day-of-month "
         "month day-of-week)");
  } else if (has_every) {
    double secs = 0;
    if (!is_plain(every) || !parse_double(every.Scalar(), secs) || secs <= 0)
      fail("every: expected a number of seconds > 0, got " + kind_text(every));
    else if (secs < 0.001 || secs > 1e9)
      fail("every: expected between 0.001 and 1e9 seconds, got "
           + kind_text(every));
    else
      entry.timing.every_ms = std::max<int64_t>(
        1, static_cast<int64_t>(std::llround(secs * 1000)));
  } else if (!cron.IsScalar()) {
    fail("crontab: expected an expression like '*/5 * * * *', got "
         + kind_text(cron));
  } else {
    auto parsed = parse_crontab(cron.Scalar());
    if (!parsed) {
      fail("crontab '" + cron.Scalar() + "': " + error_text(parsed.error()));
    } else if (!crontab_next(*parsed, now_unix_us() / 1000)) {
      fail("crontab '" + cron.Scalar()
           + "' never fires (no such date in any year)");
    } else {
      entry.timing.cron = std::move(*parsed);
    }
  }
  if (auto options = node["options"];
      options.IsDefined() && !options.IsNull()) {
    if (!options.IsMap()) {
      fail("options: expected a map (queue, expires), got "
           + kind_text(options));
    } else {
      for (const auto& kv : options) {
        if (!kv.first.IsScalar()) {
          fail("options: keys must be plain names, got "
               + kind_text(kv.first));
          continue;
        }
        auto key = kv.first.Scalar();
        if (key == "queue") {
          if (!kv.second.IsScalar() || kv.second.Scalar().empty())
            fail("options.queue: expected a queue name, got "
                 + kind_text(kv.second));
          else
            entry.queue = kv.second.Scalar();
        } else if (key == "expires") {
          double secs = 0;
          if (kv.second.IsNull())
            continue;
          if (!is_plain(kv.second) || !parse_double(kv.second.Scalar(), secs)
              || secs <= 0)
            fail("options.expires: expected a number of seconds > 0, got "
                 + kind_text(kv.second));
          else
            entry.expires = secs;
        } else {
          fail("options: " + unknown_key_text("option", key, option_keys));
        }
      }
    }
  }
  if (auto kwargs = node["kwargs"]; kwargs.IsDefined() && !kwargs.IsNull()) {
    if (!kwargs.IsMap()) {
      fail("kwargs: expected a map, got " + kind_text(kwargs));
    } else if (auto x = to_value(kwargs); !x) {
      fail("kwargs: " + error_text(x.error()));
    } else {
      entry.kwargs = std::move(x->as_map());
    }
  }
  if (auto args = node["args"]; args.IsDefined() && !args.IsNull()) {
    if (!args.IsSequence()) {
      fail("args: expected a list, got " + kind_text(args));
    } else if (auto x = to_value(args); !x) {
      fail("args: " + error_text(x.error()));
    } else {
      entry.args = std::move(x->as_array());
    }
  }
}

} // namespace

std::optional<int64_t> cron_timing::tick_at_or_before(int64_t t_ms) const {
  if (every_ms > 0)
    return floor_div(t_ms, every_ms) * every_ms;
  if (cron)
    return crontab_prev(*cron, t_ms);
  return std::nullopt;
}

std::optional<int64_t> cron_timing::tick_after(int64_t t_ms) const {
  if (every_ms > 0)
    return (floor_div(t_ms, every_ms) + 1) * every_ms;
  if (cron)
    return crontab_next(*cron, t_ms);
  return std::nullopt;
}

std::string cron_timing::describe() const {
  if (every_ms > 0)
    return "every " + format_seconds(every_ms) + " s";
  if (cron)
    return "crontab '" + cron->text + "' (UTC)";
  return "never";
}

caf::expected<std::vector<cron_entry>>
parse_cron_schedule(const YAML::Node& node) try {
  std::vector<cron_entry> entries;
  if (!node.IsDefined() || node.IsNull())
    return entries;
  if (!node.IsSequence())
    return caf::make_error(errc::bad_config,
                           "expected a list of entries (each with name, task "
                           "and every or crontab), got "
                             + kind_text(node));
  std::vector<std::string> problems;
  std::set<std::string, std::less<>> names;
  size_t index = 0;
  for (const auto& item : node) {
    ++index;
    auto label = "entry " + std::to_string(index);
    if (!item.IsMap()) {
      problems.push_back(label + ": expected a map with name, task and every "
                                 "or crontab, got "
                         + kind_text(item));
      continue;
    }
    cron_entry entry;
    std::vector<std::string> mine;
    parse_entry(item, entry, mine);
    if (!entry.name.empty()) {
      label += " ('" + entry.name + "')";
      if (!names.insert(entry.name).second)
        mine.push_back("the name '" + entry.name
                       + "' is used by an earlier entry");
    }
    for (auto& p : mine)
      problems.push_back(label + ": " + p);
    if (mine.empty())
      entries.push_back(std::move(entry));
  }
  if (!problems.empty()) {
    std::string text;
    for (auto& p : problems)
      text += (text.empty() ? "" : "; ") + p;
    return caf::make_error(errc::bad_config, std::move(text));
  }
  return entries;
} catch (const std::exception& e) {
  return caf::make_error(errc::bad_config,
                         std::string{"cannot read the schedule: "} + e.what());
}

caf::expected<std::vector<cron_entry>>
cron_schedule_from_config(const config& cfg) {
  return parse_cron_schedule(cfg.get_node("cron.schedule"));
}

cron_decision decide_fire(const cron_timing& timing, int64_t last_ms,
                          int64_t now_ms) {
  cron_decision out;
  out.next = timing.tick_after(now_ms);
  auto due = timing.tick_at_or_before(now_ms);
  if (!due || *due <= last_ms)
    return out;
  out.fire = due;
  if (timing.every_ms > 0) {
    // Ticks strictly between last_ms and due.
    auto first = floor_div(last_ms, timing.every_ms) + 1;
    auto n = *due / timing.every_ms - first;
    out.skipped = static_cast<uint64_t>(
      std::clamp<int64_t>(n, 0, static_cast<int64_t>(max_skipped_count)));
  } else {
    auto t = timing.tick_after(last_ms);
    while (t && *t < *due && out.skipped < max_skipped_count) {
      ++out.skipped;
      t = timing.tick_after(*t);
    }
  }
  return out;
}

outgoing_task make_cron_task(const cron_entry& entry, int64_t tick_ms,
                             int64_t now_us, std::string_view default_queue,
                             std::string_view origin) {
  outgoing_task out;
  out.queue = entry.queue.empty() ? std::string{default_queue} : entry.queue;
  auto& msg = out.msg;
  msg.task = entry.task;
  msg.id = new_uuid4();
  msg.root_id = msg.id;
  msg.correlation_id = msg.id;
  msg.origin = std::string{origin};
  msg.content_type = std::string{content_type_msgpack};
  if (entry.expires > 0)
    msg.expires_us = now_us + static_cast<int64_t>(entry.expires * 1e6);
  msg.argsrepr = to_repr(value{entry.args});
  msg.kwargsrepr = to_repr(value{entry.kwargs});
  msg.body = encode_task_body(entry.args, entry.kwargs, msg.content_type);
  value_map headers;
  headers.emplace_back("vigil_cron_entry", value{entry.name});
  headers.emplace_back("vigil_cron_tick", value{tick_ms});
  msg.extra_headers = encode_json(value{std::move(headers)});
  return out;
}

} // namespace vigil
