#pragma once

// What the write buffer's tests share: every buffer store the run has
// (memory, and redis when the harness started one), fresh databases
// (SQLite, and PostgreSQL when started), groups to count into.

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "actors/backends/buffer.hpp"
#include "actors/backends/event_store.hpp"
#include "adapters/redis.hpp"
#include "adapters/sql.hpp"
#include "tests/support/test_servers.hpp"

namespace vigil::testing {

inline std::vector<buffer_backend_options> backends(int partitions = 1) {
  static std::atomic<int> counter{0};
  buffer_backend_options mem;
  mem.backend = "memory";
  mem.url = "memory://buffer-contract-" + std::to_string(++counter);
  mem.partitions = partitions;
  std::vector<buffer_backend_options> out{mem};
  if (auto url = vigil::testing::test_server_url("VIGIL_TEST_REDIS_URL");
      !url.empty()) {
    url = url.substr(0, url.rfind('/')) + "/44";
    auto ep = parse_redis_url(url);
    REQUIRE(ep);
    auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
    REQUIRE(conn);
    REQUIRE(conn->command({"FLUSHDB"}));
    buffer_backend_options red = mem;
    red.backend = "redis";
    red.url = url;
    out.push_back(red);
  }
  return out;
}

inline std::unique_ptr<buffer_backend> open_buffer(const buffer_backend_options& o) {
  auto b = make_buffer_backend(o);
  REQUIRE(b);
  return std::move(*b);
}

inline buffer_incr seen(int64_t group_id, int64_t n, int64_t last_seen_us) {
  buffer_incr inc;
  inc.model = "sentry.group";
  inc.columns = {{"times_seen", n}};
  inc.filters = {{"id", buffer_value::of(group_id)}};
  inc.extra = {{"last_seen", buffer_value::of_datetime(last_seen_us)}};
  return inc;
}


inline std::string buffer_temp_dir() {
  const char* base = std::getenv("VIGIL_TEST_WORKDIR");
  auto dir = std::filesystem::path{base != nullptr ? base : "/tmp"}
             / ("vigil-buffer-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

// Fresh databases with vigil's schema: a new SQLite file; PostgreSQL with
// the tables dropped first.
inline std::vector<std::string> buffer_db_urls() {
  static std::atomic<int> counter{0};
  std::vector<std::string> out{"sqlite://" + buffer_temp_dir() + "/b"
                               + std::to_string(++counter) + ".db"};
  if (auto pg = vigil::testing::test_server_url("VIGIL_TEST_PG_URL");
      !pg.empty()) {
    auto db = sql_connection::open(pg);
    REQUIRE(db);
    REQUIRE_FALSE((*db)->exec_script(
      "DROP TABLE IF EXISTS nodestore_node; DROP TABLE IF EXISTS groups;"
      "DROP TABLE IF EXISTS vigil_outbox;"
      "DROP TABLE IF EXISTS vigil_schema_version;"
      "DROP TABLE IF EXISTS vigil_buffer_applied;"
      "DROP TABLE IF EXISTS environments;"
      "DROP TABLE IF EXISTS event_attachments;"));
    out.push_back(pg);
  }
  return out;
}

inline int64_t add_group(sql_connection& db, const std::string& hash) {
  auto r = db.query("INSERT INTO groups (project_id, hash, title, culprit,"
                    " first_seen, last_seen, times_seen) VALUES"
                    " (1, ?, 't', 'c', 10.0, 10.0, 1) RETURNING id",
                    {hash});
  REQUIRE(r);
  return r->get_int64(0, 0);
}

/// `n` new groups (hashes `prefix` + index) with `count` increments of
/// times_seen each in `store`, pending at time 100; returns their ids.
inline std::vector<int64_t> pending_groups(sql_connection& db,
                                           buffer_backend& store,
                                           const std::string& prefix, int n,
                                           int64_t count) {
  std::vector<int64_t> groups;
  std::vector<buffer_incr> batch;
  for (int i = 0; i < n; ++i) {
    groups.push_back(add_group(db, prefix + std::to_string(i)));
    batch.push_back(seen(groups.back(), count, 0));
  }
  REQUIRE_FALSE(store.incr(batch, 100));
  return groups;
}

inline std::pair<int64_t, double> counts_of(sql_connection& db, int64_t id) {
  auto r = db.query("SELECT times_seen, last_seen FROM groups WHERE id = ?",
                    {id});
  REQUIRE(r);
  REQUIRE(r->size() == 1);
  return {r->get_int64(0, 0), r->get_double(0, 1)};
}


} // namespace vigil::testing
