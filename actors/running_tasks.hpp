#pragma once

// The tasks a node's workers are running now, with their cancellation
// flags: shared by the workers (which add and remove them) and the remote
// control, which lists them for `inspect active` and cancels one on
// `revoke(terminate=True)` (C++ cannot kill a thread: the task sees its
// flag, see task_control). Locks.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "messages/task_message.hpp"
#include "tasks/task_control.hpp"

namespace vigil {

class running_tasks {
public:
  /// One running task, as `inspect active` shows it.
  struct entry {
    std::string id;
    std::string name;
    std::string argsrepr;
    std::string kwargsrepr;
    std::string queue;
    int32_t priority = 0;
    bool redelivered = false;
    /// Unix seconds.
    double time_start = 0;
  };

  /// `d` started, with `control` as its cancellation flag.
  void started(const delivery& d, std::shared_ptr<task_control> control);

  /// The task `id` ended (or was given up on).
  void finished(const std::string& id);

  /// Sets the cancellation flag of each running task in `ids`; answers the
  /// ids it found.
  std::vector<std::string> terminate(const std::vector<std::string>& ids);

  /// The running tasks.
  std::vector<entry> list();

private:
  struct slot {
    entry info;
    std::shared_ptr<task_control> control;
  };
  std::mutex mtx_;
  std::unordered_map<std::string, slot> by_id_;
};

} // namespace vigil
