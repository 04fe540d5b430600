#include "messages/task_body.hpp"

#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/msgpack_codec.hpp"

namespace vigil {

namespace {

bool is_msgpack(std::string_view ct) {
  return ct == content_type_msgpack || ct == "application/msgpack"
         || ct == "application/x-msgpack; charset=binary";
}

bool is_json(std::string_view ct) {
  return ct == content_type_json || ct.substr(0, 17) == "application/json;";
}

value default_embed() {
  return value_map{{"callbacks", nullptr},
                   {"errbacks", nullptr},
                   {"chain", nullptr},
                   {"chord", nullptr}};
}

} // namespace

caf::expected<task_body> decode_task_body(std::string_view bytes,
                                          std::string_view content_type) {
  caf::expected<value> doc{value{}};
  if (is_msgpack(content_type))
    doc = decode_msgpack(bytes);
  else if (is_json(content_type))
    doc = decode_json(bytes);
  else
    return caf::make_error(errc::unsupported,
                           "unsupported content type '"
                             + std::string{content_type.substr(0, 64)}
                             + "' (expected application/x-msgpack or "
                               "application/json)");
  if (!doc)
    return caf::make_error(errc::malformed,
                           "body does not decode: " + error_text(doc.error()));
  if (!doc->is_array() || doc->as_array().size() < 2
      || doc->as_array().size() > 3)
    return caf::make_error(errc::malformed,
                           "body must be [args, kwargs, embed], got "
                             + to_repr(*doc, 80));
  auto& parts = doc->as_array();
  task_body out;
  if (parts[0].is_array())
    out.args = std::move(parts[0].as_array());
  else if (!parts[0].is_nil())
    return caf::make_error(errc::malformed, "body args must be a list, got "
                                              + to_repr(parts[0], 80));
  if (parts[1].is_map())
    out.kwargs = std::move(parts[1].as_map());
  else if (!parts[1].is_nil())
    return caf::make_error(errc::malformed, "body kwargs must be a dict, got "
                                              + to_repr(parts[1], 80));
  if (parts.size() == 3)
    out.embed = std::move(parts[2]);
  return out;
}

std::string encode_task_body(const value_array& args, const value_map& kwargs,
                             std::string_view content_type,
                             const value& embed) {
  value doc{value_array{value{args}, value{kwargs},
                        embed.is_nil() ? default_embed() : embed}};
  return encode_as(doc, content_type);
}

std::string encode_as(const value& x, std::string_view content_type) {
  if (is_json(content_type))
    return encode_json(x);
  return encode_msgpack(x);
}

} // namespace vigil
