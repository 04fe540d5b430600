// The pure rules the write buffer and the TSDB share with Sentry: Python's
// bytes repr, RedisBuffer's and RedisTSDB's key names, rollup arithmetic,
// and the HyperLogLog of the in-process TSDB. The expected strings were
// computed with CPython 3.11 from Sentry's formulas (sentry-semantics.md,
// sections 3 and 6).

#include <catch2/catch.hpp>

#include <string>

#include "actors/backends/hyperloglog.hpp"
#include "messages/buffer_keys.hpp"
#include "messages/python_repr.hpp"
#include "messages/tsdb_keys.hpp"

using namespace vigil;

TEST_CASE("python_bytes_repr matches CPython's repr(bytes)", "[service-keys]") {
  CHECK(python_bytes_repr("5") == "b'5'");
  CHECK(python_bytes_repr("it's") == "b\"it's\"");
  CHECK(python_bytes_repr("say \"hi\"") == "b'say \"hi\"'");
  CHECK(python_bytes_repr("both ' \"") == "b'both \\' \"'");
  CHECK(python_bytes_repr(std::string{"\t\n\r\x00\x7f\xff\\", 7})
        == "b'\\t\\n\\r\\x00\\x7f\\xff\\\\'");
  CHECK(python_bytes_repr("caf\xc3\xa9") == "b'caf\\xc3\\xa9'");
  CHECK(python_bytes_repr("") == "b''");
}

TEST_CASE("buffer rows are named as Sentry's RedisBuffer names them",
          "[service-keys][buffer]") {
  auto k1 = buffer_row_key("sentry.group", {{"id", buffer_value::of(5)}});
  CHECK(k1 == "b:k:sentry.group:c2dd43446dd1a90db0bb642709c12103");
  auto k2 = buffer_row_key("sentry.group", {{"project_id", buffer_value::of(3)},
                                            {"id", buffer_value::of(5)}});
  CHECK(k2 == "b:k:sentry.group:724d41a6fdf18494abc4ee3a8a221d87");
  CHECK(buffer_row_key("sentry.project",
                       {{"slug", buffer_value::of_text("it's caf\xc3\xa9")}})
        == "b:k:sentry.project:92f2221e91a28a6a7480cef7e87067bd");
  // A datetime filter hashes as str() of an aware datetime.
  auto dt = buffer_value::of_datetime(1796249105123456);
  CHECK(dt.type == "dt");
  CHECK(dt.text == "1796249105.123456");
  CHECK(buffer_row_key("sentry.group", {{"last_seen", dt}})
        == "b:k:sentry.group:4109ebc94e1e91af6cf60f31f1c2513d");

  CHECK(buffer_pending_key(k1, 1) == "b:p");
  CHECK(buffer_pending_key(k1, 4) == "b:p:0");
  CHECK(buffer_pending_key(k2, 4) == "b:p:3");
  CHECK(buffer_partition_key(2, 4) == "b:p:2");
  CHECK(buffer_partition_key(0, 1) == "b:p");
  CHECK(buffer_lock_key("b:p") == "l:b:p");
  CHECK(buffer_counter_field("times_seen") == "i+times_seen");
  CHECK(buffer_extra_field("last_seen") == "e+last_seen");
}

TEST_CASE("buffer values round-trip through RedisBuffer's JSON",
          "[service-keys][buffer]") {
  buffer_fields f{{"id", buffer_value::of(5)},
                  {"name", buffer_value::of_text("x\"y")}};
  auto text = encode_buffer_fields(f);
  CHECK(text == R"({"id": ["i", "5"], "name": ["s", "x\"y"]})");
  auto back = decode_buffer_fields(text);
  REQUIRE(back);
  CHECK(*back == f);
  CHECK(encode_buffer_value(buffer_value::of(-7)) == R"(["i", "-7"])");
  auto v = decode_buffer_value(R"(["dt", "1796249105.123456"])");
  REQUIRE(v);
  CHECK(v->type == "dt");
  for (auto bad : {"", "[", "{}", R"(["i"])", R"(["q", "1"])", R"([1, "1"])",
                   R"({"id": 5})", R"({"id": ["i"]})"}) {
    CHECK_FALSE(decode_buffer_value(bad));
    if (std::string_view{bad}.starts_with("{\""))
      CHECK_FALSE(decode_buffer_fields(bad));
  }
}

TEST_CASE("tsdb buckets, expiry and the optimal rollup follow Sentry",
          "[service-keys][tsdb]") {
  auto rollups = default_tsdb_rollups();
  REQUIRE(rollups.size() == 3);
  CHECK(rollups[0].seconds == 10);
  CHECK(rollups[0].samples == 360);
  int64_t ts = 1733177105;
  CHECK(tsdb_bucket_index(ts, 10) == 173317710);
  CHECK(tsdb_bucket_start(ts, 3600) == 1733176800);
  CHECK(tsdb_expiry(rollups[1], ts) == 1733176800 + 3600 * 168);
  // An hour fits the 10 s rollup exactly; a second more needs hours.
  CHECK(tsdb_optimal_rollup(rollups, ts - 3600, ts).seconds == 10);
  CHECK(tsdb_optimal_rollup(rollups, ts - 3601, ts).seconds == 3600);
  CHECK(tsdb_optimal_rollup(rollups, ts - 86400 * 7, ts).seconds == 3600);
  CHECK(tsdb_optimal_rollup(rollups, ts - 86400 * 365, ts).seconds == 86400);
  // From the end back while not before the start; start's bucket may be
  // left out, end's never.
  auto series = tsdb_series(ts - 25, ts, 10);
  CHECK(series == std::vector<int64_t>{1733177080, 1733177090, 1733177100});
  CHECK(tsdb_series(ts, ts, 3600) == std::vector<int64_t>{1733176800});
  CHECK(tsdb_series(ts + 1, ts, 10).empty());
}

TEST_CASE("tsdb keys are RedisTSDB's", "[service-keys][tsdb]") {
  int64_t ts = 1733177105;
  auto c = make_tsdb_counter_key(tsdb_model::group, 10, ts, tsdb_key::of(42),
                                 std::nullopt);
  CHECK(c.hash == "ts:4:173317710:42");
  CHECK(c.field == "42");
  c = make_tsdb_counter_key(tsdb_model::project_total_received, 3600, ts,
                            tsdb_key::of(130), 7);
  CHECK(c.hash == "ts:100:481438:2");
  CHECK(c.field == "130?e=7");
  CHECK(tsdb_model_key(tsdb_key::of(std::string{"user:1"}))
        == "88fb056157a5fec5b1ecc0b14663a7fe");
  c = make_tsdb_counter_key(tsdb_model::release, 10, ts,
                            tsdb_key::of(std::string{"user:1"}), std::nullopt);
  CHECK(c.hash == "ts:7:173317710:7");
  CHECK(c.field == "88fb056157a5fec5b1ecc0b14663a7fe");
  CHECK(make_tsdb_counter_key(tsdb_model::release, 10, ts,
                              tsdb_key::of(std::string{"caf\xc3\xa9"}),
                              std::nullopt)
          .hash
        == "ts:7:173317710:30");
  CHECK(make_tsdb_distinct_key(tsdb_model::users_affected_by_group, 86400, ts,
                               tsdb_key::of(42), 3)
        == "ts:300:20059:42?e=3");
}

TEST_CASE("the hyperloglog counts as Redis's PFCOUNT", "[service-keys][tsdb]") {
  // Figures PFADD/PFCOUNT of redis-server 7.0 gave for "user:0".."user:n-1";
  // the integration suite compares with a live server too.
  struct known {
    int n;
    uint64_t count;
  };
  for (auto [n, count] : {known{0, 0}, known{1, 1}, known{10, 10},
                          known{100, 100}, known{1000, 1007},
                          known{10000, 10089}, known{100000, 99471}}) {
    hyperloglog h;
    for (int i = 0; i < n; ++i)
      h.add("user:" + std::to_string(i));
    CHECK(h.count() == count);
    CHECK(h.empty() == (n == 0));
  }
  hyperloglog a, b;
  for (int i = 0; i < 600; ++i)
    a.add("user:" + std::to_string(i));
  for (int i = 400; i < 1000; ++i)
    b.add("user:" + std::to_string(i));
  CHECK_FALSE(a.add("user:1")); // already counted
  a.merge(b);
  CHECK(a.count() == 1007); // the union of 0..999, as PFCOUNT a b
  // Sparse into dense and dense into sparse give the same union.
  hyperloglog big, small;
  for (int i = 0; i < 100000; ++i)
    big.add("user:" + std::to_string(i));
  for (int i = 0; i < 10; ++i)
    small.add("user:" + std::to_string(i));
  CHECK(small.memory_bytes() < 1024);
  CHECK(big.memory_bytes() == hyperloglog::registers);
  auto both = small;
  both.merge(big);
  big.merge(small);
  CHECK(both.count() == 99471);
  CHECK(big.count() == 99471);
}
