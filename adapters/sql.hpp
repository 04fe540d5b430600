#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace vigil {

/// Bytes bound or read as a BLOB (SQLite) / bytea (PostgreSQL).
struct sql_blob {
  std::string bytes;
};

/// One statement parameter or one result cell. Integers are int64_t: cast
/// unsigned ids explicitly (`int64_t{...}`) when binding.
using sql_value =
  std::variant<std::nullptr_t, int64_t, double, std::string, sql_blob>;

/// The SQL flavour behind a connection, for the few statements that differ.
enum class sql_dialect { sqlite, postgresql };

/// Returns "sqlite" or "postgresql".
const char* to_string(sql_dialect x);

/// The rows a statement returned, fully read (results are small here), and
/// the number of rows an INSERT, UPDATE or DELETE changed. Cells are typed
/// by the database: integers as int64_t, floats as double, text as
/// std::string, BLOB/bytea as sql_blob, NULL as nullptr.
class sql_rows {
public:
  sql_rows() = default;
  explicit sql_rows(size_t columns) : columns_(columns) {}

  /// Number of rows.
  size_t size() const { return columns_ == 0 ? 0 : cells_.size() / columns_; }

  /// True when no row came back.
  bool empty() const { return cells_.empty(); }

  /// Number of columns.
  size_t columns() const { return columns_; }

  /// The cell at `row`, `col` (both in range).
  const sql_value& at(size_t row, size_t col) const {
    return cells_[row * columns_ + col];
  }

  /// True when the cell is NULL.
  bool is_null(size_t row, size_t col) const;

  /// The cell as an integer: integers as they are, floats truncated, text
  /// parsed (0 when it is not a number), NULL as 0.
  int64_t get_int64(size_t row, size_t col) const;

  /// The cell as a double: numbers converted, text parsed, NULL as 0.
  double get_double(size_t row, size_t col) const;

  /// The cell as text: text and blob bytes as they are, numbers printed,
  /// NULL as "".
  std::string get_text(size_t row, size_t col) const;

  /// Moves a text or blob cell out (cheaper than get_text for big values);
  /// other cells as get_text.
  std::string take_text(size_t row, size_t col);

  /// Rows changed by an INSERT, UPDATE or DELETE (0 for a SELECT).
  int64_t affected = 0;

  /// Appends one cell; rows fill up column by column (backends only).
  void push(sql_value x) { cells_.push_back(std::move(x)); }

private:
  size_t columns_ = 0;
  std::vector<sql_value> cells_;
};

/// How a connection is opened (beyond what the URL says).
struct sql_options {
  /// SQLite: synchronous=FULL (the default, as db.sqlite-synchronous's)
  /// or NORMAL. In WAL mode NORMAL loses nothing when the process crashes
  /// (even kill -9), but a power loss or OS crash can lose the last
  /// commits; FULL syncs the WAL on every commit.
  bool sqlite_synchronous_full = true;
  /// SQLite: how long a writer waits for another connection's lock.
  std::chrono::milliseconds busy_timeout{5000};
  /// SQLite: WAL pages (~4 KiB each) after which a checkpoint copies them
  /// into the database file, on a thread of its own (sqlite_checkpointer).
  /// 50000 (a WAL file of up to ~250 MB) instead of SQLite's 1000: a
  /// checkpoint copies each page once however often commits rewrote it, and
  /// ingest batches rewrite the same pages again and again (the random
  /// leaves of the nodestore id index). Against 10000 the ingest bench made
  /// 10-15 % more events/s and a higher p99 as the database grew (see
  /// docs/BENCHMARKS.md, session 4).
  int sqlite_checkpoint_pages = 50000;
  /// PostgreSQL: connect_timeout (whole seconds, at least 1), unless the
  /// URL sets one.
  std::chrono::milliseconds connect_timeout{5000};
  /// PostgreSQL: statement_timeout for every statement (0 = none), unless
  /// the URL's `options` set one.
  std::chrono::milliseconds statement_timeout{30000};
};

/// One connection to an SQL database: SQLite 3 or PostgreSQL (libpq).
/// Not thread-safe: each thread (or detached actor) opens its own. SQL uses
/// `?` placeholders in both dialects (translated to `$1, $2, ...` for
/// PostgreSQL; a `?` inside a quoted literal or identifier is left alone).
/// Every statement given to `query`/`exec` is prepared once and kept, keyed
/// by its text, for the life of the connection: pass constant SQL text and
/// bind values as parameters.
///
/// Errors: errc::connection_failed when the server is unreachable or the
/// connection broke (PostgreSQL: the next call outside a transaction
/// reconnects), errc::timeout for a busy SQLite database past busy_timeout
/// or a PostgreSQL statement_timeout, errc::command_failed for everything
/// else the database rejected. Messages never contain the password.
class sql_connection {
public:
  virtual ~sql_connection();

  /// Opens `sqlite:///abs/path`, `sqlite://relative/path` (relative to the
  /// working directory), `sqlite://:memory:`, or
  /// `postgresql://user:pass@host:port/db` (also `postgres://`, and any
  /// libpq URI parameter such as `?sslmode=require`). SQLite creates the
  /// file and its parent directories and switches to WAL mode.
  static caf::expected<std::unique_ptr<sql_connection>>
  open(const std::string& url, const sql_options& opts = {});

  /// Which SQL flavour this is.
  virtual sql_dialect dialect() const = 0;

  /// The URL with its password masked, for logs and messages.
  virtual const std::string& display_url() const = 0;

  /// Runs one statement (prepared and cached) with `params` bound to its
  /// `?` placeholders in order; returns its rows and the changed-row count.
  virtual caf::expected<sql_rows>
  query(std::string_view sql, const std::vector<sql_value>& params = {}) = 0;

  /// Runs one statement for its effect; returns the number of changed rows.
  caf::expected<int64_t> exec(std::string_view sql,
                              const std::vector<sql_value>& params = {});

  /// Runs one or more `;`-separated statements without parameters and
  /// without preparing them (schema scripts).
  virtual caf::error exec_script(std::string_view sql) = 0;

  /// Starts a transaction (SQLite: BEGIN IMMEDIATE, taking the write lock
  /// up front so that two writers queue on busy_timeout instead of failing
  /// on a lock upgrade).
  virtual caf::error begin() = 0;

  /// Commits the open transaction.
  virtual caf::error commit() = 0;

  /// Rolls the open transaction back; harmless when none is open.
  virtual caf::error rollback() = 0;

  /// True between begin() and commit()/rollback().
  virtual bool in_transaction() const = 0;
};

/// A transaction that rolls back when it goes out of scope uncommitted.
/// `sql_transaction tx{db}; if (auto err = tx.start()) ...; ...;
/// return tx.commit();`
class sql_transaction {
public:
  explicit sql_transaction(sql_connection& db) : db_(db) {}
  sql_transaction(const sql_transaction&) = delete;
  sql_transaction& operator=(const sql_transaction&) = delete;
  ~sql_transaction();

  /// Begins the transaction.
  caf::error start();

  /// Commits; after a failed commit the destructor still rolls back.
  caf::error commit();

private:
  sql_connection& db_;
  bool open_ = false;
};

/// Rewrites `?` placeholders to `$1, $2, ...`, skipping quoted literals
/// ('...'), quoted identifiers ("...") and comments.
std::string sql_to_dollar_params(std::string_view sql);

/// Opens SQLite at `path` (backends; use sql_connection::open).
caf::expected<std::unique_ptr<sql_connection>>
open_sqlite(const std::string& path, const std::string& display_url,
            const sql_options& opts);

/// Opens PostgreSQL at `url` (backends; use sql_connection::open).
caf::expected<std::unique_ptr<sql_connection>>
open_postgres(const std::string& url, const sql_options& opts);

} // namespace vigil
