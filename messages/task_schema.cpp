#include "messages/task_schema.hpp"

#include "messages/errors.hpp"

namespace vigil {

namespace {

bool accepts(param_type t, const value& x) {
  switch (t) {
    case param_type::any: return true;
    case param_type::boolean: return x.is_bool();
    case param_type::integer: return x.is_int();
    case param_type::number: return x.is_number();
    case param_type::text: return x.is_text();
    case param_type::bytes: return x.is_bytes() || x.is_text();
    case param_type::list: return x.is_array();
    case param_type::dict: return x.is_map();
  }
  return false;
}

const value nil_value;

} // namespace

const char* to_string(param_type t) {
  switch (t) {
    case param_type::any: return "any";
    case param_type::boolean: return "bool";
    case param_type::integer: return "int";
    case param_type::number: return "float";
    case param_type::text: return "str";
    case param_type::bytes: return "bytes";
    case param_type::list: return "list";
    case param_type::dict: return "dict";
  }
  return "?";
}

param_spec required(std::string name, param_type type) {
  return param_spec{std::move(name), type, true, value{}, false};
}

param_spec optional(std::string name, param_type type, value default_value) {
  bool nullable = default_value.is_nil();
  return param_spec{std::move(name), type, false, std::move(default_value),
                    nullable};
}

const value& bound_args::get(std::string_view name) const {
  for (auto& [k, v] : values)
    if (k == name)
      return v;
  return nil_value;
}

int64_t bound_args::get_int(std::string_view name) const {
  auto& x = get(name);
  return x.is_number() ? x.as_int() : 0;
}

double bound_args::get_double(std::string_view name) const {
  auto& x = get(name);
  return x.is_number() ? x.as_double() : 0.0;
}

caf::expected<bound_args> bind_arguments(const task_schema& schema,
                                         value_array args, value_map kwargs,
                                         int32_t message_version) {
  if (message_version > 0)
    for (auto v = message_version; v < schema.version; ++v)
      if (auto i = schema.upgraders.find(v); i != schema.upgraders.end())
        i->second(args, kwargs);
  auto& params = schema.params;
  if (args.size() > params.size())
    return caf::make_error(errc::malformed,
                           schema.name + "() takes "
                             + std::to_string(params.size())
                             + " positional arguments but "
                             + std::to_string(args.size()) + " were given");
  bound_args out;
  out.values.reserve(params.size());
  std::vector<bool> present(params.size(), false);
  for (size_t i = 0; i < params.size(); ++i) {
    if (i < args.size()) {
      out.values.emplace_back(params[i].name, std::move(args[i]));
      present[i] = true;
    } else {
      out.values.emplace_back(params[i].name, value{});
    }
  }
  for (auto& [key, val] : kwargs) {
    size_t i = 0;
    while (i < params.size() && params[i].name != key)
      ++i;
    if (i == params.size()) {
      out.extra.emplace_back(key, std::move(val));
      continue;
    }
    if (present[i])
      return caf::make_error(errc::malformed,
                             schema.name + "() got multiple values for "
                                           "argument '" + key + "'");
    out.values[i].second = std::move(val);
    present[i] = true;
  }
  for (size_t i = 0; i < params.size(); ++i) {
    auto& p = params[i];
    auto& slot = out.values[i].second;
    if (!present[i]) {
      if (p.required)
        return caf::make_error(errc::missing_field,
                               schema.name + "() missing required argument '"
                                 + p.name + "'");
      slot = p.default_value;
      continue;
    }
    if (slot.is_nil() && p.nullable)
      continue;
    if (!accepts(p.type, slot))
      return caf::make_error(errc::wrong_type,
                             "argument '" + p.name + "' of " + schema.name
                               + " must be " + to_string(p.type) + ", got "
                               + to_string(slot.kind()) + " ("
                               + to_repr(slot, 60) + ")");
  }
  return out;
}

} // namespace vigil
