#include "adapters/sqlite_checkpointer.hpp"

#include <sqlite3.h>

#include <spdlog/spdlog.h>

namespace vigil {

std::unique_ptr<sqlite_checkpointer>
sqlite_checkpointer::start(sqlite3* writer, const std::string& path,
                           const char* vfs, int threshold_frames,
                           bool synchronous_full) {
  sqlite3* own = nullptr;
  auto rc = sqlite3_open_v2(path.c_str(), &own,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs);
  // Checkpoints sync the WAL and the database as the writer's setting says.
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(own,
                      synchronous_full ? "PRAGMA synchronous=FULL;"
                                       : "PRAGMA synchronous=NORMAL;",
                      nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    spdlog::warn("sqlite: no background checkpoints ({}); the writer "
                 "checkpoints itself",
                 own != nullptr ? sqlite3_errmsg(own) : sqlite3_errstr(rc));
    sqlite3_close(own);
    return nullptr;
  }
  std::unique_ptr<sqlite_checkpointer> self{
    new sqlite_checkpointer(writer, own, threshold_frames,
                            synchronous_full ? SQLITE_SYNC_FULL
                                             : SQLITE_SYNC_NORMAL)};
  try {
    self->thread_ = std::thread{[p = self.get()] { p->run(); }};
  } catch (const std::exception& e) {
    spdlog::warn("sqlite: no background checkpoints ({}); the writer "
                 "checkpoints itself",
                 e.what());
    return nullptr; // the destructor closes `own`; no hook is installed yet
  }
  sqlite3_wal_hook(writer, &sqlite_checkpointer::on_commit, self.get());
  return self;
}

sqlite_checkpointer::sqlite_checkpointer(sqlite3* writer, sqlite3* own,
                                         int threshold_frames, int sync_flags)
  : writer_(writer),
    own_(own),
    threshold_(threshold_frames),
    sync_flags_(sync_flags) {
  // nop
}

sqlite_checkpointer::~sqlite_checkpointer() {
  if (thread_.joinable()) {
    sqlite3_wal_hook(writer_, nullptr, nullptr);
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  sqlite3_close(own_);
}

int sqlite_checkpointer::on_commit(void* ptr, sqlite3* db, const char* name,
                                   int frames) {
  auto* self = static_cast<sqlite_checkpointer*>(ptr);
  if (frames < self->threshold_)
    return SQLITE_OK;
  std::unique_lock<std::mutex> guard{self->mtx_};
  if (self->requested_ || self->running_)
    return SQLITE_OK; // still copying: the WAL grows a little meanwhile
  if (self->copied_) {
    // Only what was committed since the background run is left to copy;
    // once all is copied, the next transaction restarts the WAL.
    self->copied_ = false;
    guard.unlock();
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                              nullptr);
    return SQLITE_OK;
  }
  self->requested_ = true;
  guard.unlock();
  self->wake_.notify_one();
  return SQLITE_OK;
}

void sqlite_checkpointer::sync_database() {
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(own_, "main", SQLITE_FCNTL_FILE_POINTER, &file)
        != SQLITE_OK
      || file == nullptr || file->pMethods == nullptr)
    return;
  // Only the pass that completes a checkpoint syncs the database, and that
  // is the one in line: it would wait for every page the background passes
  // wrote (~60 ms at 50,000 pages, with every connection waiting on the
  // writer). Synced here, it waits only for the last few.
  if (auto rc = file->pMethods->xSync(file, sync_flags_); rc != SQLITE_OK)
    spdlog::warn("sqlite: syncing the database after a checkpoint pass "
                 "failed: {}",
                 sqlite3_errstr(rc));
}

bool sqlite_checkpointer::stop_requested() {
  std::lock_guard<std::mutex> guard{mtx_};
  return stop_;
}

void sqlite_checkpointer::run() {
  std::unique_lock<std::mutex> guard{mtx_};
  for (;;) {
    wake_.wait(guard, [this] { return requested_ || stop_; });
    if (stop_)
      return;
    requested_ = false;
    running_ = true;
    guard.unlock();
    // Pass after pass, each copying what was committed during the one
    // before, until a pass finds little new: the commit that finishes in
    // line then copies only that little, instead of everything committed
    // during a long first pass (a stall of the writer, seen in the p99).
    int done_before = 0;
    for (int pass = 0; pass < max_passes; ++pass) {
      int log = 0;
      int done = 0;
      auto rc = sqlite3_wal_checkpoint_v2(own_, nullptr,
                                          SQLITE_CHECKPOINT_PASSIVE, &log,
                                          &done);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        spdlog::warn("sqlite: background checkpoint failed: {}",
                     sqlite3_errmsg(own_));
        break;
      }
      // `done` counts from the WAL's start; it falls when the writer
      // restarted the WAL meanwhile (then this pass started a new round).
      auto copied = done >= done_before ? done - done_before : done;
      done_before = done;
      if (copied > 0)
        sync_database();
      if (rc == SQLITE_BUSY || copied < small_rest_frames)
        break;
      if (stop_requested())
        return;
    }
    guard.lock();
    running_ = false;
    copied_ = true;
  }
}

} // namespace vigil
