// SQLite 3 behind sql_connection: WAL mode, a busy timeout, and a cache of
// prepared statements keyed by their SQL text. Files are opened through the
// WAL-coalescing VFS (adapters/sqlite_wal_vfs).

#include "adapters/sql.hpp"

#include <filesystem>
#include <unordered_map>

#include <sqlite3.h>

#include "adapters/sqlite_checkpointer.hpp"
#include "adapters/sqlite_wal_vfs.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

struct stmt_deleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_deleter>;

class sqlite_connection final : public sql_connection {
public:
  sqlite_connection(sqlite3* db, std::string display)
    : db_(db), display_(std::move(display)) {}

  ~sqlite_connection() override {
    // The checkpointer's thread uses its own connection to the same file
    // and a hook on this one: it goes first.
    checkpointer_.reset();
    // Statements next: sqlite3_close refuses while any is unfinalized.
    cache_.clear();
    sqlite3_close(db_);
  }

  sql_dialect dialect() const override { return sql_dialect::sqlite; }

  const std::string& display_url() const override { return display_; }

  /// Moves WAL checkpoints to a thread of their own (see
  /// sqlite_checkpointer); SQLite's automatic ones stay when that fails.
  void checkpoint_in_background(const std::string& path, const char* vfs,
                                int threshold_frames, bool sync_full) {
    checkpointer_ = sqlite_checkpointer::start(db_, path, vfs,
                                               threshold_frames, sync_full);
  }

  caf::error fail(int rc, std::string_view what) {
    auto code = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? errc::timeout
                                                         : errc::command_failed;
    std::string msg = "sqlite ";
    msg += what;
    msg += " failed on ";
    msg += display_;
    msg += ": ";
    msg += sqlite3_errmsg(db_);
    return caf::make_error(code, std::move(msg));
  }

  caf::expected<sqlite3_stmt*> prepare(std::string_view sql) {
    auto i = cache_.find(sql);
    if (i != cache_.end())
      return i->second.get();
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    auto rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                 SQLITE_PREPARE_PERSISTENT, &raw, &tail);
    if (rc != SQLITE_OK)
      return fail(rc, "prepare of '" + std::string{sql.substr(0, 80)} + "'");
    if (raw == nullptr)
      return caf::make_error(errc::command_failed,
                             "sqlite: empty statement");
    stmt_ptr s{raw};
    cache_.emplace(std::string{sql}, std::move(s));
    return raw;
  }

  caf::expected<sql_rows> query(std::string_view sql,
                                const std::vector<sql_value>& params) override {
    auto prepared = prepare(sql);
    if (!prepared)
      return std::move(prepared.error());
    auto s = *prepared;
    // Reset on every path out, so that no statement holds a read snapshot
    // or a lock past this call.
    struct reset_guard {
      sqlite3_stmt* s;
      ~reset_guard() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    } guard{s};
    if (static_cast<size_t>(sqlite3_bind_parameter_count(s)) != params.size())
      return caf::make_error(errc::command_failed,
                             "sqlite: statement takes "
                               + std::to_string(sqlite3_bind_parameter_count(s))
                               + " parameters, got "
                               + std::to_string(params.size()));
    for (size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i + 1);
      int rc = SQLITE_OK;
      const auto& p = params[i];
      if (std::holds_alternative<std::nullptr_t>(p))
        rc = sqlite3_bind_null(s, idx);
      else if (auto x = std::get_if<int64_t>(&p))
        rc = sqlite3_bind_int64(s, idx, *x);
      else if (auto x = std::get_if<double>(&p))
        rc = sqlite3_bind_double(s, idx, *x);
      else if (auto x = std::get_if<std::string>(&p))
        rc = sqlite3_bind_text64(s, idx, x->data(), x->size(), SQLITE_STATIC,
                                 SQLITE_UTF8);
      else if (auto x = std::get_if<sql_blob>(&p))
        rc = sqlite3_bind_blob64(s, idx, x->bytes.data(), x->bytes.size(),
                                 SQLITE_STATIC);
      if (rc != SQLITE_OK)
        return fail(rc, "bind");
    }
    auto ncols = static_cast<size_t>(sqlite3_column_count(s));
    sql_rows rows{ncols};
    for (;;) {
      auto rc = sqlite3_step(s);
      if (rc == SQLITE_DONE)
        break;
      if (rc != SQLITE_ROW)
        return fail(rc, "statement");
      for (size_t c = 0; c < ncols; ++c) {
        int col = static_cast<int>(c);
        switch (sqlite3_column_type(s, col)) {
          case SQLITE_INTEGER:
            rows.push(static_cast<int64_t>(sqlite3_column_int64(s, col)));
            break;
          case SQLITE_FLOAT:
            rows.push(sqlite3_column_double(s, col));
            break;
          case SQLITE_TEXT: {
            auto p = sqlite3_column_text(s, col);
            auto n = sqlite3_column_bytes(s, col);
            rows.push(std::string(reinterpret_cast<const char*>(p),
                                  static_cast<size_t>(n)));
            break;
          }
          case SQLITE_BLOB: {
            auto p = sqlite3_column_blob(s, col);
            auto n = sqlite3_column_bytes(s, col);
            sql_blob b;
            if (p != nullptr)
              b.bytes.assign(static_cast<const char*>(p),
                             static_cast<size_t>(n));
            rows.push(std::move(b));
            break;
          }
          default:
            rows.push(nullptr);
        }
      }
    }
    if (!sqlite3_stmt_readonly(s))
      rows.affected = sqlite3_changes64(db_);
    return rows;
  }

  caf::error exec_script(std::string_view sql) override {
    std::string text{sql};
    char* msg = nullptr;
    auto rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &msg);
    if (rc == SQLITE_OK)
      return {};
    std::string why = msg != nullptr ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    auto code = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? errc::timeout
                                                         : errc::command_failed;
    return caf::make_error(code, "sqlite script failed on " + display_ + ": "
                                   + why);
  }

  caf::error begin() override {
    if (auto err = run("BEGIN IMMEDIATE"))
      return err;
    in_tx_ = true;
    return {};
  }

  caf::error commit() override {
    auto err = run("COMMIT");
    // A failed COMMIT (SQLITE_BUSY) leaves the transaction open: the
    // caller rolls back or retries.
    if (!err)
      in_tx_ = false;
    return err;
  }

  caf::error rollback() override {
    in_tx_ = false;
    if (sqlite3_get_autocommit(db_))
      return {};
    return run("ROLLBACK");
  }

  bool in_transaction() const override { return in_tx_; }

  caf::error run(std::string_view sql) {
    auto rows = query(sql, {});
    return rows ? caf::error{} : std::move(rows.error());
  }

private:
  sqlite3* db_;
  std::string display_;
  // Looked up by string_view: no key string built per statement run.
  struct text_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, stmt_ptr, text_hash, std::equal_to<>>
    cache_;
  bool in_tx_ = false;
  std::unique_ptr<sqlite_checkpointer> checkpointer_;
};

} // namespace

caf::expected<std::unique_ptr<sql_connection>>
open_sqlite(const std::string& path, const std::string& display_url,
            const sql_options& opts) {
  if (path != ":memory:") {
    std::error_code ec;
    auto parent = std::filesystem::path{path}.parent_path();
    if (!parent.empty())
      std::filesystem::create_directories(parent, ec);
    if (ec)
      return caf::make_error(errc::connection_failed,
                             "cannot create the directory of " + display_url
                               + ": " + ec.message());
  }
  sqlite3* db = nullptr;
  auto rc = sqlite3_open_v2(path.c_str(), &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                              | SQLITE_OPEN_NOMUTEX,
                            path == ":memory:" ? nullptr : wal_coalescing_vfs());
  if (rc != SQLITE_OK) {
    std::string why = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return caf::make_error(errc::connection_failed,
                           "cannot open " + display_url + ": " + why);
  }
  sqlite3_extended_result_codes(db, 0);
  auto conn = std::make_unique<sqlite_connection>(db, display_url);
  sqlite3_busy_timeout(db, static_cast<int>(opts.busy_timeout.count()));
  // WAL: readers never block the writer nor the writer readers. With
  // synchronous=NORMAL a commit is durable once it is in the WAL file (a
  // process crash loses nothing); only the OS or the power failing can lose
  // the last commits. FULL also syncs the WAL on every commit.
  auto script = std::string{"PRAGMA journal_mode=WAL;"}
                + (opts.sqlite_synchronous_full ? "PRAGMA synchronous=FULL;"
                                                : "PRAGMA synchronous=NORMAL;")
                + "PRAGMA foreign_keys=ON;"
                // Checkpoints keep the WAL from growing; this truncates it
                // back after a burst made it bigger than a checkpoint
                // interval's worth (the threshold's 4 KiB pages and a
                // quarter more). A smaller limit would cut the file at every
                // restart, and the writer would pay for the truncation and
                // for allocating the blocks again as the WAL regrows.
                + "PRAGMA journal_size_limit="
                + std::to_string(int64_t{opts.sqlite_checkpoint_pages} * 4096
                                 * 5 / 4)
                + ";"
                // Used only if the background checkpointer cannot start.
                + "PRAGMA wal_autocheckpoint="
                + std::to_string(opts.sqlite_checkpoint_pages) + ";"
                // Reads of database pages through a 1 GiB mapping instead
                // of a pread each: the nodestore id index is read at a
                // random leaf per event, mostly outside the page cache.
                + "PRAGMA mmap_size=1073741824;";
  if (auto err = conn->exec_script(script))
    return err;
  if (path != ":memory:")
    conn->checkpoint_in_background(path, wal_coalescing_vfs(),
                                   opts.sqlite_checkpoint_pages,
                                   opts.sqlite_synchronous_full);
  return std::unique_ptr<sql_connection>{std::move(conn)};
}

} // namespace vigil
