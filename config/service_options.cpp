#include "config/service_options.hpp"

#include "config/config.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

caf::error bad(std::string text) {
  return caf::make_error(errc::bad_config, std::move(text));
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty())
    return false;
  size_t used = 0;
  try {
    out = std::stoll(s, &used, 10);
  } catch (const std::exception&) {
    return false;
  }
  return used == s.size();
}

} // namespace

int64_t service_options::integer(std::string_view name) const {
  auto it = integers.find(name);
  return it == integers.end() ? 0 : it->second;
}

const std::string& service_options::text(std::string_view name) const {
  static const std::string none;
  auto it = texts.find(name);
  return it == texts.end() ? none : it->second;
}

caf::expected<service_options>
parse_service_options(const YAML::Node& node, std::string_view key,
                      const std::vector<service_option_field>& fields) {
  service_options out;
  for (const auto& f : fields) {
    if (f.text)
      out.texts.emplace(std::string{f.name}, std::string{f.fallback_text});
    else
      out.integers.emplace(std::string{f.name}, f.fallback);
  }
  if (!node || node.IsNull())
    return out;
  (void) key;
  std::string prefix;
  if (!node.IsMap())
    return bad("expected a map");
  for (const auto& entry : node) {
    auto name = entry.first.IsScalar() ? entry.first.Scalar() : std::string{};
    const service_option_field* field = nullptr;
    for (const auto& f : fields)
      if (f.name == name)
        field = &f;
    if (!field) {
      std::string known;
      for (const auto& f : fields)
        known += (known.empty() ? "" : ", ") + std::string{f.name};
      return bad(prefix + name + ": unknown option (expected one of "
                 + known + ")");
    }
    const auto& v = entry.second;
    if (!v.IsScalar())
      return bad(prefix + name + ": expected "
                 + (field->text ? std::string{"a string"}
                                : std::string{"an integer"}));
    if (field->text) {
      out.texts[name] = v.Scalar();
      continue;
    }
    int64_t x = 0;
    if (!parse_int(v.Scalar(), x) || x < field->min || x > field->max)
      return bad(prefix + name + ": expected an integer in ["
                 + std::to_string(field->min) + ", "
                 + std::to_string(field->max) + "], got '" + v.Scalar()
                 + "'");
    out.integers[name] = x;
  }
  return out;
}

caf::expected<service_options>
read_service_options(const config& cfg, std::string_view key,
                     const std::vector<service_option_field>& fields) {
  auto out = parse_service_options(cfg.get_node(key), key, fields);
  if (!out)
    return bad(std::string{key} + ": " + error_text(out.error()));
  return out;
}

const std::vector<service_option_field>& buffer_option_fields() {
  static const std::vector<service_option_field> fields{
    {.name = "cluster", .text = true, .fallback_text = "default"},
    {.name = "pending-partitions", .fallback = 1, .min = 1, .max = 1024},
    {.name = "incr-batch-size", .fallback = 2, .min = 1, .max = 10000},
    {.name = "local-flush-ms", .fallback = 100, .min = 1, .max = 60000},
  };
  return fields;
}

const std::vector<service_option_field>& tsdb_option_fields() {
  static const std::vector<service_option_field> fields{
    {.name = "cluster", .text = true, .fallback_text = "default"},
  };
  return fields;
}

const std::vector<service_option_field>& filestore_option_fields() {
  static const std::vector<service_option_field> fields{
    {.name = "location", .text = true},
    {.name = "access_key", .text = true},
    {.name = "secret_key", .text = true},
    {.name = "bucket_name", .text = true},
    {.name = "endpoint_url", .text = true},
    {.name = "region", .text = true, .fallback_text = "us-east-1"},
    {.name = "default_acl", .text = true, .fallback_text = "public-read"},
  };
  return fields;
}

const std::vector<service_option_field>& digests_option_fields() {
  static const std::vector<service_option_field> fields{
    {.name = "cluster", .text = true, .fallback_text = "default"},
    {.name = "ttl", .fallback = 3600, .min = 60, .max = 30 * 86400},
  };
  return fields;
}

} // namespace vigil
