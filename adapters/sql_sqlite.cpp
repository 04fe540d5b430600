// SQLite 3 behind sql_connection: WAL mode, a busy timeout, and a cache of
// prepared statements keyed by their SQL text.

#include "adapters/sql.hpp"

#include <algorithm>
#include <filesystem>
#include <new>
#include <unordered_map>

#include <sqlite3.h>

#include "adapters/sqlite_checkpointer.hpp"
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

// -- WAL write coalescing ---------------------------------------------------
//
// SQLite writes each WAL frame in two write calls (its 24-byte header, then
// the page), so a commit of N pages costs 2N pwrite calls, and with the
// nodestore's random index leaves that was most of the ingest writer's
// kernel time. This VFS wraps the default one and, for WAL files only,
// collects contiguous appends in a buffer that goes out in one write (or a
// few, of up to 124 KiB) when the commit frame (a frame header whose
// "database size" field is not zero) has been written, or before anything
// else touches the file (read, sync, truncate, size, close, a write
// elsewhere) and before the database file's shm barrier or locks, which
// publish frames to readers. A commit therefore reaches the kernel before
// sqlite3WalFrames returns, before the wal-index header makes it visible,
// exactly as before: the same bytes at the same offsets, in fewer calls.
// Other files pass through.

constexpr size_t wal_frame_header_size = 24;
constexpr size_t wal_buffer_limit = 8u << 20;
constexpr size_t wal_write_chunk = 124u << 10;

struct wal_buffer {
  sqlite3_int64 offset = 0;
  std::string bytes;
  // The last write was a commit frame's header: its page completes it.
  bool commit_pending = false;
};

struct coalescing_file {
  sqlite3_file base;
  sqlite3_file* real;
  wal_buffer* wal; // nullptr for files other than a WAL
  // A WAL and its database file point at each other while both are open,
  // so that the database file's shm barrier and locks (which publish
  // frames to readers) flush the WAL first, whatever frame layout a
  // future SQLite writes.
  coalescing_file* peer;
  // An error that surfaced where none can be returned (the shm barrier):
  // returned by the next call on this file that can return one.
  int deferred_rc;
  int pad_;
};

sqlite3_vfs* base_vfs = nullptr;

sqlite3_file* real_of(sqlite3_file* f) {
  return reinterpret_cast<coalescing_file*>(f)->real;
}

// A failed write is reported as SQLite's own I/O errors are: an
// SQLITE_IOERR_* code (SQLITE_FULL for a full disk, which SQLite handles as
// such), never as success or as a code SQLite would not expect from a file.
int as_io_error(int rc) {
  if ((rc & 0xFF) == SQLITE_IOERR || rc == SQLITE_FULL)
    return rc;
  return SQLITE_IOERR_WRITE;
}

int flush_wal(sqlite3_file* f) {
  auto* cf = reinterpret_cast<coalescing_file*>(f);
  auto* w = cf->wal;
  if (w == nullptr || w->bytes.empty())
    return SQLITE_OK;
  // The unix VFS writes at most 128 KiB - 1 per call (a larger request
  // comes back short, as SQLITE_FULL): hand it pieces below that.
  int rc = SQLITE_OK;
  size_t done = 0;
  while (done < w->bytes.size()) {
    auto n = std::min(w->bytes.size() - done, wal_write_chunk);
    rc = cf->real->pMethods->xWrite(
      cf->real, w->bytes.data() + done, static_cast<int>(n),
      w->offset + static_cast<sqlite3_int64>(done));
    if (rc != SQLITE_OK)
      break;
    done += n;
  }
  if (rc != SQLITE_OK) {
    // Keep what did not go out, at its offset: SQLite sees the error (the
    // commit fails and is rolled back, or the next call on the file tries
    // again); the bytes are never dropped as if written.
    w->bytes.erase(0, done);
    w->offset += static_cast<sqlite3_int64>(done);
    return as_io_error(rc);
  }
  w->bytes.clear();
  w->commit_pending = false;
  return SQLITE_OK;
}

// Takes the error a barrier could not return, if any.
int take_deferred(sqlite3_file* f) {
  auto* cf = reinterpret_cast<coalescing_file*>(f);
  auto rc = cf->deferred_rc;
  cf->deferred_rc = SQLITE_OK;
  return rc;
}

// Flushes the WAL linked to a database file, if any.
int flush_peer(sqlite3_file* f) {
  if (auto rc = take_deferred(f); rc != SQLITE_OK)
    return rc;
  auto* peer = reinterpret_cast<coalescing_file*>(f)->peer;
  return peer != nullptr && peer->wal != nullptr
           ? flush_wal(reinterpret_cast<sqlite3_file*>(peer))
           : SQLITE_OK;
}

int cf_close(sqlite3_file* f) {
  auto* cf = reinterpret_cast<coalescing_file*>(f);
  // Buffered bytes at close belong to no commit (a commit flushes before
  // it returns): a failure here is still reported.
  auto rc = take_deferred(f);
  if (auto frc = flush_wal(f); rc == SQLITE_OK)
    rc = frc;
  if (cf->peer != nullptr) {
    cf->peer->peer = nullptr;
    cf->peer = nullptr;
  }
  auto* r = cf->real;
  auto rc2 = r->pMethods != nullptr ? r->pMethods->xClose(r) : SQLITE_OK;
  delete cf->wal;
  cf->wal = nullptr;
  return rc != SQLITE_OK ? rc : rc2;
}

int cf_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  if (auto rc = flush_wal(f); rc != SQLITE_OK)
    return rc;
  auto* r = real_of(f);
  return r->pMethods->xRead(r, buf, n, off);
}

int cf_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  auto* cf = reinterpret_cast<coalescing_file*>(f);
  auto* w = cf->wal;
  if (w == nullptr)
    return cf->real->pMethods->xWrite(cf->real, buf, n, off);
  auto size = static_cast<size_t>(n);
  // This write is the page of a commit frame: flush once it is in.
  bool completes_commit = w->commit_pending;
  bool appends = !w->bytes.empty()
                 && off == w->offset
                             + static_cast<sqlite3_int64>(w->bytes.size());
  if (!appends) {
    if (auto rc = flush_wal(f); rc != SQLITE_OK)
      return rc;
    w->offset = off;
  }
  if (w->bytes.size() + size > wal_buffer_limit) {
    if (auto rc = flush_wal(f); rc != SQLITE_OK)
      return rc;
    return cf->real->pMethods->xWrite(cf->real, buf, n, off);
  }
  w->bytes.append(static_cast<const char*>(buf), size);
  if (completes_commit) {
    w->commit_pending = false;
    return flush_wal(f);
  }
  if (size == wal_frame_header_size) {
    auto* p = static_cast<const unsigned char*>(buf);
    w->commit_pending = (p[4] | p[5] | p[6] | p[7]) != 0;
  }
  return SQLITE_OK;
}

int cf_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (auto rc = flush_wal(f); rc != SQLITE_OK)
    return rc;
  auto* r = real_of(f);
  return r->pMethods->xTruncate(r, size);
}

int cf_sync(sqlite3_file* f, int flags) {
  if (auto rc = take_deferred(f); rc != SQLITE_OK)
    return rc;
  if (auto rc = flush_wal(f); rc != SQLITE_OK)
    return rc;
  auto* r = real_of(f);
  return r->pMethods->xSync(r, flags);
}

int cf_file_size(sqlite3_file* f, sqlite3_int64* size) {
  if (auto rc = flush_wal(f); rc != SQLITE_OK)
    return rc;
  auto* r = real_of(f);
  return r->pMethods->xFileSize(r, size);
}

int cf_lock(sqlite3_file* f, int level) {
  if (auto rc = take_deferred(f); rc != SQLITE_OK)
    return rc;
  if (auto rc = flush_wal(f); rc != SQLITE_OK)
    return rc;
  auto* r = real_of(f);
  return r->pMethods->xLock(r, level);
}

int cf_unlock(sqlite3_file* f, int level) {
  if (auto rc = take_deferred(f); rc != SQLITE_OK)
    return rc;
  if (auto rc = flush_wal(f); rc != SQLITE_OK)
    return rc;
  auto* r = real_of(f);
  return r->pMethods->xUnlock(r, level);
}

int cf_check_reserved(sqlite3_file* f, int* out) {
  auto* r = real_of(f);
  return r->pMethods->xCheckReservedLock(r, out);
}

int cf_file_control(sqlite3_file* f, int op, void* arg) {
  if (auto rc = flush_wal(f); rc != SQLITE_OK)
    return rc;
  auto* r = real_of(f);
  return r->pMethods->xFileControl(r, op, arg);
}

int cf_sector_size(sqlite3_file* f) {
  auto* r = real_of(f);
  return r->pMethods->xSectorSize(r);
}

int cf_device_characteristics(sqlite3_file* f) {
  auto* r = real_of(f);
  return r->pMethods->xDeviceCharacteristics(r);
}

int cf_shm_map(sqlite3_file* f, int pg, int pgsz, int extend,
               void volatile** out) {
  auto* r = real_of(f);
  return r->pMethods->xShmMap(r, pg, pgsz, extend, out);
}

int cf_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  if (auto rc = flush_peer(f); rc != SQLITE_OK)
    return rc;
  auto* r = real_of(f);
  return r->pMethods->xShmLock(r, offset, n, flags);
}

void cf_shm_barrier(sqlite3_file* f) {
  // xShmBarrier returns nothing: a failed flush is kept for the next call
  // on this file that can report it (the unlock or shm lock that follows
  // a barrier), and the bytes stay buffered for a retry.
  if (auto rc = flush_peer(f); rc != SQLITE_OK) {
    auto* cf = reinterpret_cast<coalescing_file*>(f);
    if (cf->deferred_rc == SQLITE_OK)
      cf->deferred_rc = rc;
  }
  auto* r = real_of(f);
  r->pMethods->xShmBarrier(r);
}

int cf_shm_unmap(sqlite3_file* f, int del) {
  auto* r = real_of(f);
  return r->pMethods->xShmUnmap(r, del);
}

int cf_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  if (auto rc = flush_wal(f); rc != SQLITE_OK)
    return rc;
  auto* r = real_of(f);
  return r->pMethods->xFetch(r, off, n, out);
}

int cf_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  auto* r = real_of(f);
  return r->pMethods->xUnfetch(r, off, p);
}

const sqlite3_io_methods coalescing_methods = {
  3,
  cf_close,
  cf_read,
  cf_write,
  cf_truncate,
  cf_sync,
  cf_file_size,
  cf_lock,
  cf_unlock,
  cf_check_reserved,
  cf_file_control,
  cf_sector_size,
  cf_device_characteristics,
  cf_shm_map,
  cf_shm_lock,
  cf_shm_barrier,
  cf_shm_unmap,
  cf_fetch,
  cf_unfetch,
};

int cf_open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags,
            int* out_flags) {
  auto* cf = reinterpret_cast<coalescing_file*>(f);
  cf->base.pMethods = nullptr;
  cf->real = reinterpret_cast<sqlite3_file*>(cf + 1);
  cf->wal = nullptr;
  cf->peer = nullptr;
  cf->deferred_rc = SQLITE_OK;
  cf->pad_ = 0;
  auto rc = base_vfs->xOpen(base_vfs, name, cf->real, flags, out_flags);
  if (cf->real->pMethods == nullptr)
    return rc;
  // Methods older than version 3 lack shm/fetch: leave such files alone.
  if (cf->real->pMethods->iVersion < 3) {
    cf->real->pMethods->xClose(cf->real);
    cf->real->pMethods = nullptr;
    return SQLITE_CANTOPEN;
  }
  cf->base.pMethods = &coalescing_methods;
  if ((flags & SQLITE_OPEN_WAL) != 0 && rc == SQLITE_OK && name != nullptr) {
    // The database file was opened through this VFS too (same connection).
    auto* db = reinterpret_cast<coalescing_file*>(
      sqlite3_database_file_object(name));
    if (db != nullptr && db->base.pMethods == &coalescing_methods
        && db->peer == nullptr) {
      cf->wal = new (std::nothrow) wal_buffer;
      if (cf->wal != nullptr) {
        cf->peer = db;
        db->peer = cf;
      }
    }
  }
  return rc;
}

constexpr const char* coalescing_vfs_name = "vigil-wal-coalescing";

// Registers the VFS once; nullptr when the default VFS cannot be wrapped
// (then connections use the default VFS directly).
const char* coalescing_vfs() {
  static const char* name = [] () -> const char* {
    base_vfs = sqlite3_vfs_find(nullptr);
    if (base_vfs == nullptr || base_vfs->iVersion < 2)
      return nullptr;
    static sqlite3_vfs vfs = *base_vfs;
    vfs.szOsFile = static_cast<int>(sizeof(coalescing_file))
                   + base_vfs->szOsFile;
    // The real file follows the wrapper: keep it 8-byte aligned.
    static_assert(sizeof(coalescing_file) % 8 == 0);
    vfs.zName = coalescing_vfs_name;
    vfs.pNext = nullptr;
    vfs.xOpen = cf_open;
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK)
      return nullptr;
    return coalescing_vfs_name;
  }();
  return name;
}

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
                            path == ":memory:" ? nullptr : coalescing_vfs());
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
    conn->checkpoint_in_background(path, coalescing_vfs(),
                                   opts.sqlite_checkpoint_pages,
                                   opts.sqlite_synchronous_full);
  return std::unique_ptr<sql_connection>{std::move(conn)};
}

} // namespace vigil
