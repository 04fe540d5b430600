#pragma once

// vigil's AMQP properties to and from rabbitmq-c's, and to and from the
// bytes of a content header.
//
// Header (and x-argument) values use only the field types py-amqp reads
// back as the same type: S (strings, and bytes, as py-amqp writes them), V
// (null), I (integers within int32), L (other integers, two's complement:
// py-amqp reads L as signed 64), t, d (doubles, and integers above
// INT64_MAX, which no type code carries to both py-amqp and rabbitmq-c), A
// and F. Reading accepts every field type: 'l' and 'L' both as signed 64,
// the other integer kinds as integers, decimals and float32 as doubles,
// timestamps as ISO-8601 text and 'x' byte arrays as bytes.

#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "adapters/amqp_types.hpp"

// rabbitmq-c's structures, for the adapter's own .cpp files (which include
// <amqp.h>); includers of this header never need them.
struct amqp_basic_properties_t_;
struct amqp_field_value_t_;
struct amqp_pool_t_;
struct amqp_table_t_;

namespace vigil {

/// The content-header property bytes rabbitmq-c writes for `props` (the
/// property flags and the properties, as after the body size on the wire).
std::string encode_amqp_properties(const amqp_properties& props);

/// Reads property bytes as `encode_amqp_properties` (or py-amqp) writes
/// them.
caf::expected<amqp_properties> decode_amqp_properties(std::string_view bytes);

// -- for the adapter's .cpp files --------------------------------------------

/// Fills rabbitmq-c's properties from `props`; everything `out` points to
/// lives in `pool` (or in `props`, which must outlive `out`'s use).
void to_native_properties(const amqp_properties& props, amqp_pool_t_& pool,
                          amqp_basic_properties_t_& out);

/// Reads rabbitmq-c's properties (copying every string).
amqp_properties from_native_properties(const amqp_basic_properties_t_& p);

/// A value map as a field table (queue and exchange arguments); memory from
/// `pool`.
void to_native_table(const value_map& m, amqp_pool_t_& pool,
                     amqp_table_t_& out);

/// A field table as a value map, keys in wire order.
value_map from_native_table(const amqp_table_t_& t);

} // namespace vigil
