// AMQP task messages: the content-header properties and header table vigil
// writes are byte-for-byte what py-amqp writes for Celery 5.2 (golden bytes
// below), what py-amqp wrote decodes, header field types stay within the
// codes py-amqp reads back as the same type, and a message survives AMQP ->
// kombu envelope -> AMQP unchanged.

#include <catch2/catch.hpp>

#include <limits>

#include "adapters/amqp.hpp"
#include "adapters/amqp_message.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/task_body.hpp"

using namespace vigil;

namespace {

// Basic content-header properties of a Celery 5.2.6 task message as py-amqp
// 5.1.1 serializes them (celery-fixtures/amqp_properties_example.out, 392
// bytes): property flags fe00, content_type, content_encoding, the header
// table, delivery_mode 2, priority 0, correlation_id, reply_to.
constexpr std::string_view py_amqp_properties_hex =
  "fe00156170706c69636174696f6e2f782d6d73677061636b0662696e6172790000011904"
  "6c616e6753000000027079047461736b530000000870726f6a2e61646402696453000000"
  "2465656565656565652d303030302d303030302d303030302d3030303030303030303030"
  "3106736861646f775603657461560765787069726573560567726f7570560b67726f7570"
  "5f696e64657856077265747269657349000000000974696d656c696d6974410000000256"
  "5607726f6f745f6964530000002465656565656565652d303030302d303030302d303030"
  "302d30303030303030303030303109706172656e745f69645608617267737265707253"
  "0000000628322c2033290a6b77617267737265707253000000027b7d066f726967696e53"
  "0000000967656e3140686f73740d69676e6f72655f726573756c74740002002465656565"
  "656565652d303030302d303030302d303030302d303030303030303030303031246434"
  "6563316661372d363866642d333837352d623532342d613930663461366232383239";

constexpr std::string_view fixture_id = "eeeeeeee-0000-0000-0000-000000000001";
constexpr std::string_view fixture_reply_to
  = "d4ec1fa7-68fd-3875-b524-a90f4a6b2829";

std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) {
    return c <= '9' ? c - '0' : c - 'a' + 10;
  };
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
  return out;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto c : bytes) {
    auto u = static_cast<unsigned char>(c);
    out += digits[u >> 4];
    out += digits[u & 0xf];
  }
  return out;
}

std::string replace_once(std::string s, std::string_view from,
                         std::string_view to) {
  auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  s.replace(pos, from.size(), to);
  return s;
}

// Encodes properties the way rabbitmq-c puts them on the wire.
std::string encode_properties(amqp_basic_properties_t& props) {
  std::string buf(65536, '\0');
  amqp_bytes_t out{buf.size(), buf.data()};
  auto n = amqp_encode_properties(AMQP_BASIC_CLASS, &props, out);
  REQUIRE(n > 0);
  buf.resize(static_cast<size_t>(n));
  return buf;
}

amqp_basic_properties_t decode_properties(std::string& bytes,
                                          amqp_arena& arena) {
  void* decoded = nullptr;
  amqp_bytes_t in{bytes.size(), bytes.data()};
  REQUIRE(amqp_decode_properties(AMQP_BASIC_CLASS, arena.pool(), in, &decoded)
          == 0);
  return *static_cast<amqp_basic_properties_t*>(decoded);
}

const amqp_field_value_t* find_field(const amqp_table_t& t,
                                     std::string_view key) {
  for (int i = 0; i < t.num_entries; ++i)
    if (to_string_view(t.entries[i].key) == key)
      return &t.entries[i].value;
  return nullptr;
}

char kind_of(const amqp_table_t& t, std::string_view key) {
  auto* f = find_field(t, key);
  REQUIRE(f != nullptr);
  return static_cast<char>(f->kind);
}

// The task py-amqp's bytes describe, as a vigil task message.
task_message fixture_task() {
  task_message msg;
  msg.task = "proj.add";
  msg.id = std::string{fixture_id};
  msg.root_id = msg.id;
  msg.correlation_id = msg.id;
  msg.reply_to = std::string{fixture_reply_to};
  msg.argsrepr = "(2, 3)";
  msg.kwargsrepr = "{}";
  msg.origin = "gen1@host";
  return msg;
}

task_message rich_task() {
  task_message msg;
  msg.task = "vigil.echo";
  msg.id = new_uuid4();
  msg.root_id = new_uuid4();
  msg.parent_id = new_uuid4();
  msg.group = new_uuid4();
  msg.shadow = "shadowed";
  msg.retries = 3;
  msg.eta_us = *parse_iso8601("2026-11-23T03:30:55.607329+00:00");
  msg.expires_us = *parse_iso8601("2026-11-23T03:31:45.607329+00:00");
  msg.time_limit = 30;
  msg.soft_time_limit = 20.5;
  msg.ignore_result = true;
  msg.argsrepr = "('café',)";
  msg.kwargsrepr = "{'k': 1}";
  msg.origin = "vigil@host";
  msg.schema_version = 2;
  msg.extra_headers = R"({"custom": [1, "x", null, true, 2.5], )"
                      R"("big": 9007199254740993, "neg": -5, )"
                      R"("nested": {"a": {"b": "c"}}})";
  msg.correlation_id = msg.id;
  msg.reply_to = "reply-here";
  msg.priority = 7;
  msg.body = encode_task_body({value{"café"}}, {{"k", value{1}}},
                              content_type_msgpack);
  return msg;
}

} // namespace

TEST_CASE("py-amqp's Celery properties decode to a task message",
          "[amqp][message]") {
  auto bytes = from_hex(py_amqp_properties_hex);
  REQUIRE(bytes.size() == 392);
  amqp_arena arena;
  auto props = decode_properties(bytes, arena);
  CHECK(props._flags == 0xfe00);
  auto& h = props.headers;
  CHECK(kind_of(h, "lang") == 'S');
  CHECK(kind_of(h, "shadow") == 'V');
  CHECK(kind_of(h, "retries") == 'I');
  CHECK(kind_of(h, "timelimit") == 'A');
  CHECK(kind_of(h, "ignore_result") == 't');
  auto env = amqp_to_kombu_envelope(props, "\x93\x90\x80\x80", "", "celery",
                                    "5@abc", false);
  auto d = decode_kombu_envelope(env);
  REQUIRE(d);
  CHECK(d->tag == "5@abc");
  CHECK(d->queue == "celery");
  CHECK_FALSE(d->redelivered);
  auto& msg = d->msg;
  CHECK(msg.task == "proj.add");
  CHECK(msg.id == fixture_id);
  CHECK(msg.root_id == fixture_id);
  CHECK(msg.parent_id.empty());
  CHECK(msg.shadow.empty());
  CHECK(msg.retries == 0);
  CHECK(msg.eta_us == 0);
  CHECK(msg.expires_us == 0);
  CHECK(msg.time_limit == 0);
  CHECK(msg.soft_time_limit == 0);
  CHECK_FALSE(msg.ignore_result);
  CHECK(msg.argsrepr == "(2, 3)");
  CHECK(msg.kwargsrepr == "{}");
  CHECK(msg.origin == "gen1@host");
  CHECK(msg.extra_headers.empty());
  CHECK(msg.correlation_id == fixture_id);
  CHECK(msg.reply_to == fixture_reply_to);
  CHECK(msg.content_type == "application/x-msgpack");
  CHECK(msg.content_encoding == "binary");
  CHECK(msg.priority == 0);
  CHECK(msg.body == "\x93\x90\x80\x80");
}

TEST_CASE("vigil writes the properties py-amqp writes for Celery",
          "[amqp][message]") {
  // The same bytes, except that vigil says lang "cpp" (the table grows by
  // one byte, 0x119 -> 0x11a).
  auto expected = replace_once(std::string{py_amqp_properties_hex},
                               "046c616e675300000002" "7079",
                               "046c616e675300000003" "637070");
  expected = replace_once(expected, "0662696e61727900000119",
                          "0662696e6172790000011a");
  amqp_arena arena;
  amqp_basic_properties_t props;
  make_amqp_properties(fixture_task(), arena, props);
  CHECK(to_hex(encode_properties(props)) == expected);
}

TEST_CASE("header fields use only types py-amqp reads back unchanged",
          "[amqp][message]") {
  constexpr auto i32_max = std::numeric_limits<int32_t>::max();
  constexpr auto i32_min = std::numeric_limits<int32_t>::min();
  constexpr auto i64_min = std::numeric_limits<int64_t>::min();
  value_map m{
    {"s", value{"café"}},
    {"b", value{binary{std::string{"\x00\x01", 2}}}},
    {"t", value{true}},
    {"f", value{false}},
    {"n", value{}},
    {"i32max", value{int64_t{i32_max}}},
    {"i32min", value{int64_t{i32_min}}},
    {"neg", value{int64_t{-5}}},
    {"big", value{int64_t{i32_max} + 1}},
    {"i64min", value{i64_min}},
    {"u64", value{uint64_t{18446744073709551615ull}}},
    {"d", value{1.5}},
    {"a", value{value_array{value{1}, value{"x"}, value{}}}},
    {"m", value{value_map{{"k", value{value_array{}}}}}},
  };
  amqp_arena arena;
  amqp_field_value_t table_field;
  to_amqp_field(value{m}, arena, table_field);
  REQUIRE(table_field.kind == AMQP_FIELD_KIND_TABLE);
  auto& t = table_field.value.table;
  std::string allowed = "SItdVAFL";
  for (int i = 0; i < t.num_entries; ++i) {
    INFO(to_string_view(t.entries[i].key));
    CHECK(allowed.find(static_cast<char>(t.entries[i].value.kind))
          != std::string::npos);
  }
  CHECK(kind_of(t, "s") == 'S');
  CHECK(kind_of(t, "b") == 'S');
  CHECK(kind_of(t, "t") == 't');
  CHECK(kind_of(t, "n") == 'V');
  CHECK(kind_of(t, "i32max") == 'I');
  CHECK(kind_of(t, "i32min") == 'I');
  CHECK(kind_of(t, "neg") == 'I');
  CHECK(kind_of(t, "big") == 'L');
  CHECK(kind_of(t, "i64min") == 'L');
  CHECK(kind_of(t, "u64") == 'd');
  CHECK(kind_of(t, "d") == 'd');
  CHECK(kind_of(t, "a") == 'A');
  CHECK(kind_of(t, "m") == 'F');
  // Through the wire encoding and back.
  std::string buf(4096, '\0');
  size_t offset = 0;
  REQUIRE(amqp_encode_table(amqp_bytes_t{buf.size(), buf.data()}, &t, &offset)
          == 0);
  buf.resize(offset);
  // 'L' holds two's complement: -2^63 is 80 00 .. 00, as py-amqp's
  // pack('>q') writes it.
  CHECK(to_hex(buf).find(to_hex(std::string{"\x06i64minL\x80\0\0\0\0\0\0\0", 16}))
        != std::string::npos);
  amqp_table_t back;
  size_t read = 0;
  REQUIRE(amqp_decode_table(amqp_bytes_t{buf.size(), buf.data()},
                            arena.pool(), &back, &read)
          == 0);
  auto got = from_amqp_table(back);
  auto want = m;
  want[1].second = value{std::string{"\x00\x01", 2}}; // bytes travel as S
  want[10].second = value{18446744073709551615.0};
  CHECK(value{got} == value{want});
}

TEST_CASE("64-bit header ints decode as signed, 'l' and 'L' alike",
          "[amqp][message]") {
  amqp_field_value_t f;
  f.kind = AMQP_FIELD_KIND_U64; // 'L' from py-amqp: signed
  f.value.u64 = static_cast<uint64_t>(int64_t{-5});
  CHECK(from_amqp_field(f) == value{int64_t{-5}});
  f.kind = AMQP_FIELD_KIND_I64; // 'l' from rabbitmq-c producers
  f.value.i64 = -7;
  CHECK(from_amqp_field(f) == value{int64_t{-7}});
  f.kind = AMQP_FIELD_KIND_U32;
  f.value.u32 = 4000000000u;
  CHECK(from_amqp_field(f) == value{int64_t{4000000000}});
  f.kind = AMQP_FIELD_KIND_I8;
  f.value.i8 = -3;
  CHECK(from_amqp_field(f) == value{int64_t{-3}});
  f.kind = AMQP_FIELD_KIND_F32;
  f.value.f32 = 0.5f;
  CHECK(from_amqp_field(f) == value{0.5});
  f.kind = AMQP_FIELD_KIND_DECIMAL;
  f.value.decimal = amqp_decimal_t{2, 12345};
  CHECK(from_amqp_field(f) == value{123.45});
}

TEST_CASE("a task message survives AMQP -> kombu envelope -> AMQP",
          "[amqp][message]") {
  auto msg = rich_task();
  amqp_arena arena;
  amqp_basic_properties_t props;
  make_amqp_properties(msg, arena, props);
  CHECK(kind_of(props.headers, "retries") == 'I');
  CHECK(kind_of(props.headers, "timelimit") == 'A');
  CHECK(kind_of(props.headers, "eta") == 'S');
  CHECK(kind_of(props.headers, "vigil_schema") == 'I');
  CHECK(kind_of(props.headers, "big") == 'L');
  auto wire = encode_properties(props);

  // Received (through the wire bytes), as the broker hands it out.
  amqp_arena arena2;
  auto received = decode_properties(wire, arena2);
  auto env = amqp_to_kombu_envelope(received, msg.body, "", "q", "9@abc",
                                    true);
  auto d = decode_kombu_envelope(env);
  REQUIRE(d);
  CHECK(d->redelivered);
  CHECK(d->queue == "q");
  auto& got = d->msg;
  CHECK(got.task == msg.task);
  CHECK(got.id == msg.id);
  CHECK(got.root_id == msg.root_id);
  CHECK(got.parent_id == msg.parent_id);
  CHECK(got.group == msg.group);
  CHECK(got.shadow == msg.shadow);
  CHECK(got.retries == 3);
  CHECK(got.eta_us == msg.eta_us);
  CHECK(got.expires_us == msg.expires_us);
  CHECK(got.time_limit == 30);
  CHECK(got.soft_time_limit == 20.5);
  CHECK(got.ignore_result);
  CHECK(got.argsrepr == msg.argsrepr);
  CHECK(got.kwargsrepr == msg.kwargsrepr);
  CHECK(got.origin == msg.origin);
  CHECK(got.schema_version == 2);
  CHECK(*decode_json(got.extra_headers) == *decode_json(msg.extra_headers));
  CHECK(got.correlation_id == msg.id);
  CHECK(got.reply_to == "reply-here");
  CHECK(got.priority == 7);
  CHECK(got.body == msg.body);

  // Replaying that envelope publishes the same bytes again, and so does
  // vigil's own kombu envelope of the message (both paths agree).
  for (auto& envelope : {env, encode_kombu_envelope(msg, "q", "tag")}) {
    amqp_arena arena3;
    amqp_basic_properties_t again;
    std::string body;
    kombu_envelope_to_amqp(envelope, arena3, again, body);
    CHECK(body == msg.body);
    CHECK(to_hex(encode_properties(again)) == to_hex(wire));
  }
}

TEST_CASE("text that is no kombu envelope replays as a headerless body",
          "[amqp][message]") {
  amqp_arena arena;
  amqp_basic_properties_t props;
  std::string body;
  kombu_envelope_to_amqp("this is not an envelope", arena, props, body);
  CHECK(body == "this is not an envelope");
  CHECK((props._flags & AMQP_BASIC_HEADERS_FLAG) == 0);
  // Received again, it is an envelope without a task header: decoding names
  // what is missing, and the original bytes are in the body.
  auto env = amqp_to_kombu_envelope(props, body, "", "q", "1@x", false);
  auto d = decode_kombu_envelope(env);
  REQUIRE_FALSE(d);
  CHECK(error_text(d.error()).find("'task'") != std::string::npos);
  amqp_basic_properties_t again;
  std::string body2;
  kombu_envelope_to_amqp(env, arena, again, body2);
  CHECK(body2 == "this is not an envelope");
}

TEST_CASE("headers with invalid UTF-8 still give a valid envelope",
          "[amqp][message]") {
  amqp_arena arena;
  task_message msg;
  msg.task = "vigil.echo";
  msg.id = "id-1";
  msg.argsrepr = "\xff\xfe broken";
  amqp_basic_properties_t props;
  make_amqp_properties(msg, arena, props);
  auto env = amqp_to_kombu_envelope(props, "", "", "q", "1@x", false);
  auto d = decode_kombu_envelope(env);
  REQUIRE(d);
  CHECK(d->msg.task == "vigil.echo");
  CHECK(d->msg.argsrepr.find("broken") != std::string::npos);
}

TEST_CASE("amqp URLs parse as kombu reads them", "[amqp][url]") {
  auto ep = parse_amqp_url("amqp://guest:guest@127.0.0.1:5673/%2F");
  REQUIRE(ep);
  CHECK(ep->host == "127.0.0.1");
  CHECK(ep->port == 5673);
  CHECK(ep->username == "guest");
  CHECK(ep->password == "guest");
  CHECK(ep->vhost == "/");
  CHECK(ep->prefetch == 256);
  CHECK(to_string(*ep) == "amqp://guest@127.0.0.1:5673/%2F");
  CHECK(parse_amqp_url("amqp://rabbit")->vhost == "/");
  CHECK(parse_amqp_url("amqp://rabbit")->port == 5672);
  CHECK(parse_amqp_url("amqp://rabbit/")->vhost == "/");
  CHECK(parse_amqp_url("amqp://rabbit//")->vhost == "/");
  CHECK(parse_amqp_url("amqp://rabbit/prod")->vhost == "prod");
  CHECK(parse_amqp_url("amqp://rabbit/a%2Fb")->vhost == "a/b");
  auto tricky = parse_amqp_url("amqp://u%40x:p@ss/w@rabbit:1234/v?prefetch=8&heartbeat=0");
  REQUIRE(tricky);
  CHECK(tricky->username == "u@x");
  CHECK(tricky->password == "p@ss/w");
  CHECK(tricky->host == "rabbit");
  CHECK(tricky->port == 1234);
  CHECK(tricky->vhost == "v");
  CHECK(tricky->prefetch == 8);
  CHECK(tricky->heartbeat == 0);
  auto bad_port = parse_amqp_url("amqp://user:hunter2@rabbit:99999/");
  REQUIRE_FALSE(bad_port);
  CHECK(error_text(bad_port.error()).find("hunter2") == std::string::npos);
  CHECK_FALSE(parse_amqp_url("amqp://rabbit/?prefetch=0"));
  CHECK_FALSE(parse_amqp_url("redis://rabbit/0"));
  CHECK_FALSE(parse_amqp_url("amqps://rabbit/"));
}
