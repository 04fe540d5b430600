// WAL write coalescing, a VFS under the SQLite connections.
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

#include "adapters/sqlite_wal_vfs.hpp"

#include <algorithm>
#include <cstddef>
#include <new>
#include <string>

#include <sqlite3.h>

namespace vigil {

namespace {

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

} // namespace

const char* wal_coalescing_vfs() {
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

} // namespace vigil
