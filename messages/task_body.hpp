#pragma once

#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "messages/value.hpp"

namespace vigil {

/// Content types a task body may be serialized in.
inline constexpr std::string_view content_type_msgpack = "application/x-msgpack";
inline constexpr std::string_view content_type_json = "application/json";

/// The decoded body of a protocol v2 task message: `[args, kwargs, embed]`.
struct task_body {
  value_array args;
  value_map kwargs;
  /// callbacks / errbacks / chain / chord, kept as sent (nil or a map).
  value embed;
};

/// Decodes a body serialized as `content_type` (msgpack or JSON). Fails with
/// errc::malformed when the bytes do not decode or the shape is not
/// `[list, dict, dict-or-nil]`, and errc::unsupported for other content types.
caf::expected<task_body> decode_task_body(std::string_view bytes,
                                          std::string_view content_type);

/// Serializes `[args, kwargs, embed]` as `content_type`; an empty embed is
/// written as Celery writes it (callbacks, errbacks, chain, chord all nil).
std::string encode_task_body(const value_array& args, const value_map& kwargs,
                             std::string_view content_type,
                             const value& embed = {});

/// Serializes any value as `content_type` (msgpack, else JSON).
std::string encode_as(const value& x, std::string_view content_type);

} // namespace vigil
