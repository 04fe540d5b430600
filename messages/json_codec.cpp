#include "messages/json_codec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <simdjson.h>

#include "messages/base64.hpp"
#include "messages/errors.hpp"
#include "messages/json_parser.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

// -- decoding -----------------------------------------------------------------

namespace {

namespace dom = simdjson::dom;

/// Ceiling on the nesting depth whatever the limits say: simdjson allocates
/// per-level state and the conversion below recurses once per level.
constexpr size_t depth_ceiling = 1024;

caf::error depth_error(size_t max_depth) {
  return caf::make_error(errc::too_large, "JSON nesting deeper than "
                                            + std::to_string(max_depth));
}

class converter {
public:
  converter(size_t max_depth, size_t max_elements)
    : max_depth_(max_depth), max_elements_(max_elements) {
    // nop
  }

  /// Converts `el`; `depth` is the nesting level of the enclosing container.
  bool convert(dom::element el, value& out, size_t depth) {
    switch (el.type()) {
      case dom::element_type::ARRAY: {
        dom::array arr;
        if (el.get_array().get(arr) != simdjson::SUCCESS)
          return fail_internal();
        if (!admit(depth + 1, arr.size()))
          return false;
        value_array xs;
        xs.reserve(arr.size());
        for (dom::element child : arr)
          if (!convert(child, xs.emplace_back(), depth + 1))
            return false;
        out = value{std::move(xs)};
        return true;
      }
      case dom::element_type::OBJECT: {
        dom::object obj;
        if (el.get_object().get(obj) != simdjson::SUCCESS)
          return fail_internal();
        if (!admit(depth + 1, obj.size()))
          return false;
        value_map xs;
        xs.reserve(obj.size());
        for (dom::key_value_pair field : obj) {
          auto& kvp = xs.emplace_back();
          kvp.first.assign(field.key.data(), field.key.size());
          if (!convert(field.value, kvp.second, depth + 1))
            return false;
        }
        detail::merge_duplicate_keys(xs);
        out = value{std::move(xs)};
        return true;
      }
      case dom::element_type::INT64: {
        int64_t x = 0;
        if (el.get_int64().get(x) != simdjson::SUCCESS)
          return fail_internal();
        out = value{x};
        return true;
      }
      case dom::element_type::UINT64: {
        uint64_t x = 0;
        if (el.get_uint64().get(x) != simdjson::SUCCESS)
          return fail_internal();
        out = value{x};
        return true;
      }
      case dom::element_type::DOUBLE: {
        double x = 0;
        if (el.get_double().get(x) != simdjson::SUCCESS)
          return fail_internal();
        out = value{x};
        return true;
      }
      case dom::element_type::STRING: {
        std::string_view x;
        if (el.get_string().get(x) != simdjson::SUCCESS)
          return fail_internal();
        out = value{x};
        return true;
      }
      case dom::element_type::BOOL: {
        bool x = false;
        if (el.get_bool().get(x) != simdjson::SUCCESS)
          return fail_internal();
        out = value{x};
        return true;
      }
      case dom::element_type::NULL_VALUE: out = value{}; return true;
    }
    return fail_internal();
  }

  caf::error err;

private:
  bool admit(size_t depth, size_t count) {
    if (depth > max_depth_) {
      err = depth_error(max_depth_);
      return false;
    }
    // simdjson parsed the whole document already, so count is real, not
    // merely declared: this only enforces the element budget.
    if (count > max_elements_ - elements_) {
      err = caf::make_error(errc::too_large,
                            "JSON document has more than "
                              + std::to_string(max_elements_)
                              + " array elements and object members");
      return false;
    }
    elements_ += count;
    return true;
  }

  bool fail_internal() {
    err = caf::make_error(errc::malformed,
                          "JSON element has an unexpected type");
    return false;
  }

  size_t max_depth_;
  size_t max_elements_;
  size_t elements_ = 0;
};

caf::expected<value> decode_json_impl(std::string_view text,
                                      const decode_limits& limits) {
  thread_local dom::parser parser;
  auto max_depth = std::min(limits.max_depth, depth_ceiling);
  // One level of slack so that our own check reports over-deep documents.
  auto parser_depth = max_depth + 1;
  if (auto err = fit_json_parser(parser, text.size(), parser_depth))
    return err;
  // Give back the buffers of an unusually large document on every path.
  json_parser_release guard{parser};
  dom::element root;
  auto ec = parser.parse(text.data(), text.size()).get(root);
  if (ec != simdjson::SUCCESS) {
    if (ec == simdjson::DEPTH_ERROR)
      return depth_error(max_depth);
    return caf::make_error(errc::malformed,
                           std::string{"invalid JSON: "}
                             + simdjson::error_message(ec));
  }
  converter conv{max_depth, limits.max_elements};
  value result;
  if (!conv.convert(root, result, 0))
    return std::move(conv.err);
  return result;
}

} // namespace

caf::expected<value> decode_json(std::string_view text,
                                 const decode_limits& limits) {
  if (text.size() > limits.max_bytes)
    return caf::make_error(errc::too_large,
                           "JSON document of " + std::to_string(text.size())
                             + " bytes exceeds the limit of "
                             + std::to_string(limits.max_bytes));
  try {
    return decode_json_impl(text, limits);
  } catch (const std::exception&) {
    // simdjson reports errors by code; only allocation failures end up here.
    return caf::make_error(errc::too_large,
                           "out of memory decoding JSON document");
  }
}

// -- encoding -----------------------------------------------------------------

namespace {

template <class T>
void put_integer(std::string& out, T x) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  out.append(buf, res.ptr);
}

void put_value(std::string& out, const value& x) {
  const auto& d = x.data();
  switch (x.kind()) {
    case value_kind::nil: out += "null"; return;
    case value_kind::boolean: out += x.as_bool() ? "true" : "false"; return;
    case value_kind::integer: put_integer(out, std::get<int64_t>(d)); return;
    case value_kind::uinteger: put_integer(out, std::get<uint64_t>(d)); return;
    case value_kind::real: {
      auto f = std::get<double>(d);
      // Python's json.dumps spelling of the values JSON lacks.
      if (std::isnan(f))
        out += "NaN";
      else if (std::isinf(f))
        out += f < 0 ? "-Infinity" : "Infinity";
      else
        append_python_float(out, f);
      return;
    }
    case value_kind::text: append_json_string(out, x.as_text()); return;
    case value_kind::bytes:
      out += '"';
      out += base64_encode(x.as_bytes().bytes);
      out += '"';
      return;
    case value_kind::array: {
      out += '[';
      bool first = true;
      for (const auto& y : x.as_array()) {
        if (!first)
          out += ',';
        first = false;
        put_value(out, y);
      }
      out += ']';
      return;
    }
    case value_kind::map: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : x.as_map()) {
        if (!first)
          out += ',';
        first = false;
        append_json_string(out, k);
        out += ':';
        put_value(out, v);
      }
      out += '}';
      return;
    }
  }
}

} // namespace

void encode_json(const value& x, std::string& out) {
  put_value(out, x);
}

std::string encode_json(const value& x) {
  std::string out;
  out.reserve(64);
  put_value(out, x);
  return out;
}

} // namespace vigil
