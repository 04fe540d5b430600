// AMQP task messages: the content-header properties and header table vigil
// writes are byte-for-byte what py-amqp writes for Celery 5.2 (golden bytes
// below), what py-amqp wrote decodes, header field types stay within the
// codes py-amqp reads back as the same type, and a message survives AMQP ->
// kombu envelope -> AMQP unchanged.

#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>

// The tests read the wire bytes with rabbitmq-c itself, to see the field
// types the adapter wrote.
#include <amqp.h>
#include <amqp_framing.h>

#include "adapters/amqp.hpp"
#include "adapters/amqp_message.hpp"
#include "adapters/amqp_properties.hpp"
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

std::string_view to_string_view(amqp_bytes_t b) {
  return b.len == 0 ? std::string_view{}
                    : std::string_view{static_cast<const char*>(b.bytes), b.len};
}

// A rabbitmq-c memory pool for the raw decodes below.
struct pool {
  pool() { init_amqp_pool(&p, 4096); }
  ~pool() { empty_amqp_pool(&p); }
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;
  amqp_pool_t p;
};

// Property bytes as rabbitmq-c reads them (field kinds visible).
amqp_basic_properties_t raw_decode(std::string& bytes, pool& mem) {
  void* decoded = nullptr;
  amqp_bytes_t in{bytes.size(), bytes.data()};
  REQUIRE(amqp_decode_properties(AMQP_BASIC_CLASS, &mem.p, in, &decoded)
          == 0);
  return *static_cast<amqp_basic_properties_t*>(decoded);
}

// Raw properties encoded by rabbitmq-c itself.
std::string raw_encode(amqp_basic_properties_t& props) {
  std::string buf(65536, '\0');
  amqp_bytes_t out{buf.size(), buf.data()};
  auto n = amqp_encode_properties(AMQP_BASIC_CLASS, &props, out);
  REQUIRE(n > 0);
  buf.resize(static_cast<size_t>(n));
  return buf;
}

amqp_properties decode(std::string_view bytes) {
  auto props = decode_amqp_properties(bytes);
  REQUIRE(props);
  return std::move(*props);
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
  pool mem;
  auto raw = raw_decode(bytes, mem);
  CHECK(raw._flags == 0xfe00);
  auto& h = raw.headers;
  CHECK(kind_of(h, "lang") == 'S');
  CHECK(kind_of(h, "shadow") == 'V');
  CHECK(kind_of(h, "retries") == 'I');
  CHECK(kind_of(h, "timelimit") == 'A');
  CHECK(kind_of(h, "ignore_result") == 't');
  auto props = decode(bytes);
  CHECK(props.content_type == "application/x-msgpack");
  CHECK(props.delivery_mode == 2);
  CHECK(props.priority == 0);
  CHECK_FALSE(props.expiration);
  REQUIRE(props.headers);
  CHECK(props.headers->size() == 16);
  // And back to the same bytes.
  CHECK(to_hex(encode_amqp_properties(props)) == py_amqp_properties_hex);
  auto env = kombu_envelope_from_amqp(props, "\x93\x90\x80\x80", "", "celery",
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
  CHECK(to_hex(encode_amqp_properties(make_amqp_properties(fixture_task())))
        == expected);
}

TEST_CASE("null headers are left out of what vigil publishes",
          "[amqp][message]") {
  auto props = make_amqp_properties(fixture_task());
  drop_null_headers(props);
  REQUIRE(props.headers);
  std::vector<std::string> keys;
  for (auto& [k, v] : *props.headers)
    keys.push_back(k);
  // shadow, eta, expires, group, group_index, timelimit [null, null] and
  // parent_id are gone; a time limit that is set stays.
  CHECK(keys == std::vector<std::string>{"lang", "task", "id", "retries",
                                         "root_id", "argsrepr", "kwargsrepr",
                                         "origin", "ignore_result"});
  auto task = fixture_task();
  task.soft_time_limit = 5;
  props = make_amqp_properties(task);
  drop_null_headers(props);
  auto& h = *props.headers;
  auto limit = std::find_if(h.begin(), h.end(), [](const auto& kv) {
    return kv.first == "timelimit";
  });
  REQUIRE(limit != h.end());
  CHECK(limit->second == value{value_array{value{}, value{5.0}}});
  // Built without the nulls, the same properties (extra headers too).
  auto with_null_extras = rich_task();
  with_null_extras.extra_headers = R"({"a": null, "b": [null, null], )"
                                   R"("c": [null, 1], "d": []})";
  for (auto& msg : {fixture_task(), task, rich_task(), with_null_extras}) {
    auto dropped = make_amqp_properties(msg);
    drop_null_headers(dropped);
    CHECK(encode_amqp_properties(make_amqp_properties(msg, null_headers::drop))
          == encode_amqp_properties(dropped));
  }
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
  amqp_properties props;
  props.headers = m;
  auto wire = encode_amqp_properties(props);
  pool mem;
  auto raw = raw_decode(wire, mem);
  auto& t = raw.headers;
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
  // 'L' holds two's complement: -2^63 is 80 00 .. 00, as py-amqp's
  // pack('>q') writes it.
  CHECK(to_hex(wire).find(to_hex(std::string{"\x06i64minL\x80\0\0\0\0\0\0\0", 16}))
        != std::string::npos);
  // And back through the adapter.
  auto back = decode(wire);
  REQUIRE(back.headers);
  auto got = *back.headers;
  auto want = m;
  want[1].second = value{std::string{"\x00\x01", 2}}; // bytes travel as S
  want[10].second = value{18446744073709551615.0};
  CHECK(value{got} == value{want});
}

TEST_CASE("64-bit header ints decode as signed, 'l' and 'L' alike",
          "[amqp][message]") {
  amqp_table_entry_t entries[7];
  auto entry = [&](int i, const char* key, amqp_field_value_kind_t kind) {
    entries[i].key = amqp_cstring_bytes(key);
    entries[i].value.kind = static_cast<uint8_t>(kind);
    return &entries[i].value.value;
  };
  // 'L' from py-amqp: signed.
  entry(0, "L", AMQP_FIELD_KIND_U64)->u64 = static_cast<uint64_t>(int64_t{-5});
  // 'l' from rabbitmq-c producers.
  entry(1, "l", AMQP_FIELD_KIND_I64)->i64 = -7;
  entry(2, "i", AMQP_FIELD_KIND_U32)->u32 = 4000000000u;
  entry(3, "b", AMQP_FIELD_KIND_I8)->i8 = -3;
  entry(4, "f", AMQP_FIELD_KIND_F32)->f32 = 0.5f;
  entry(5, "D", AMQP_FIELD_KIND_DECIMAL)->decimal = amqp_decimal_t{2, 12345};
  entry(6, "T", AMQP_FIELD_KIND_TIMESTAMP)->u64 = 1700000000;
  amqp_basic_properties_t raw{};
  raw._flags = AMQP_BASIC_HEADERS_FLAG;
  raw.headers = amqp_table_t{7, entries};
  auto props = decode(raw_encode(raw));
  REQUIRE(props.headers);
  value_map want{{"L", value{int64_t{-5}}},
                 {"l", value{int64_t{-7}}},
                 {"i", value{int64_t{4000000000}}},
                 {"b", value{int64_t{-3}}},
                 {"f", value{0.5}},
                 {"D", value{123.45}},
                 {"T", value{"2023-11-14T22:13:20.000000+00:00"}}};
  REQUIRE(props.headers->size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO(want[i].first << ": " << encode_json((*props.headers)[i].second));
    CHECK((*props.headers)[i] == want[i]);
  }
}

TEST_CASE("a task message survives AMQP -> kombu envelope -> AMQP",
          "[amqp][message]") {
  auto msg = rich_task();
  auto wire = encode_amqp_properties(make_amqp_properties(msg));
  {
    pool mem;
    auto raw = raw_decode(wire, mem);
    CHECK(kind_of(raw.headers, "retries") == 'I');
    CHECK(kind_of(raw.headers, "timelimit") == 'A');
    CHECK(kind_of(raw.headers, "eta") == 'S');
    CHECK(kind_of(raw.headers, "vigil_schema") == 'I');
    CHECK(kind_of(raw.headers, "big") == 'L');
  }

  // Received (through the wire bytes), as the broker hands it out.
  auto received = decode(wire);
  auto env = kombu_envelope_from_amqp(received, msg.body, "", "q", "9@abc",
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
    amqp_properties again;
    std::string body;
    kombu_envelope_to_amqp(envelope, again, body);
    CHECK(body == msg.body);
    CHECK(to_hex(encode_amqp_properties(again)) == to_hex(wire));
  }
}

TEST_CASE("text that is no kombu envelope replays as a headerless body",
          "[amqp][message]") {
  amqp_properties props;
  std::string body;
  kombu_envelope_to_amqp("this is not an envelope", props, body);
  CHECK(body == "this is not an envelope");
  CHECK_FALSE(props.headers);
  // Received again, it is an envelope without a task header: decoding names
  // what is missing, and the original bytes are in the body.
  auto env = kombu_envelope_from_amqp(props, body, "", "q", "1@x", false);
  auto d = decode_kombu_envelope(env);
  REQUIRE_FALSE(d);
  CHECK(error_text(d.error()).find("'task'") != std::string::npos);
  amqp_properties again;
  std::string body2;
  kombu_envelope_to_amqp(env, again, body2);
  CHECK(body2 == "this is not an envelope");
}

TEST_CASE("headers with invalid UTF-8 still give a valid envelope",
          "[amqp][message]") {
  task_message msg;
  msg.task = "vigil.echo";
  msg.id = "id-1";
  msg.argsrepr = "\xff\xfe broken";
  // Through the wire, as a consumer receives it.
  auto props = decode(encode_amqp_properties(make_amqp_properties(msg)));
  auto env = kombu_envelope_from_amqp(props, "", "", "q", "1@x", false);
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
