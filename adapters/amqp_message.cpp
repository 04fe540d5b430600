#include "adapters/amqp_message.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <simdjson.h>

#include "messages/base64.hpp"
#include "messages/clock.hpp"
#include "messages/json_codec.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

constexpr int32_t int32_min = std::numeric_limits<int32_t>::min();
constexpr int32_t int32_max = std::numeric_limits<int32_t>::max();

// Builds one header table in wire order.
class table_builder {
public:
  table_builder(amqp_arena& arena, size_t capacity)
    : arena_(arena), entries_(arena.entries(capacity)), capacity_(capacity) {
    // nop
  }

  amqp_field_value_t& add(std::string_view key) {
    auto& e = entries_[size_++];
    e.key = arena_.bytes(key);
    return e.value;
  }

  void text(std::string_view key, std::string_view s) {
    auto& v = add(key);
    v.kind = AMQP_FIELD_KIND_UTF8;
    v.value.bytes = arena_.bytes(s);
  }

  void text_or_void(std::string_view key, std::string_view s) {
    if (s.empty())
      add(key).kind = AMQP_FIELD_KIND_VOID;
    else
      text(key, s);
  }

  void time_or_void(std::string_view key, int64_t us) {
    if (us == 0)
      add(key).kind = AMQP_FIELD_KIND_VOID;
    else
      text(key, format_iso8601(us));
  }

  void int32(std::string_view key, int32_t x) {
    auto& v = add(key);
    v.kind = AMQP_FIELD_KIND_I32;
    v.value.i32 = x;
  }

  void boolean(std::string_view key, bool x) {
    auto& v = add(key);
    v.kind = AMQP_FIELD_KIND_BOOLEAN;
    v.value.boolean = x ? 1 : 0;
  }

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

  amqp_table_t table() const {
    return amqp_table_t{static_cast<int>(size_), entries_};
  }

private:
  amqp_arena& arena_;
  amqp_table_entry_t* entries_;
  size_t capacity_;
  size_t size_ = 0;
};

void limit_field(double x, amqp_field_value_t& out) {
  if (x <= 0) {
    out.kind = AMQP_FIELD_KIND_VOID;
  } else {
    out.kind = AMQP_FIELD_KIND_F64;
    out.value.f64 = x;
  }
}

// Strings in JSON must be valid UTF-8: invalid bytes become U+FFFD.
void append_safe_string(std::string& out, std::string_view s) {
  append_json_text(out, s);
}

void append_field_json(std::string& out, const amqp_field_value_t& x);

void append_table_json(std::string& out, const amqp_table_t& t) {
  out += '{';
  for (int i = 0; i < t.num_entries; ++i) {
    if (i > 0)
      out += ", ";
    append_safe_string(out, to_string_view(t.entries[i].key));
    out += ": ";
    append_field_json(out, t.entries[i].value);
  }
  out += '}';
}

void append_int(std::string& out, int64_t x) {
  out += std::to_string(x);
}

void append_field_json(std::string& out, const amqp_field_value_t& x) {
  switch (x.kind) {
    case AMQP_FIELD_KIND_BOOLEAN:
      out += x.value.boolean ? "true" : "false";
      return;
    case AMQP_FIELD_KIND_I8:
      return append_int(out, x.value.i8);
    case AMQP_FIELD_KIND_U8:
      return append_int(out, x.value.u8);
    case AMQP_FIELD_KIND_I16:
      return append_int(out, x.value.i16);
    case AMQP_FIELD_KIND_U16:
      return append_int(out, x.value.u16);
    case AMQP_FIELD_KIND_I32:
      return append_int(out, x.value.i32);
    case AMQP_FIELD_KIND_U32:
      return append_int(out, x.value.u32);
    case AMQP_FIELD_KIND_I64:
      return append_int(out, x.value.i64);
    case AMQP_FIELD_KIND_U64:
      // py-amqp writes 'L' for signed 64-bit ints.
      return append_int(out, static_cast<int64_t>(x.value.u64));
    case AMQP_FIELD_KIND_F32:
      return append_json_number(out, static_cast<double>(x.value.f32));
    case AMQP_FIELD_KIND_F64:
      return append_json_number(out, x.value.f64);
    case AMQP_FIELD_KIND_DECIMAL:
      return append_json_number(out, from_amqp_field(x).as_double());
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
      return append_safe_string(out, to_string_view(x.value.bytes));
    case AMQP_FIELD_KIND_TIMESTAMP:
      out += '"';
      out += format_iso8601(static_cast<int64_t>(x.value.u64) * 1000000);
      out += '"';
      return;
    case AMQP_FIELD_KIND_TABLE:
      return append_table_json(out, x.value.table);
    case AMQP_FIELD_KIND_ARRAY:
      out += '[';
      for (int i = 0; i < x.value.array.num_entries; ++i) {
        if (i > 0)
          out += ", ";
        append_field_json(out, x.value.array.entries[i]);
      }
      out += ']';
      return;
    default: // void and anything unknown
      out += "null";
  }
}

const std::string* text_of(const value_map& m, std::string_view key) {
  for (auto& [k, v] : m)
    if (k == key)
      return v.is_text() ? &v.as_text() : nullptr;
  return nullptr;
}

const value* find_in(const value_map& m, std::string_view key) {
  for (auto& [k, v] : m)
    if (k == key)
      return &v;
  return nullptr;
}

void set_bytes(amqp_arena& arena, amqp_basic_properties_t& props,
               amqp_flags_t flag, amqp_bytes_t& field, const std::string* s) {
  if (s == nullptr)
    return;
  props._flags |= flag;
  field = arena.bytes(*s);
}

amqp_table_t to_amqp_table(const value_map& m, amqp_arena& arena) {
  auto* entries = arena.entries(m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    entries[i].key = arena.bytes(m[i].first);
    to_amqp_field(m[i].second, arena, entries[i].value);
  }
  return amqp_table_t{static_cast<int>(m.size()), entries};
}

} // namespace

// -- amqp_arena ---------------------------------------------------------------

amqp_arena::amqp_arena() {
  init_amqp_pool(&pool_, 4096);
}

amqp_arena::~amqp_arena() {
  empty_amqp_pool(&pool_);
}

amqp_bytes_t amqp_arena::bytes(std::string_view s) {
  amqp_bytes_t out{0, nullptr};
  if (s.empty())
    return out;
  amqp_pool_alloc_bytes(&pool_, s.size(), &out);
  if (out.bytes != nullptr)
    std::memcpy(out.bytes, s.data(), s.size());
  else
    out.len = 0;
  return out;
}

amqp_table_entry_t* amqp_arena::entries(size_t n) {
  return static_cast<amqp_table_entry_t*>(
    amqp_pool_alloc(&pool_, std::max<size_t>(1, n) * sizeof(amqp_table_entry_t)));
}

amqp_field_value_t* amqp_arena::fields(size_t n) {
  return static_cast<amqp_field_value_t*>(
    amqp_pool_alloc(&pool_, std::max<size_t>(1, n) * sizeof(amqp_field_value_t)));
}

void amqp_arena::clear() {
  recycle_amqp_pool(&pool_);
}

// -- task_message -> properties ------------------------------------------------

void make_amqp_properties(const task_message& msg, amqp_arena& arena,
                          amqp_basic_properties_t& out) {
  out = amqp_basic_properties_t{};
  out._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG
               | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG
               | AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
  out.content_type = arena.bytes(msg.content_type);
  out.content_encoding = arena.bytes(msg.content_encoding);
  out.delivery_mode = 2;
  out.priority = static_cast<uint8_t>(std::clamp(msg.priority, 0, 255));
  out.correlation_id = arena.bytes(msg.correlation_id.empty()
                                     ? msg.id
                                     : msg.correlation_id);
  if (!msg.reply_to.empty()) {
    out._flags |= AMQP_BASIC_REPLY_TO_FLAG;
    out.reply_to = arena.bytes(msg.reply_to);
  }
  value extra;
  if (msg.extra_headers.size() > 2) {
    auto parsed = decode_json(msg.extra_headers);
    if (parsed && parsed->is_map())
      extra = std::move(*parsed);
  }
  auto n_extra = extra.is_map() ? extra.as_map().size() : 0;
  table_builder t{arena, 17 + n_extra};
  t.text("lang", "cpp");
  t.text("task", msg.task);
  t.text("id", msg.id);
  t.text_or_void("shadow", msg.shadow);
  t.time_or_void("eta", msg.eta_us);
  t.time_or_void("expires", msg.expires_us);
  t.text_or_void("group", msg.group);
  t.add("group_index").kind = AMQP_FIELD_KIND_VOID;
  t.int32("retries", msg.retries);
  {
    auto& limits = t.add("timelimit");
    auto* items = arena.fields(2);
    limit_field(msg.time_limit, items[0]);
    limit_field(msg.soft_time_limit, items[1]);
    limits.kind = AMQP_FIELD_KIND_ARRAY;
    limits.value.array = amqp_array_t{2, items};
  }
  t.text("root_id", msg.root_id.empty() ? msg.id : msg.root_id);
  t.text_or_void("parent_id", msg.parent_id);
  t.text("argsrepr", msg.argsrepr);
  t.text("kwargsrepr", msg.kwargsrepr);
  t.text("origin", msg.origin);
  t.boolean("ignore_result", msg.ignore_result);
  if (msg.schema_version > 0)
    t.int32("vigil_schema", msg.schema_version);
  if (n_extra > 0)
    for (auto& [key, val] : extra.as_map())
      to_amqp_field(val, arena, t.add(key));
  out.headers = t.table();
}

// -- values <-> fields ----------------------------------------------------------

void to_amqp_field(const value& x, amqp_arena& arena, amqp_field_value_t& out) {
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
      out.value.bytes = arena.bytes(x.as_text());
      return;
    case value_kind::bytes:
      out.kind = AMQP_FIELD_KIND_UTF8;
      out.value.bytes = arena.bytes(x.as_bytes().bytes);
      return;
    case value_kind::array: {
      auto& xs = x.as_array();
      auto* items = arena.fields(xs.size());
      for (size_t i = 0; i < xs.size(); ++i)
        to_amqp_field(xs[i], arena, items[i]);
      out.kind = AMQP_FIELD_KIND_ARRAY;
      out.value.array = amqp_array_t{static_cast<int>(xs.size()), items};
      return;
    }
    case value_kind::map:
      out.kind = AMQP_FIELD_KIND_TABLE;
      out.value.table = to_amqp_table(x.as_map(), arena);
      return;
  }
  out.kind = AMQP_FIELD_KIND_VOID;
}

value from_amqp_field(const amqp_field_value_t& x) {
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
      return value{static_cast<int64_t>(x.value.u64)};
    case AMQP_FIELD_KIND_F32:
      return value{static_cast<double>(x.value.f32)};
    case AMQP_FIELD_KIND_F64:
      return value{x.value.f64};
    case AMQP_FIELD_KIND_DECIMAL:
      return value{static_cast<double>(x.value.decimal.value)
                   / std::pow(10.0, x.value.decimal.decimals)};
    case AMQP_FIELD_KIND_UTF8:
      return value{std::string{to_string_view(x.value.bytes)}};
    case AMQP_FIELD_KIND_BYTES:
      return value{binary{std::string{to_string_view(x.value.bytes)}}};
    case AMQP_FIELD_KIND_TIMESTAMP:
      return value{
        format_iso8601(static_cast<int64_t>(x.value.u64) * 1000000)};
    case AMQP_FIELD_KIND_TABLE:
      return value{from_amqp_table(x.value.table)};
    case AMQP_FIELD_KIND_ARRAY: {
      value_array xs;
      xs.reserve(static_cast<size_t>(std::max(0, x.value.array.num_entries)));
      for (int i = 0; i < x.value.array.num_entries; ++i)
        xs.push_back(from_amqp_field(x.value.array.entries[i]));
      return value{std::move(xs)};
    }
    default:
      return value{};
  }
}

value_map from_amqp_table(const amqp_table_t& t) {
  value_map out;
  out.reserve(static_cast<size_t>(std::max(0, t.num_entries)));
  for (int i = 0; i < t.num_entries; ++i)
    out.emplace_back(std::string{to_string_view(t.entries[i].key)},
                     from_amqp_field(t.entries[i].value));
  return out;
}

// -- AMQP message <-> kombu envelope --------------------------------------------

std::string amqp_to_kombu_envelope(const amqp_basic_properties_t& props,
                                   std::string_view body,
                                   std::string_view exchange,
                                   std::string_view routing_key,
                                   std::string_view delivery_tag,
                                   bool redelivered) {
  auto has = [&](amqp_flags_t flag) { return (props._flags & flag) != 0; };
  std::string out;
  out.reserve(body.size() * 4 / 3 + 1024);
  out += "{\"body\": \"";
  out += base64_encode(body);
  out += "\", \"content-encoding\": ";
  if (has(AMQP_BASIC_CONTENT_ENCODING_FLAG))
    append_safe_string(out, to_string_view(props.content_encoding));
  else
    out += "null";
  out += ", \"content-type\": ";
  if (has(AMQP_BASIC_CONTENT_TYPE_FLAG))
    append_safe_string(out, to_string_view(props.content_type));
  else
    out += "null";
  out += ", \"headers\": ";
  if (has(AMQP_BASIC_HEADERS_FLAG))
    append_table_json(out, props.headers);
  else
    out += "{}";
  out += ", \"properties\": {";
  if (has(AMQP_BASIC_CORRELATION_ID_FLAG)) {
    out += "\"correlation_id\": ";
    append_safe_string(out, to_string_view(props.correlation_id));
    out += ", ";
  }
  if (has(AMQP_BASIC_REPLY_TO_FLAG)) {
    out += "\"reply_to\": ";
    append_safe_string(out, to_string_view(props.reply_to));
    out += ", ";
  }
  if (has(AMQP_BASIC_EXPIRATION_FLAG)) {
    out += "\"expiration\": ";
    append_safe_string(out, to_string_view(props.expiration));
    out += ", ";
  }
  out += "\"delivery_mode\": ";
  out += std::to_string(has(AMQP_BASIC_DELIVERY_MODE_FLAG)
                          ? int{props.delivery_mode}
                          : 2);
  out += ", \"delivery_info\": {\"exchange\": ";
  append_safe_string(out, exchange);
  out += ", \"routing_key\": ";
  append_safe_string(out, routing_key);
  out += ", \"redelivered\": ";
  out += redelivered ? "true" : "false";
  out += "}, \"priority\": ";
  out += std::to_string(has(AMQP_BASIC_PRIORITY_FLAG) ? int{props.priority}
                                                       : 0);
  out += ", \"body_encoding\": \"base64\", \"delivery_tag\": ";
  append_safe_string(out, delivery_tag);
  out += "}}";
  return out;
}

void kombu_envelope_to_amqp(std::string_view envelope, amqp_arena& arena,
                            amqp_basic_properties_t& props, std::string& body) {
  props = amqp_basic_properties_t{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = 2;
  auto parsed = decode_json(envelope);
  if (!parsed || !parsed->is_map()) {
    body.assign(envelope.data(), envelope.size());
    return;
  }
  auto& env = parsed->as_map();
  const value_map* properties = nullptr;
  if (auto* p = find_in(env, "properties"); p != nullptr && p->is_map())
    properties = &p->as_map();
  std::string body_encoding;
  if (properties != nullptr)
    if (auto* s = text_of(*properties, "body_encoding"))
      body_encoding = *s;
  body.clear();
  if (auto* text = text_of(env, "body")) {
    auto decoded = body_encoding == "base64" ? base64_decode(*text)
                                             : caf::expected<std::string>{*text};
    body = decoded ? std::move(*decoded) : *text;
  }
  set_bytes(arena, props, AMQP_BASIC_CONTENT_TYPE_FLAG, props.content_type,
            text_of(env, "content-type"));
  set_bytes(arena, props, AMQP_BASIC_CONTENT_ENCODING_FLAG,
            props.content_encoding, text_of(env, "content-encoding"));
  if (auto* h = find_in(env, "headers"); h != nullptr && h->is_map()) {
    // kombu's restore marks; AMQP carries redelivery in the delivery itself.
    value_map headers;
    for (auto& [k, v] : h->as_map())
      if (k != "redelivered")
        headers.emplace_back(k, v);
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = to_amqp_table(headers, arena);
  }
  if (properties == nullptr)
    return;
  set_bytes(arena, props, AMQP_BASIC_CORRELATION_ID_FLAG, props.correlation_id,
            text_of(*properties, "correlation_id"));
  set_bytes(arena, props, AMQP_BASIC_REPLY_TO_FLAG, props.reply_to,
            text_of(*properties, "reply_to"));
  if (auto* p = find_in(*properties, "priority"); p != nullptr && p->is_int()) {
    props._flags |= AMQP_BASIC_PRIORITY_FLAG;
    props.priority = static_cast<uint8_t>(std::clamp<int64_t>(p->as_int(), 0,
                                                             255));
  }
}

} // namespace vigil
