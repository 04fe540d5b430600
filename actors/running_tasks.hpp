#pragma once

// The tasks a node's workers are running now, with their cancellation
// flags: shared by the workers (which add and remove them) and the remote
// control, which lists them for `inspect active` and stops one on
// `revoke(terminate=True)`: SIGKILL abandons the thread of a task that
// runs on one of its own (a hard time limit), any other signal sets its
// flag (C++ cannot interrupt a thread: the task sees its flag, see
// task_control). Also carries the node's held_tasks (`reserved`,
// `scheduled`), so that one shared object wires both. Locks.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/held_tasks.hpp"
#include "messages/task_message.hpp"
#include "tasks/task_control.hpp"

namespace vigil {

class running_tasks {
public:
  /// One running task, as `inspect active` shows it.
  using entry = task_info;

  /// `d` started, with `control` as its cancellation flag; `kill` (may be
  /// empty) abandons its thread at once.
  void started(const delivery& d, std::shared_ptr<task_control> control,
               std::function<void()> kill = {});

  /// The task `id` ended (or was given up on).
  void finished(const std::string& id);

  /// The ids of the running tasks.
  std::unordered_set<std::string> ids();

  /// Stops each running task in `ids`: its cancellation flag, and with
  /// `kill` its thread abandoned if it has one of its own (else the flag
  /// only: reported by `*not_killed`, may be null). Answers the ids found.
  std::vector<std::string> terminate(const std::vector<std::string>& ids,
                                     bool kill = false,
                                     std::vector<std::string>* not_killed
                                     = nullptr);

  /// The running tasks.
  std::vector<entry> list();

  /// What the node's consumers hold and have not started.
  held_tasks held;

private:
  struct slot {
    entry info;
    std::shared_ptr<task_control> control;
    std::function<void()> kill;
  };
  std::mutex mtx_;
  std::unordered_map<std::string, slot> by_id_;
};

} // namespace vigil
