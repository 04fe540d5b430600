#pragma once

#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "messages/task_message.hpp"

namespace vigil {

/// The separator kombu puts between a queue name and its priority bucket.
inline constexpr std::string_view kombu_priority_sep = "\x06\x16";

/// Returns the Redis list that holds `queue`'s messages of `priority`:
/// kombu's buckets [0, 3, 6, 9] give "q", "q\x06\x163", "q\x06\x166" and
/// "q\x06\x169"; priorities are clamped to 0..9.
std::string kombu_queue_key(std::string_view queue, int priority);

/// Encodes `msg` as kombu's Redis envelope: a JSON object with the base64
/// body, `content-type`, `content-encoding`, `headers` and `properties`
/// (with `delivery_info` and `delivery_tag`), as a Python Celery worker
/// expects it on the list.
std::string encode_kombu_envelope(const task_message& msg,
                                  std::string_view queue,
                                  std::string_view delivery_tag);

/// Decodes a kombu Redis envelope. Fails with errc::malformed (bad JSON or
/// base64, missing `task`/`id` header or `delivery_tag`, unparsable
/// `eta`/`expires`) and a reason that names the field.
caf::expected<delivery> decode_kombu_envelope(std::string_view json);

/// Extracts `properties.delivery_tag` from an envelope that may be too
/// broken to decode; empty if none can be found.
std::string find_delivery_tag(std::string_view json);

/// Returns `envelope` with `headers.redelivered` and
/// `properties.delivery_info.redelivered` set, as kombu's restore does.
caf::expected<std::string> mark_redelivered(std::string_view envelope);

} // namespace vigil
