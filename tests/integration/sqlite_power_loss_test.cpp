// Power loss under vigil's SQLite stack: the WAL-coalescing VFS
// (adapters/sqlite_wal_vfs.cpp) and the background checkpointer
// (adapters/sqlite_checkpointer.cpp) on top of SQLite's unix VFS.
//
// kill -9 tests only show that writes reach the kernel; a power cut also
// drops what the kernel had not synced. Here a VFS below vigil's records,
// for every write and truncation, what the file held before, and forgets
// that once the file is synced. A "power cut" copies the database and its
// WAL as they are and then undoes, newest first, the writes not yet synced
// (all of them, or all but an oldest part: writes that reached the disk in
// order up to some point). The -shm file is not copied: after a reboot its
// content is gone, and SQLite rebuilds it from the WAL.
//
// The claims tested (docs/STORAGE.md, "Durability"):
// - synchronous=full: every acknowledged commit survives, and the database
//   passes integrity_check;
// - synchronous=normal: the database passes integrity_check and holds a
//   prefix of the acknowledged commits (the last ones may be lost).
//
// - a WAL write that fails reaches SQLite as an I/O error (the commit is
//   not acknowledged), the coalescing VFS keeps what it could not write,
//   and once writes work again every acknowledged commit survives a cut.
//
// Its own executable: the fault VFS must be SQLite's default before vigil's
// VFS wraps the default (on the first open in the process).

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <sqlite3.h>
#include <unistd.h>

#include "adapters/sql.hpp"
#include "messages/errors.hpp"

using namespace vigil;

namespace {

// -- the recording VFS --------------------------------------------------------

struct undo_entry {
  sqlite3_int64 offset;
  std::string before; // what [offset, offset + before.size()) held
};

struct file_history {
  sqlite3_int64 synced_size = 0;
  std::vector<undo_entry> unsynced; // oldest first
};

std::mutex history_mtx;

// Write faults: WAL writes let through before failing, and how many fail
// after that (each then returns SQLITE_IOERR_WRITE without writing).
std::atomic<int> wal_writes_to_pass{0};
std::atomic<int> wal_writes_to_fail{0};
std::atomic<int> wal_writes_failed{0};

bool is_wal(const std::string* path) {
  return path != nullptr && path->size() > 4
         && path->compare(path->size() - 4, 4, "-wal") == 0;
}
std::map<std::string, file_history> histories;
sqlite3_vfs* unix_vfs = nullptr;

struct recording_file {
  sqlite3_file base;
  sqlite3_file* real;
  std::string* path; // nullptr: a temporary file, not recorded
};

sqlite3_file* real_of(sqlite3_file* f) {
  return reinterpret_cast<recording_file*>(f)->real;
}

sqlite3_int64 size_of(sqlite3_file* real) {
  sqlite3_int64 n = 0;
  real->pMethods->xFileSize(real, &n);
  return n;
}

// What [off, off + n) holds now, clipped to the file's end.
std::string read_range(sqlite3_file* real, sqlite3_int64 off, sqlite3_int64 n) {
  auto size = size_of(real);
  if (off >= size)
    return {};
  std::string out(static_cast<size_t>(std::min(n, size - off)), '\0');
  real->pMethods->xRead(real, out.data(), static_cast<int>(out.size()), off);
  return out;
}

int rec_close(sqlite3_file* f) {
  auto* rf = reinterpret_cast<recording_file*>(f);
  auto rc = rf->real->pMethods->xClose(rf->real);
  delete rf->path;
  rf->path = nullptr;
  return rc;
}

int rec_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  std::lock_guard<std::mutex> guard{history_mtx};
  return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}

int rec_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  auto* rf = reinterpret_cast<recording_file*>(f);
  std::lock_guard<std::mutex> guard{history_mtx};
  if (is_wal(rf->path) && wal_writes_to_fail.load() > 0) {
    if (wal_writes_to_pass.load() > 0) {
      --wal_writes_to_pass;
    } else {
      --wal_writes_to_fail;
      ++wal_writes_failed;
      return SQLITE_IOERR_WRITE;
    }
  }
  if (rf->path != nullptr)
    histories[*rf->path].unsynced.push_back(
      {off, read_range(rf->real, off, n)});
  return rf->real->pMethods->xWrite(rf->real, buf, n, off);
}

int rec_truncate(sqlite3_file* f, sqlite3_int64 size) {
  auto* rf = reinterpret_cast<recording_file*>(f);
  std::lock_guard<std::mutex> guard{history_mtx};
  if (rf->path != nullptr)
    histories[*rf->path].unsynced.push_back(
      {size, read_range(rf->real, size, size_of(rf->real) - size)});
  return rf->real->pMethods->xTruncate(rf->real, size);
}

int rec_sync(sqlite3_file* f, int flags) {
  auto* rf = reinterpret_cast<recording_file*>(f);
  std::lock_guard<std::mutex> guard{history_mtx};
  auto rc = rf->real->pMethods->xSync(rf->real, flags);
  if (rc == SQLITE_OK && rf->path != nullptr) {
    auto& h = histories[*rf->path];
    h.unsynced.clear();
    h.synced_size = size_of(rf->real);
  }
  return rc;
}

int rec_file_size(sqlite3_file* f, sqlite3_int64* size) {
  std::lock_guard<std::mutex> guard{history_mtx};
  return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

int rec_lock(sqlite3_file* f, int level) {
  return real_of(f)->pMethods->xLock(real_of(f), level);
}

int rec_unlock(sqlite3_file* f, int level) {
  return real_of(f)->pMethods->xUnlock(real_of(f), level);
}

int rec_check_reserved(sqlite3_file* f, int* out) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

int rec_file_control(sqlite3_file* f, int op, void* arg) {
  // A size hint grows the file outside xWrite: held under the lock, and
  // the growth counts as unsynced until the next sync.
  std::lock_guard<std::mutex> guard{history_mtx};
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

int rec_sector_size(sqlite3_file* f) {
  return real_of(f)->pMethods->xSectorSize(real_of(f));
}

int rec_device_characteristics(sqlite3_file* f) {
  return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

int rec_shm_map(sqlite3_file* f, int pg, int pgsz, int extend,
                void volatile** out) {
  return real_of(f)->pMethods->xShmMap(real_of(f), pg, pgsz, extend, out);
}

int rec_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}

void rec_shm_barrier(sqlite3_file* f) {
  real_of(f)->pMethods->xShmBarrier(real_of(f));
}

int rec_shm_unmap(sqlite3_file* f, int del) {
  return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}

int rec_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return real_of(f)->pMethods->xFetch(real_of(f), off, n, out);
}

int rec_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

const sqlite3_io_methods recording_methods = {
  3,
  rec_close,
  rec_read,
  rec_write,
  rec_truncate,
  rec_sync,
  rec_file_size,
  rec_lock,
  rec_unlock,
  rec_check_reserved,
  rec_file_control,
  rec_sector_size,
  rec_device_characteristics,
  rec_shm_map,
  rec_shm_lock,
  rec_shm_barrier,
  rec_shm_unmap,
  rec_fetch,
  rec_unfetch,
};

int rec_open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags,
             int* out_flags) {
  auto* rf = reinterpret_cast<recording_file*>(f);
  rf->base.pMethods = nullptr;
  rf->real = reinterpret_cast<sqlite3_file*>(rf + 1);
  rf->path = nullptr;
  auto rc = unix_vfs->xOpen(unix_vfs, name, rf->real, flags, out_flags);
  if (rf->real->pMethods == nullptr)
    return rc;
  rf->base.pMethods = &recording_methods;
  if (name != nullptr) {
    rf->path = new std::string{name};
    std::lock_guard<std::mutex> guard{history_mtx};
    // What is on disk when a file is opened counts as synced.
    if (histories.find(*rf->path) == histories.end())
      histories[*rf->path].synced_size = size_of(rf->real);
  }
  return rc;
}

/// Makes the recording VFS SQLite's default, once.
void install_recording_vfs() {
  static bool done = [] {
    unix_vfs = sqlite3_vfs_find(nullptr);
    REQUIRE(unix_vfs != nullptr);
    static sqlite3_vfs vfs = *unix_vfs;
    vfs.szOsFile = static_cast<int>(sizeof(recording_file))
                   + unix_vfs->szOsFile;
    static_assert(sizeof(recording_file) % 8 == 0);
    vfs.zName = "vigil-test-recording";
    vfs.pNext = nullptr;
    vfs.xOpen = rec_open;
    REQUIRE(sqlite3_vfs_register(&vfs, 1) == SQLITE_OK);
    return true;
  }();
  (void) done;
}

/// Copies `db` and its WAL into `dest` as a power cut would leave them:
/// the unsynced writes undone newest first, except the oldest `keep` of
/// each file's (which reached the disk, in order).
void power_cut_copy(const std::filesystem::path& db,
                    const std::filesystem::path& dest, size_t keep) {
  std::lock_guard<std::mutex> guard{history_mtx};
  std::filesystem::create_directories(dest);
  for (auto suffix : {"", "-wal"}) {
    auto src = std::filesystem::path{db.string() + suffix};
    if (!std::filesystem::exists(src))
      continue;
    auto out = dest / src.filename();
    std::filesystem::copy_file(
      src, out, std::filesystem::copy_options::overwrite_existing);
    auto h = histories.find(src.string());
    if (h == histories.end())
      continue;
    auto* fp = std::fopen(out.c_str(), "r+b");
    REQUIRE(fp != nullptr);
    const auto& undo = h->second.unsynced;
    for (size_t i = undo.size(); i > std::min(keep, undo.size()); --i) {
      const auto& u = undo[i - 1];
      std::fseek(fp, static_cast<long>(u.offset), SEEK_SET);
      std::fwrite(u.before.data(), 1, u.before.size(), fp);
    }
    std::fclose(fp);
    // Writes past the synced end are lost with the growth they caused,
    // unless some were kept.
    if (keep == 0)
      std::filesystem::resize_file(
        out, static_cast<uintmax_t>(h->second.synced_size));
  }
}

struct cut {
  std::filesystem::path dir;
  int64_t acknowledged; // rows whose commit had returned at the cut
};

std::filesystem::path work_dir(const std::string& name) {
  const char* base = std::getenv("VIGIL_TEST_WORKDIR");
  auto dir = std::filesystem::path{base != nullptr ? base : "/tmp"}
             / ("vigil-powercut-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// Writes rows in small transactions through vigil's SQLite stack (small
/// checkpoint threshold: many background checkpoints and WAL restarts),
/// cutting the power at several points; returns the cuts.
std::vector<cut> write_with_cuts(const std::filesystem::path& dir,
                                 bool synchronous_full, int batches) {
  install_recording_vfs();
  auto db = dir / "live.db";
  sql_options opts;
  opts.sqlite_synchronous_full = synchronous_full;
  opts.sqlite_checkpoint_pages = 64;
  auto conn = sql_connection::open("sqlite://" + db.string(), opts);
  REQUIRE(conn);
  auto& c = **conn;
  // Random keys: each row writes a random leaf of the index, as the
  // nodestore's md5 ids do.
  REQUIRE_FALSE(c.exec_script("CREATE TABLE t (k TEXT PRIMARY KEY,"
                              " n INTEGER NOT NULL, body TEXT NOT NULL)"));
  // The table itself on disk before the first cut (synced), so that every
  // cut has it.
  REQUIRE(c.query("PRAGMA wal_checkpoint(FULL)"));
  std::mt19937_64 rng{42};
  std::vector<cut> cuts;
  int64_t rows = 0;
  for (int b = 0; b < batches; ++b) {
    REQUIRE_FALSE(c.begin());
    for (int i = 0; i < 10; ++i, ++rows) {
      auto key = std::to_string(rng());
      std::string body(200 + rng() % 400, static_cast<char>('a' + rows % 26));
      REQUIRE(c.exec("INSERT INTO t (k, n, body) VALUES (?, ?, ?)",
                     {key, rows, body}));
    }
    REQUIRE_FALSE(c.commit());
    if (b % (batches / 6) == batches / 12) {
      for (size_t keep : {size_t{0}, size_t{rng() % 64}, size_t{1u << 30}}) {
        auto d = dir / ("cut" + std::to_string(cuts.size()));
        power_cut_copy(db, d, keep);
        cuts.push_back({d, rows});
      }
    }
  }
  return cuts;
}

/// Opens a cut's copy (SQLite recovers the WAL) and checks it.
struct cut_state {
  std::string integrity;
  int64_t rows = 0;
  int64_t max_n = -1;
  bool bodies_ok = false;
};

cut_state inspect(const cut& x) {
  auto conn = sql_connection::open("sqlite://" + (x.dir / "live.db").string());
  REQUIRE(conn);
  cut_state s;
  auto ic = (*conn)->query("PRAGMA integrity_check");
  REQUIRE(ic);
  s.integrity = ic->empty() ? "" : ic->get_text(0, 0);
  auto n = (*conn)->query(
    "SELECT count(*), coalesce(max(n), -1),"
    " coalesce(sum(substr(body, 1, 1) = char(97 + n % 26)), 0) = count(*)"
    " FROM t");
  REQUIRE(n);
  s.rows = n->get_int64(0, 0);
  s.max_n = n->get_int64(0, 1);
  s.bodies_ok = n->get_int64(0, 2) == 1;
  return s;
}

} // namespace

TEST_CASE("synchronous=full: a power cut keeps every acknowledged commit",
          "[sqlite][powercut]") {
  auto dir = work_dir("full");
  auto cuts = write_with_cuts(dir, true, 240);
  REQUIRE(cuts.size() >= 12);
  for (const auto& x : cuts) {
    INFO(x.dir.string());
    auto s = inspect(x);
    CHECK(s.integrity == "ok");
    // Every commit that returned was synced; nothing after the cut exists.
    CHECK(s.rows == x.acknowledged);
    CHECK(s.max_n == x.acknowledged - 1);
    CHECK(s.bodies_ok);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("synchronous=normal: a power cut leaves a consistent prefix",
          "[sqlite][powercut]") {
  auto dir = work_dir("normal");
  auto cuts = write_with_cuts(dir, false, 1200);
  REQUIRE(cuts.size() >= 12);
  int lost_some = 0;
  for (const auto& x : cuts) {
    INFO(x.dir.string());
    auto s = inspect(x);
    lost_some += s.rows < x.acknowledged ? 1 : 0;
    CHECK(s.integrity == "ok");
    // The last commits may be lost, only whole, and only at the end.
    CHECK(s.rows <= x.acknowledged);
    CHECK(s.rows % 10 == 0);
    CHECK(s.max_n == s.rows - 1);
    CHECK(s.bodies_ok);
  }
  // The cuts did drop unsynced commits (WAL syncs come only with
  // checkpoints here): the simulation is not vacuous.
  CHECK(lost_some > 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a failed WAL write reaches SQLite and loses nothing acknowledged",
          "[sqlite][powercut]") {
  install_recording_vfs();
  // A new path per section run: the recorded histories are by path.
  static int run = 0;
  auto dir = work_dir("ioerr" + std::to_string(run++));
  auto db = dir / "live.db";
  sql_options opts;
  opts.sqlite_synchronous_full = true;
  auto conn = sql_connection::open("sqlite://" + db.string(), opts);
  REQUIRE(conn);
  auto& c = **conn;
  REQUIRE_FALSE(c.exec_script("CREATE TABLE t (k INTEGER PRIMARY KEY,"
                              " n INTEGER NOT NULL, body TEXT NOT NULL)"));
  int64_t acknowledged = 0;
  int64_t next = 0;
  // A transaction of `rows` rows of ~3 KiB: more than one 124 KiB write
  // when rows > 40. Returns whether its commit was acknowledged.
  auto write_tx = [&](int rows) {
    if (auto err = c.begin())
      return false;
    for (int i = 0; i < rows; ++i, ++next) {
      std::string body(3000, static_cast<char>('a' + next % 26));
      if (!c.exec("INSERT INTO t (k, n, body) VALUES (?, ?, ?)",
                  {next, next, body})) {
        c.rollback();
        return false;
      }
    }
    if (auto err = c.commit()) {
      // What SQLite said: its I/O error, not success or a foreign code.
      CHECK(error_text(err).find("disk I/O error") != std::string::npos);
      c.rollback();
      return false;
    }
    return true;
  };
  REQUIRE(write_tx(10));
  acknowledged = next;
  SECTION("every WAL write fails") {
    wal_writes_to_pass = 0;
    wal_writes_to_fail = 1 << 20;
  }
  SECTION("the second piece of a coalesced commit fails") {
    wal_writes_to_pass = 1;
    wal_writes_to_fail = 1;
  }
  SECTION("the first piece fails once") {
    wal_writes_to_pass = 0;
    wal_writes_to_fail = 1;
  }
  wal_writes_failed = 0;
  CHECK_FALSE(write_tx(100));
  CHECK(wal_writes_failed.load() > 0);
  wal_writes_to_fail = 0;
  wal_writes_to_pass = 0;
  // Writes work again: the connection goes on, and a new commit lands.
  int64_t failed_from = acknowledged;
  int64_t failed_to = next;
  bool landed = false;
  for (int attempt = 0; attempt < 3 && !landed; ++attempt)
    landed = write_tx(60);
  REQUIRE(landed);
  acknowledged += 60;
  // A power cut now (every unsynced write undone) keeps every
  // acknowledged row and none of the failed transaction's.
  auto cut_dir = dir / "cut";
  power_cut_copy(db, cut_dir, 0);
  auto copy = sql_connection::open("sqlite://" + (cut_dir / "live.db").string());
  REQUIRE(copy);
  auto ic = (*copy)->query("PRAGMA integrity_check");
  REQUIRE(ic);
  CHECK(ic->get_text(0, 0) == "ok");
  auto n = (*copy)->query(
    "SELECT count(*), coalesce(sum(n >= ? AND n < ?), 0),"
    " coalesce(sum(substr(body, 1, 1) = char(97 + n % 26)), 0) FROM t",
    {failed_from, failed_to});
  REQUIRE(n);
  CHECK(n->get_int64(0, 0) == acknowledged);
  CHECK(n->get_int64(0, 1) == 0);
  CHECK(n->get_int64(0, 2) == acknowledged);
  conn->reset();
  copy->reset();
  std::filesystem::remove_all(dir);
}
