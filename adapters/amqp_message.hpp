#pragma once

#include <string>
#include <string_view>

#include "adapters/amqp_types.hpp"
#include "messages/task_message.hpp"

namespace vigil {

/// Whether make_amqp_properties writes Celery's unset optional headers as
/// nulls, as Celery does, or leaves them out, as vigil publishes them (see
/// drop_null_headers).
enum class null_headers { keep, drop };

/// The basic properties a Celery 5.2 producer sets for `msg` (§3.2 of the
/// protocol notes): content_type, content_encoding, delivery_mode 2,
/// priority, correlation_id (the task id unless set), reply_to (if set) and
/// the application headers, with the same header set and order as kombu's
/// Redis envelope (encode_kombu_envelope): lang, task, id, shadow, eta,
/// expires, group, group_index, retries, timelimit, root_id, parent_id,
/// argsrepr, kwargsrepr, origin, ignore_result, vigil_schema (when > 0),
/// then the extra headers. Unset optional headers are nulls, as Celery
/// writes them; times are ISO-8601 text, `timelimit` a pair of doubles or
/// nulls. With null_headers::drop the result is that of drop_null_headers,
/// built without the nulls in the first place.
amqp_properties make_amqp_properties(const task_message& msg,
                                     null_headers nulls = null_headers::keep);

/// Removes the null entries (and arrays of nulls only, such as an unset
/// `timelimit`) from `props.headers`, in place. Celery 5 workers read every
/// optional header with a default (`shadow` only if present), so a missing
/// null means the same as a present one; RabbitMQ decodes and copies every
/// header of every message between its processes, and six to seven nulls
/// of Celery's seventeen headers cost it about a sixth of its CPU per task.
void drop_null_headers(amqp_properties& props);

/// Builds kombu's JSON envelope (as the Redis transport holds it) for a
/// message received over AMQP, so that every backend hands the consumer,
/// the dead letters and replays the same format: body base64, content type
/// and encoding, every header, and properties with correlation_id,
/// reply_to, delivery_mode, priority, `delivery_info` {exchange,
/// routing_key, redelivered}, body_encoding and `delivery_tag`.
std::string kombu_envelope_from_amqp(const amqp_properties& props,
                                     std::string_view body,
                                     std::string_view exchange,
                                     std::string_view routing_key,
                                     std::string_view delivery_tag,
                                     bool redelivered);

/// The reverse, for replays: the properties and body a kombu envelope
/// describes (every header but kombu's `redelivered` mark, base64 bodies
/// decoded, delivery_mode 2). Text that is not a JSON object becomes the
/// body of a message with no headers, so the bytes survive a round trip.
void kombu_envelope_to_amqp(std::string_view envelope, amqp_properties& props,
                            std::string& body);

} // namespace vigil
