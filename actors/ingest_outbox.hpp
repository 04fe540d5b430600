#pragma once

// The ingest actor's side of the task outbox (docs/STORAGE.md, "The task
// outbox"): the post_process tasks of a batch are written to `vigil_outbox`
// in the batch's transaction, published after the commit, and their row is
// deleted once the broker has them for good. A durable broker (Redis,
// RabbitMQ) has them when the publish returns; the in-process memory://
// broker only when the tasks are acknowledged, since its queues die with the
// process. Rows left by a node that was killed are republished when the
// next one starts. Deletions ride in the next batch's transaction; an idle
// node deletes on its own after a second.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/error.hpp>

#include "actors/backends/broker.hpp"
#include "actors/backends/event_store.hpp"
#include "messages/post_process_record.hpp"
#include "messages/task_message.hpp"

namespace vigil {

/// Publishes a batch of tasks (the ingest actor's reconnecting publish).
using publish_fn
  = std::function<caf::error(const std::vector<outgoing_task>&)>;

/// Not thread-safe except `watch`'s listener: owned by the ingest actor.
class task_outbox {
public:
  explicit task_outbox(std::string queue);

  /// Hooks up a broker that is not durable: its settlement reports are
  /// collected (on any thread) and `wake`, if set, is called when the
  /// first of a run arrives. Does nothing for a durable broker, or after the first
  /// successful call.
  void watch(broker& conn, std::function<void()> wake);

  /// Takes in the settlements reported since the last call.
  void drain();

  /// The outbox part of the next batch's transaction: the record of the
  /// post_process tasks of `events` (transactions have none), and the rows
  /// to delete. The record builder keeps the tasks for `publish_batch`.
  outbox_write prepare(const std::vector<stored_event>& events);

  /// The batch committed (`w` as store_batch left it): its deletions are
  /// done; returns the tasks to publish.
  std::vector<outgoing_task> committed(const outbox_write& w);

  /// The batch did not commit: its deletions are still to do.
  void rolled_back(outbox_write& w);

  /// The publish of row `row`'s tasks returned `err`: on success the row
  /// is settled (durable broker) or tracked until its tasks are
  /// acknowledged; on failure it waits for `catch_up`.
  void published(int64_t row, std::vector<outgoing_task> tasks,
                 const caf::error& err, bool durable);

  /// Republishes rows whose publish failed, then (once per start) the rows
  /// a previous run left, a page at a time. Stops at the first failure.
  caf::error catch_up(event_store& store, const publish_fn& publish,
                      bool durable);

  /// Notes the highest row id before this run writes any: the rows up to
  /// it are a previous run's, to republish. Once; call before each batch.
  caf::error bound_recovery(event_store& store);

  /// The rows a previous run left are republished.
  bool recovered() const {
    return recovered_;
  }

  /// Deletes the settled rows in a transaction of their own.
  caf::error flush(event_store& store);

  /// Something is left to do: rows to delete, to publish, to recover, or
  /// to watch until their tasks settle.
  bool has_work() const {
    return !settled_.empty() || !unpublished_.empty() || !recovered_
           || !remaining_.empty();
  }

  /// Rows whose publish is pending or failed.
  size_t unpublished() const {
    return unpublished_.size();
  }

  /// Rows whose tasks the memory broker still holds.
  size_t tracked_rows() const {
    return remaining_.size();
  }

  /// Tasks republished from rows a previous run left.
  uint64_t recovered_tasks() const {
    return recovered_tasks_;
  }

  /// Rows deleted.
  uint64_t deleted_rows() const {
    return deleted_;
  }

private:
  struct inbox {
    std::mutex mtx;
    std::vector<std::string> ids;
    std::function<void()> wake;
  };

  std::vector<outgoing_task> tasks_of(const post_process_batch& batch) const;

  /// Rows whose tasks are all settled, deleted by the next transaction.
  void settle(int64_t row);

  std::string queue_;
  std::shared_ptr<inbox> inbox_;
  std::shared_ptr<broker::settled_listener> listener_;
  /// The batch being written: filled by prepare()'s record builder.
  std::shared_ptr<post_process_batch> current_;
  std::vector<int64_t> settled_;
  struct pending {
    int64_t row;
    std::vector<outgoing_task> tasks;
  };
  std::deque<pending> unpublished_;
  /// Memory broker: the row of each task not yet settled, and how many
  /// tasks of each row are left.
  std::unordered_map<std::string, int64_t> task_row_;
  std::unordered_map<int64_t, size_t> remaining_;
  /// Recovery: rows up to `recover_until_` (the highest id at start) past
  /// `recover_after_` are still to republish.
  bool recovered_ = false;
  bool recovery_started_ = false;
  int64_t recover_after_ = 0;
  int64_t recover_until_ = 0;
  uint64_t recovered_tasks_ = 0;
  uint64_t deleted_ = 0;
};

} // namespace vigil
