#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "adapters/sql.hpp"

namespace vigil {

/// A nodestore value: the main JSON (key nullopt) and named subkeys, as
/// Sentry's `set_subkeys(id, {None: main, "sub": value})` takes them.
using node_subkeys = std::map<std::optional<std::string>, std::string>;

/// Sentry's nodestore on SQL (Sentry's `DjangoNodeStorage`): one row per
/// node in `nodestore_node(id varchar(40) primary key, data text,
/// timestamp)`, `data` being base64(zlib(blob)) and the blob the main JSON
/// and then alternating subkey names and subkey JSON, joined by "\n".
/// Values are JSON text, stored as given (the caller serializes; a raw
/// newline or carriage return in it, which JSON only allows as whitespace,
/// is turned into a space so that it cannot split the blob). `timestamp` is
/// the write time in Unix seconds (double precision), which `cleanup` reads.
///
/// Not thread-safe: one owner (a detached actor) calls it. The connection
/// is borrowed or owned (see `open`). Calls never throw; database errors
/// come back as the connection reports them.
class nodestore {
public:
  /// A nodestore on a connection the caller keeps alive.
  explicit nodestore(sql_connection& db);

  /// Opens `db_url` (see sql_connection::open) and creates the table.
  static caf::expected<std::unique_ptr<nodestore>>
  open(const std::string& db_url, const sql_options& opts = {});

  /// Creates the table and its timestamp index when missing (Sentry's
  /// `bootstrap`).
  caf::error bootstrap();

  /// The SQL that creates the table (Sentry's nodestore_node shape) and its
  /// index, as `bootstrap` runs it; the event store's migration runs it too.
  static std::string_view schema_sql();

  /// The main value of `id`, or the subkey `subkey` of it; nullopt when the
  /// node or the subkey is missing.
  caf::expected<std::optional<std::string>>
  get(const std::string& id,
      const std::optional<std::string>& subkey = std::nullopt);

  /// `get` for many ids at once: one entry per requested id (nullopt for the
  /// missing ones).
  caf::expected<std::map<std::string, std::optional<std::string>>>
  get_multi(const std::vector<std::string>& ids,
            const std::optional<std::string>& subkey = std::nullopt);

  /// Stores `json` as the main value of `id`, dropping any subkeys.
  caf::error set(const std::string& id, std::string_view json);

  /// Stores the main value (key nullopt, "null" when absent) and subkeys of
  /// `id`, replacing whatever was there. Subkey names must not contain a
  /// newline.
  caf::error set_subkeys(const std::string& id, const node_subkeys& values);

  /// Stores many nodes (main values only) in one transaction (or in the
  /// caller's, when one is open).
  caf::error
  set_many(const std::vector<std::pair<std::string, std::string>>& nodes);

  /// Inserts `json` as the main value of `id` unless the node exists; returns
  /// whether it was inserted. An existing node is left as it is (for
  /// at-least-once writers: a retried write changes nothing).
  caf::expected<bool> insert_if_absent(const std::string& id,
                                       std::string_view json);

  /// Deletes one node (no error when it is missing).
  caf::error delete_one(const std::string& id);

  /// Deletes many nodes.
  caf::error delete_multi(const std::vector<std::string>& ids);

  /// Deletes every node written before `cutoff`; returns how many. (Sentry
  /// rounds the cutoff to whole days; this deletes exactly before it.)
  caf::expected<int64_t> cleanup(std::chrono::system_clock::time_point cutoff);

  /// Replaces the clock that stamps writes (Unix seconds); for tests.
  void set_clock(std::function<double()> now);

  /// The connection this store runs on.
  sql_connection& db() { return *db_; }

  /// Encodes a value as Sentry stores it: lines joined by "\n", then zlib,
  /// then base64.
  static caf::expected<std::string> encode(const node_subkeys& values);

  /// Encodes a main value alone (no subkeys): what `set` stores. Safe to
  /// call from any thread.
  static std::string encode_main(std::string_view json);

  /// Inserts a node already encoded by `encode_main` unless it exists;
  /// returns whether it was inserted.
  caf::expected<bool> insert_encoded_if_absent(const std::string& id,
                                               const std::string& data);

  /// Decodes a stored `data` column and picks the main value or `subkey`.
  static caf::expected<std::optional<std::string>>
  decode(std::string_view data, const std::optional<std::string>& subkey);

  /// Largest decompressed node `decode` accepts (64 MiB).
  static constexpr size_t max_node_size = 64 * 1024 * 1024;

private:
  caf::error write(const std::string& id, const std::string& data);

  std::unique_ptr<sql_connection> owned_;
  sql_connection* db_;
  std::function<double()> now_;
};

} // namespace vigil
