#include "adapters/amqp_properties.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include <amqp.h>
#include <amqp_framing.h>

#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

constexpr int32_t int32_min = std::numeric_limits<int32_t>::min();
constexpr int32_t int32_max = std::numeric_limits<int32_t>::max();

std::string_view view_of(amqp_bytes_t b) {
  return b.len == 0 ? std::string_view{}
                    : std::string_view{static_cast<const char*>(b.bytes), b.len};
}

// rabbitmq-c only reads what a publish points to: no copy is needed.
amqp_bytes_t bytes_of(std::string_view s) {
  if (s.empty())
    return amqp_bytes_t{0, nullptr};
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

template <class T>
T* alloc(amqp_pool_t& pool, size_t n) {
  return static_cast<T*>(amqp_pool_alloc(&pool, std::max<size_t>(1, n)
                                                  * sizeof(T)));
}

void to_field(const value& x, amqp_pool_t& pool, amqp_field_value_t& out);

amqp_table_t to_table(const value_map& m, amqp_pool_t& pool) {
  auto* entries = alloc<amqp_table_entry_t>(pool, m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    entries[i].key = bytes_of(m[i].first);
    to_field(m[i].second, pool, entries[i].value);
  }
  return amqp_table_t{static_cast<int>(m.size()), entries};
}

void to_field(const value& x, amqp_pool_t& pool, amqp_field_value_t& out) {
  switch (x.kind()) {
    case value_kind::nil:
      out.kind = AMQP_FIELD_KIND_VOID;
      return;
    case value_kind::boolean:
      out.kind = AMQP_FIELD_KIND_BOOLEAN;
      out.value.boolean = x.as_bool() ? 1 : 0;
      return;
    case value_kind::integer: {
      auto i = x.as_int();
      if (i >= int32_min && i <= int32_max) {
        out.kind = AMQP_FIELD_KIND_I32;
        out.value.i32 = static_cast<int32_t>(i);
      } else {
        // 'L': py-amqp reads it as signed 64 (rabbitmq-c calls it U64).
        out.kind = AMQP_FIELD_KIND_U64;
        out.value.u64 = static_cast<uint64_t>(i);
      }
      return;
    }
    case value_kind::uinteger:
      // No type code means unsigned 64 to both py-amqp and rabbitmq-c.
      out.kind = AMQP_FIELD_KIND_F64;
      out.value.f64 = x.as_double();
      return;
    case value_kind::real:
      out.kind = AMQP_FIELD_KIND_F64;
      out.value.f64 = x.as_double();
      return;
    case value_kind::text:
      out.kind = AMQP_FIELD_KIND_UTF8;
      out.value.bytes = bytes_of(x.as_text());
      return;
    case value_kind::bytes:
      out.kind = AMQP_FIELD_KIND_UTF8;
      out.value.bytes = bytes_of(x.as_bytes().bytes);
      return;
    case value_kind::array: {
      auto& xs = x.as_array();
      auto* items = alloc<amqp_field_value_t>(pool, xs.size());
      for (size_t i = 0; i < xs.size(); ++i)
        to_field(xs[i], pool, items[i]);
      out.kind = AMQP_FIELD_KIND_ARRAY;
      out.value.array = amqp_array_t{static_cast<int>(xs.size()), items};
      return;
    }
    case value_kind::map:
      out.kind = AMQP_FIELD_KIND_TABLE;
      out.value.table = to_table(x.as_map(), pool);
      return;
  }
  out.kind = AMQP_FIELD_KIND_VOID;
}

value from_field(const amqp_field_value_t& x) {
  switch (x.kind) {
    case AMQP_FIELD_KIND_BOOLEAN:
      return value{x.value.boolean != 0};
    case AMQP_FIELD_KIND_I8:
      return value{int64_t{x.value.i8}};
    case AMQP_FIELD_KIND_U8:
      return value{int64_t{x.value.u8}};
    case AMQP_FIELD_KIND_I16:
      return value{int64_t{x.value.i16}};
    case AMQP_FIELD_KIND_U16:
      return value{int64_t{x.value.u16}};
    case AMQP_FIELD_KIND_I32:
      return value{int64_t{x.value.i32}};
    case AMQP_FIELD_KIND_U32:
      return value{int64_t{x.value.u32}};
    case AMQP_FIELD_KIND_I64:
      return value{x.value.i64};
    case AMQP_FIELD_KIND_U64:
      // py-amqp writes 'L' for signed 64-bit ints.
      return value{static_cast<int64_t>(x.value.u64)};
    case AMQP_FIELD_KIND_F32:
      return value{static_cast<double>(x.value.f32)};
    case AMQP_FIELD_KIND_F64:
      return value{x.value.f64};
    case AMQP_FIELD_KIND_DECIMAL:
      return value{static_cast<double>(x.value.decimal.value)
                   / std::pow(10.0, x.value.decimal.decimals)};
    case AMQP_FIELD_KIND_UTF8:
      return value{view_of(x.value.bytes)};
    case AMQP_FIELD_KIND_BYTES:
      return value{binary{std::string{view_of(x.value.bytes)}}};
    case AMQP_FIELD_KIND_TIMESTAMP:
      return value{
        format_iso8601(static_cast<int64_t>(x.value.u64) * 1000000)};
    case AMQP_FIELD_KIND_TABLE:
      return value{from_native_table(x.value.table)};
    case AMQP_FIELD_KIND_ARRAY: {
      value_array xs;
      xs.reserve(static_cast<size_t>(std::max(0, x.value.array.num_entries)));
      for (int i = 0; i < x.value.array.num_entries; ++i)
        xs.push_back(from_field(x.value.array.entries[i]));
      return value{std::move(xs)};
    }
    default: // void and anything unknown
      return value{};
  }
}

void set_text(amqp_basic_properties_t& out, amqp_flags_t flag,
              amqp_bytes_t& field, const std::optional<std::string>& s) {
  if (!s)
    return;
  out._flags |= flag;
  field = bytes_of(*s);
}

void get_text(const amqp_basic_properties_t& p, amqp_flags_t flag,
              amqp_bytes_t field, std::optional<std::string>& out) {
  if ((p._flags & flag) != 0)
    out.emplace(view_of(field));
}

} // namespace

void to_native_table(const value_map& m, amqp_pool_t_& pool,
                     amqp_table_t_& out) {
  out = to_table(m, pool);
}

value_map from_native_table(const amqp_table_t_& t) {
  value_map out;
  out.reserve(static_cast<size_t>(std::max(0, t.num_entries)));
  for (int i = 0; i < t.num_entries; ++i)
    out.emplace_back(std::piecewise_construct,
                     std::forward_as_tuple(view_of(t.entries[i].key)),
                     std::forward_as_tuple(from_field(t.entries[i].value)));
  return out;
}

void to_native_properties(const amqp_properties& props, amqp_pool_t_& pool,
                          amqp_basic_properties_t_& out) {
  out = amqp_basic_properties_t{};
  set_text(out, AMQP_BASIC_CONTENT_TYPE_FLAG, out.content_type,
           props.content_type);
  set_text(out, AMQP_BASIC_CONTENT_ENCODING_FLAG, out.content_encoding,
           props.content_encoding);
  if (props.headers) {
    out._flags |= AMQP_BASIC_HEADERS_FLAG;
    out.headers = to_table(*props.headers, pool);
  }
  if (props.delivery_mode) {
    out._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
    out.delivery_mode = *props.delivery_mode;
  }
  if (props.priority) {
    out._flags |= AMQP_BASIC_PRIORITY_FLAG;
    out.priority = *props.priority;
  }
  set_text(out, AMQP_BASIC_CORRELATION_ID_FLAG, out.correlation_id,
           props.correlation_id);
  set_text(out, AMQP_BASIC_REPLY_TO_FLAG, out.reply_to, props.reply_to);
  set_text(out, AMQP_BASIC_EXPIRATION_FLAG, out.expiration, props.expiration);
  set_text(out, AMQP_BASIC_MESSAGE_ID_FLAG, out.message_id, props.message_id);
  if (props.timestamp) {
    out._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
    out.timestamp = *props.timestamp;
  }
  set_text(out, AMQP_BASIC_TYPE_FLAG, out.type, props.type);
  set_text(out, AMQP_BASIC_USER_ID_FLAG, out.user_id, props.user_id);
  set_text(out, AMQP_BASIC_APP_ID_FLAG, out.app_id, props.app_id);
  set_text(out, AMQP_BASIC_CLUSTER_ID_FLAG, out.cluster_id, props.cluster_id);
}

amqp_properties from_native_properties(const amqp_basic_properties_t_& p) {
  amqp_properties out;
  auto has = [&](amqp_flags_t flag) { return (p._flags & flag) != 0; };
  get_text(p, AMQP_BASIC_CONTENT_TYPE_FLAG, p.content_type, out.content_type);
  get_text(p, AMQP_BASIC_CONTENT_ENCODING_FLAG, p.content_encoding,
           out.content_encoding);
  if (has(AMQP_BASIC_HEADERS_FLAG))
    out.headers = from_native_table(p.headers);
  if (has(AMQP_BASIC_DELIVERY_MODE_FLAG))
    out.delivery_mode = p.delivery_mode;
  if (has(AMQP_BASIC_PRIORITY_FLAG))
    out.priority = p.priority;
  get_text(p, AMQP_BASIC_CORRELATION_ID_FLAG, p.correlation_id,
           out.correlation_id);
  get_text(p, AMQP_BASIC_REPLY_TO_FLAG, p.reply_to, out.reply_to);
  get_text(p, AMQP_BASIC_EXPIRATION_FLAG, p.expiration, out.expiration);
  get_text(p, AMQP_BASIC_MESSAGE_ID_FLAG, p.message_id, out.message_id);
  if (has(AMQP_BASIC_TIMESTAMP_FLAG))
    out.timestamp = p.timestamp;
  get_text(p, AMQP_BASIC_TYPE_FLAG, p.type, out.type);
  get_text(p, AMQP_BASIC_USER_ID_FLAG, p.user_id, out.user_id);
  get_text(p, AMQP_BASIC_APP_ID_FLAG, p.app_id, out.app_id);
  get_text(p, AMQP_BASIC_CLUSTER_ID_FLAG, p.cluster_id, out.cluster_id);
  return out;
}

std::string encode_amqp_properties(const amqp_properties& props) {
  amqp_pool_t pool;
  init_amqp_pool(&pool, 4096);
  amqp_basic_properties_t native;
  to_native_properties(props, pool, native);
  // A frame's worth: rabbitmq-c refuses what does not fit.
  std::string buf(131072, '\0');
  auto n = amqp_encode_properties(AMQP_BASIC_CLASS, &native,
                                  amqp_bytes_t{buf.size(), buf.data()});
  empty_amqp_pool(&pool);
  buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return buf;
}

caf::expected<amqp_properties> decode_amqp_properties(std::string_view bytes) {
  amqp_pool_t pool;
  init_amqp_pool(&pool, 4096);
  std::string copy{bytes};
  void* decoded = nullptr;
  auto rc = amqp_decode_properties(AMQP_BASIC_CLASS, &pool,
                                   amqp_bytes_t{copy.size(), copy.data()},
                                   &decoded);
  if (rc != AMQP_STATUS_OK || decoded == nullptr) {
    empty_amqp_pool(&pool);
    return caf::make_error(errc::malformed,
                           std::string{"AMQP properties do not decode: "}
                             + amqp_error_string2(rc));
  }
  auto out = from_native_properties(
    *static_cast<amqp_basic_properties_t*>(decoded));
  empty_amqp_pool(&pool);
  return out;
}

} // namespace vigil
