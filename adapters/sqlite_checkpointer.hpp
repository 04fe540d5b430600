#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;

namespace vigil {

/// Copies a SQLite database's WAL back into the database file on a thread
/// of its own, so that the connection writing it does not stop for that.
///
/// SQLite's automatic checkpoint runs inside the commit that passes the
/// threshold: the writer reads every frame back, writes each page into the
/// database and syncs it before it can commit again, and on the ingest path
/// that is a third of the writer's kernel time. Here the commit only wakes
/// this thread, which checkpoints (PASSIVE: it never blocks the writer)
/// through a second connection, in passes until one finds little new,
/// syncing the database file after each (SQLite syncs it only in the pass
/// that completes a checkpoint, which would wait for all of them). The
/// next commit past the threshold after that finishes the job in line,
/// which by then copies only the few frames written meanwhile, so that the
/// WAL restarts from its beginning and stays bounded as with SQLite's own
/// checkpoints.
class sqlite_checkpointer {
public:
  /// Installs the checkpoint hook on `writer` (replacing SQLite's automatic
  /// checkpoint) and starts the thread with its own connection to `path`,
  /// opened through the VFS named `vfs` (nullptr: the default one).
  /// Returns nullptr when that fails; the caller keeps SQLite's automatic
  /// checkpoint then.
  static std::unique_ptr<sqlite_checkpointer>
  start(sqlite3* writer, const std::string& path, const char* vfs,
        int threshold_frames, bool synchronous_full);

  /// Removes the hook, stops the thread and closes its connection. Must run
  /// before the writer's connection is closed.
  ~sqlite_checkpointer();

  sqlite_checkpointer(const sqlite_checkpointer&) = delete;
  sqlite_checkpointer& operator=(const sqlite_checkpointer&) = delete;

private:
  sqlite_checkpointer(sqlite3* writer, sqlite3* own, int threshold_frames,
                      int sync_flags);

  static int on_commit(void* self, sqlite3* db, const char* name,
                       int frames);

  void run();

  bool stop_requested();

  /// Syncs the database file after a pass copied pages into it.
  void sync_database();

  /// A background run ends after a pass that copied fewer frames than this
  /// (or after `max_passes`, when the writer outpaces the copying).
  static constexpr int small_rest_frames = 2000;
  static constexpr int max_passes = 8;

  sqlite3* writer_;
  sqlite3* own_;
  int threshold_;
  /// SQLITE_SYNC_NORMAL or SQLITE_SYNC_FULL, as the writer's setting says.
  int sync_flags_;
  std::mutex mtx_;
  std::condition_variable wake_;
  bool requested_ = false;
  bool running_ = false;
  /// A background checkpoint finished since the last one in line.
  bool copied_ = false;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace vigil
