#include "config/config.hpp"

#include "config/text.hpp"

#include <algorithm>
#include <cctype>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <system_error>

#include <unistd.h>

#include "messages/errors.hpp"

namespace vigil {

namespace {

caf::error bad(std::string text) {
  return caf::make_error(errc::bad_config, std::move(text));
}

std::string unknown_key_message(std::string_view key) {
  std::string msg = "unknown key '" + std::string{key} + "'";
  std::vector<std::string_view> known;
  for (const auto& spec : config_schema())
    known.emplace_back(spec.key);
  if (auto best = closest_match(key, known); !best.empty())
    msg += " (did you mean '" + std::string{best} + "'?)";
  return msg;
}

// True if some known key lives under `prefix.`, e.g. "broker".
bool is_section(std::string_view prefix) {
  for (const auto& spec : config_schema())
    if (spec.key.size() > prefix.size() && spec.key.starts_with(prefix)
        && spec.key[prefix.size()] == '.')
      return true;
  return false;
}

// The first known key under `prefix.`, for examples in messages.
std::string first_key_in(std::string_view prefix) {
  for (const auto& spec : config_schema())
    if (spec.key.size() > prefix.size() && spec.key.starts_with(prefix)
        && spec.key[prefix.size()] == '.')
      return spec.key;
  return std::string{prefix};
}

// Null, "~" and "" all mean "use the default".
bool is_empty_value(const YAML::Node& node) {
  return !node.IsDefined() || node.IsNull()
         || (node.IsScalar() && node.Scalar().empty());
}

std::string parser_error_text(const YAML::ParserException& e) {
  if (e.mark.is_null())
    return e.msg;
  return "line " + std::to_string(e.mark.line + 1) + ", column "
         + std::to_string(e.mark.column + 1) + ": " + e.msg;
}

std::string kind_text(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a single value";
    default: return "something else";
  }
}

std::string trim(std::string_view s) {
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  };
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return std::string{s};
}

// "a, b,c" -> [a, b, c], for list values given in an environment variable.
YAML::Node split_list(const std::string& text) {
  YAML::Node seq(YAML::NodeType::Sequence);
  size_t begin = 0;
  while (begin <= text.size()) {
    auto end = text.find(',', begin);
    if (end == std::string::npos)
      end = text.size();
    seq.push_back(trim(std::string_view{text}.substr(begin, end - begin)));
    begin = end + 1;
  }
  return seq;
}

std::string join_messages(const std::vector<config_problem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty())
      out += '\n';
    out += p.message;
  }
  return out;
}

} // namespace

config::config() {
  for (const auto& spec : config_schema())
    slots_.emplace(spec.key, slot{default_value(spec), "default"});
}

config config::defaults() {
  return config{};
}

const config::slot* config::find(std::string_view key) const {
  auto i = slots_.find(key);
  return i == slots_.end() ? nullptr : &i->second;
}

std::vector<config_problem>
config::build(const std::string& yaml_text,
              const std::map<std::string, std::string>& env, config& out) {
  std::vector<config_problem> problems;
  // Stores a value (or the default, for an empty one) under `spec.key`, or
  // records why not. `label` is how messages name the key.
  auto assign = [&](const key_spec& spec, const YAML::Node& node,
                    const std::string& label, const char* source) {
    auto& target = out.slots_[spec.key];
    if (is_empty_value(node)) {
      target = slot{default_value(spec), source};
      return;
    }
    auto parsed = parse_value(spec, node);
    if (!parsed) {
      problems.push_back({spec.key, label + ": " + error_text(parsed.error())});
      return;
    }
    target = slot{std::move(*parsed), source};
  };
  try {
    // 1. The file.
    YAML::Node root;
    bool parsed_ok = true;
    try {
      root = YAML::Load(yaml_text);
    } catch (const YAML::ParserException& e) {
      problems.push_back({"", "invalid YAML: " + parser_error_text(e)});
      parsed_ok = false;
    }
    if (parsed_ok && !is_empty_value(root) && !root.IsMap()) {
      problems.push_back({"", "the configuration must be a map of keys to "
                              "values, got "
                                + kind_text(root)});
    } else if (parsed_ok && root.IsMap()) {
      // Flat keys and nested sections may name the same key twice.
      std::set<std::string, std::less<>> seen;
      std::function<void(const YAML::Node&, const std::string&)> walk;
      walk = [&](const YAML::Node& map, const std::string& prefix) {
        for (const auto& kv : map) {
          if (!kv.first.IsScalar()) {
            problems.push_back(
              {prefix, "keys must be plain names, got "
                         + kind_text(kv.first) + " as a key"
                         + (prefix.empty() ? "" : " in section '" + prefix
                                                    + "'")});
            continue;
          }
          auto name = prefix.empty() ? kv.first.Scalar()
                                     : prefix + "." + kv.first.Scalar();
          if (const auto* spec = find_key_spec(name)) {
            if (!seen.insert(name).second) {
              problems.push_back(
                {name, name + ": the key is given more than once"});
              continue;
            }
            assign(*spec, kv.second, name, "file");
          } else if (kv.second.IsMap() && kv.second.size() > 0) {
            walk(kv.second, name);
          } else if (is_empty_value(kv.second) || kv.second.IsMap()) {
            // An empty section ("broker:" with every key commented out).
            if (!is_section(name))
              problems.push_back({name, unknown_key_message(name)});
          } else if (is_section(name)) {
            problems.push_back(
              {name, "'" + name + "' is a section: expected a map of its keys"
                       + " (like '" + first_key_in(name) + "'), got "
                       + kind_text(kv.second)});
          } else {
            problems.push_back({name, unknown_key_message(name)});
          }
        }
      };
      walk(root, "");
    }
    // 2. The environment. Unmatched VIGIL_* variables belong to other tools.
    for (const auto& spec : config_schema()) {
      auto var = env_name(spec.key);
      auto i = env.find(var);
      if (i == env.end())
        continue;
      auto label = var + " (" + spec.key + ")";
      const auto& text = i->second;
      YAML::Node node;
      if (spec.type == key_type::string || spec.type == key_type::choice
          || spec.type == key_type::url) {
        // Taken verbatim: YAML would mangle values with '#', ": " or quotes.
        node = YAML::Node(text);
      } else {
        try {
          node = YAML::Load(text);
        } catch (const YAML::ParserException& e) {
          problems.push_back(
            {spec.key, label + ": not valid YAML: " + parser_error_text(e)});
          continue;
        }
        if (spec.type == key_type::list && node.IsScalar()
            && node.Tag() == "?" && !node.Scalar().empty())
          node = split_list(node.Scalar());
      }
      assign(spec, node, label, "env");
    }
    // 3. Keys that exclude each other.
    if (out.get_bool("mail.use-tls") && out.get_bool("mail.use-ssl"))
      problems.push_back(
        {"mail.use-ssl", "mail.use-ssl: mail.use-tls is on too; choose one "
                         "(use-tls: STARTTLS on a plain port such as 587; "
                         "use-ssl: TLS from the first byte, port 465)"});
    // 4. Keys that need another.
    if (out.get_bool("mail.enable-replies")
        && out.get_string("system.secret-key").size() < 16)
      problems.push_back(
        {"system.secret-key",
         "system.secret-key: mail.enable-replies signs reply addresses "
         "with it; set a secret of at least 16 characters"});
    if (out.get_string("metrics.backend") == "datadog") {
      const YAML::Node opts = out.get_node("metrics.options");
      const YAML::Node key = opts.IsMap() ? opts["api-key"] : YAML::Node{};
      if (!key || !key.IsScalar() || key.Scalar().empty())
        problems.push_back({"metrics.options",
                            "metrics.options: api-key: required with "
                            "metrics.backend datadog"});
    }
  } catch (const std::exception& e) {
    problems.push_back(
      {"", std::string{"cannot read the configuration: "} + e.what()});
  } catch (...) {
    problems.push_back({"", "cannot read the configuration"});
  }
  return problems;
}

caf::expected<config>
config::load(const std::string& path,
             const std::map<std::string, std::string>& env) {
  namespace fs = std::filesystem;
  try {
    std::string file = path;
    std::error_code ec;
    if (file.empty()) {
      if (!fs::exists("config.yml", ec))
        return from_yaml("", env);
      file = "config.yml";
    }
    auto status = fs::status(file, ec);
    if (!fs::exists(status))
      return bad("config file '" + file + "' does not exist");
    if (fs::is_directory(status))
      return bad("config file '" + file + "' is a directory");
    std::ifstream in(file, std::ios::binary);
    if (!in)
      return bad("cannot open config file '" + file + "'");
    std::string text{std::istreambuf_iterator<char>{in},
                     std::istreambuf_iterator<char>{}};
    if (in.bad())
      return bad("cannot read config file '" + file + "'");
    return from_yaml(text, env);
  } catch (const std::exception& e) {
    return bad(std::string{"cannot load the configuration: "} + e.what());
  }
}

caf::expected<config>
config::from_yaml(const std::string& yaml_text,
                  const std::map<std::string, std::string>& env) {
  try {
    config out;
    auto problems = build(yaml_text, env, out);
    if (!problems.empty())
      return bad(join_messages(problems));
    return out;
  } catch (const std::exception& e) {
    return bad(std::string{"cannot read the configuration: "} + e.what());
  }
}

std::vector<config_problem>
config::validate(const std::string& yaml_text,
                 const std::map<std::string, std::string>& env) {
  try {
    config scratch;
    return build(yaml_text, env, scratch);
  } catch (const std::exception& e) {
    return {{"", std::string{"cannot read the configuration: "} + e.what()}};
  }
}

std::string config::get_string(std::string_view key) const {
  auto s = find(key);
  return s != nullptr && s->value.set ? s->value.text : std::string{};
}

int64_t config::get_int(std::string_view key) const {
  auto s = find(key);
  return s != nullptr ? s->value.integer : 0;
}

double config::get_double(std::string_view key) const {
  auto s = find(key);
  return s != nullptr ? s->value.number : 0;
}

bool config::get_bool(std::string_view key) const {
  auto s = find(key);
  return s != nullptr && s->value.boolean;
}

std::vector<std::string>
config::get_string_list(std::string_view key) const {
  auto s = find(key);
  return s != nullptr ? s->value.items : std::vector<std::string>{};
}

YAML::Node config::get_node(std::string_view key) const {
  auto s = find(key);
  if (s == nullptr || !s->value.set)
    return YAML::Node{YAML::NodeType::Null};
  try {
    return YAML::Clone(s->value.node);
  } catch (...) {
    return YAML::Node{YAML::NodeType::Null};
  }
}

bool config::is_set(std::string_view key) const {
  auto s = find(key);
  return s != nullptr && s->value.set;
}

std::string config::display(std::string_view key) const {
  auto spec = find_key_spec(key);
  auto s = find(key);
  if (spec == nullptr || s == nullptr)
    return "";
  return display_value(*spec, s->value);
}

caf::expected<void> config::set(std::string_view key,
                                const std::string& yaml_value) {
  try {
    auto spec = find_key_spec(key);
    if (spec == nullptr)
      return bad(unknown_key_message(key));
    YAML::Node node;
    try {
      node = YAML::Load(yaml_value);
    } catch (const YAML::ParserException& e) {
      return bad(spec->key + ": not valid YAML: " + parser_error_text(e));
    }
    if (is_empty_value(node)) {
      slots_[spec->key] = slot{default_value(*spec), "set"};
      return caf::unit;
    }
    auto parsed = parse_value(*spec, node);
    if (!parsed)
      return bad(spec->key + ": " + error_text(parsed.error()));
    slots_[spec->key] = slot{std::move(*parsed), "set"};
    return caf::unit;
  } catch (const std::exception& e) {
    return bad(std::string{key} + ": " + e.what());
  }
}

std::string config::source(std::string_view key) const {
  auto s = find(key);
  return s != nullptr ? s->source : std::string{};
}

std::string mask_url(std::string_view url) {
  constexpr std::string_view stars = "********";
  std::string out{url};
  auto sep = out.find("://");
  if (sep == std::string::npos)
    return out;
  auto rest = sep + 3;
  // The password ends at the last '@' before any query, so an unescaped '@'
  // or '/' inside it is still masked.
  auto query = out.find_first_of("?#", rest);
  auto at = out.rfind('@', query == std::string::npos ? query : query - 1);
  if (at != std::string::npos && at >= rest) {
    auto colon = out.find(':', rest);
    if (colon != std::string::npos && colon + 1 < at)
      out.replace(colon + 1, at - colon - 1, stars);
  }
  // redis://host/0?password=secret
  auto q = out.find('?', rest);
  while (q != std::string::npos && q < out.size()) {
    auto name_begin = q + 1;
    auto eq = out.find('=', name_begin);
    auto next = out.find_first_of("&#", name_begin);
    if (eq == std::string::npos || (next != std::string::npos && eq > next)) {
      q = next;
      continue;
    }
    std::string name;
    for (auto i = name_begin; i < eq; ++i)
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(out[i])));
    auto value_end = next == std::string::npos ? out.size() : next;
    if ((name == "password" || name == "pass") && value_end > eq + 1) {
      out.replace(eq + 1, value_end - eq - 1, stars);
      value_end = eq + 1 + stars.size();
    }
    if (value_end >= out.size() || out[value_end] == '#')
      break;
    q = value_end;
  }
  return out;
}

std::string env_name(std::string_view key) {
  std::string out = "VIGIL_";
  for (char c : key) {
    if (c == '.' || c == '-')
      out += '_';
    else if (c >= 'a' && c <= 'z')
      out += static_cast<char>(c - 'a' + 'A');
    else
      out += c;
  }
  return out;
}

std::map<std::string, std::string> vigil_environment() {
  std::map<std::string, std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr;
       ++entry) {
    std::string_view text{*entry};
    if (!text.starts_with("VIGIL_"))
      continue;
    auto eq = text.find('=');
    if (eq == std::string_view::npos)
      continue;
    out.emplace(std::string{text.substr(0, eq)},
                std::string{text.substr(eq + 1)});
  }
  return out;
}

} // namespace vigil
