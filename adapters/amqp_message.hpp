#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <amqp.h>
#include <amqp_framing.h>

#include <caf/error.hpp>

#include "messages/task_message.hpp"
#include "messages/value.hpp"

namespace vigil {

/// Memory for the rabbitmq-c structures this codec builds (an amqp_pool_t):
/// tables, strings and arrays live until `clear` or destruction.
class amqp_arena {
public:
  amqp_arena();
  ~amqp_arena();
  amqp_arena(const amqp_arena&) = delete;
  amqp_arena& operator=(const amqp_arena&) = delete;

  /// Copies `s` into the arena.
  amqp_bytes_t bytes(std::string_view s);

  /// Room for `n` table entries or field values (uninitialized).
  amqp_table_entry_t* entries(size_t n);
  amqp_field_value_t* fields(size_t n);

  /// Frees everything at once (keeps the pages for reuse).
  void clear();

  /// The pool, for rabbitmq-c calls that allocate (amqp_decode_*).
  amqp_pool_t* pool() { return &pool_; }

private:
  amqp_pool_t pool_;
};

/// Returns `b` as a string_view (rabbitmq-c byte strings are not
/// NUL-terminated).
inline std::string_view to_string_view(amqp_bytes_t b) {
  return b.len == 0 ? std::string_view{}
                    : std::string_view{static_cast<const char*>(b.bytes), b.len};
}

/// Fills `out` with the basic properties a Celery 5.2 producer sets for
/// `msg` (§3.2 of the protocol notes): content_type, content_encoding,
/// delivery_mode 2, priority, correlation_id (the task id unless set),
/// reply_to (if set) and the application headers, with the same header set
/// and order as kombu's Redis envelope (encode_kombu_envelope): lang, task,
/// id, shadow, eta, expires, group, group_index, retries, timelimit,
/// root_id, parent_id, argsrepr, kwargsrepr, origin, ignore_result,
/// vigil_schema (when > 0), then the extra headers.
///
/// Header values use only the field types py-amqp reads back as the same
/// type: S (strings, ISO times), V (null), I (ints within int32), L (other
/// ints, two's complement: py-amqp reads L as signed 64), t, d, A, F.
/// Everything points into `arena`.
void make_amqp_properties(const task_message& msg, amqp_arena& arena,
                          amqp_basic_properties_t& out);

/// Converts a value to a header field with the types above. Bytes become S
/// (as py-amqp writes them); integers above INT64_MAX become d.
void to_amqp_field(const value& x, amqp_arena& arena, amqp_field_value_t& out);

/// Converts a header field to a value. Every integer kind is read: 'l' and
/// 'L' both as signed 64 (py-amqp writes L for signed ints); decimals and
/// float32 become doubles; timestamps become ISO-8601 text; 'x' bytes
/// become bytes.
value from_amqp_field(const amqp_field_value_t& x);

/// Converts a header table to a map (keys in wire order).
value_map from_amqp_table(const amqp_table_t& t);

/// Builds kombu's JSON envelope (as the Redis transport holds it) for a
/// message received over AMQP, so that every backend hands the consumer,
/// the dead letters and replays the same format: body base64, content type
/// and encoding, every header, and properties with correlation_id,
/// reply_to, delivery_mode, priority, `delivery_info` {exchange,
/// routing_key, redelivered}, body_encoding and `delivery_tag`.
std::string amqp_to_kombu_envelope(const amqp_basic_properties_t& props,
                                   std::string_view body,
                                   std::string_view exchange,
                                   std::string_view routing_key,
                                   std::string_view delivery_tag,
                                   bool redelivered);

/// The reverse, for replays: the properties and body a kombu envelope
/// describes (headers converted with `to_amqp_field`, base64 bodies
/// decoded, delivery_mode 2). Text that is not a JSON object becomes the
/// body of a message with no headers, so the bytes survive a round trip.
/// Everything `props` points to is in `arena`.
void kombu_envelope_to_amqp(std::string_view envelope, amqp_arena& arena,
                            amqp_basic_properties_t& props, std::string& body);

} // namespace vigil
