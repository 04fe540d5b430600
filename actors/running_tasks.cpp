#include "actors/running_tasks.hpp"

#include "messages/clock.hpp"

namespace vigil {

void running_tasks::started(const delivery& d,
                            std::shared_ptr<task_control> control) {
  entry e{d.msg.id,         d.msg.task, d.msg.argsrepr, d.msg.kwargsrepr,
          d.queue,          d.msg.priority, d.redelivered,
          static_cast<double>(now_unix_us()) / 1e6};
  std::lock_guard guard{mtx_};
  by_id_[d.msg.id] = slot{std::move(e), std::move(control)};
}

void running_tasks::finished(const std::string& id) {
  std::lock_guard guard{mtx_};
  by_id_.erase(id);
}

std::vector<std::string>
running_tasks::terminate(const std::vector<std::string>& ids) {
  std::vector<std::string> found;
  std::lock_guard guard{mtx_};
  for (auto& id : ids)
    if (auto i = by_id_.find(id); i != by_id_.end()) {
      if (i->second.control)
        i->second.control->cancel();
      found.push_back(id);
    }
  return found;
}

std::vector<running_tasks::entry> running_tasks::list() {
  std::vector<entry> out;
  std::lock_guard guard{mtx_};
  out.reserve(by_id_.size());
  for (auto& [id, s] : by_id_)
    out.push_back(s.info);
  return out;
}

} // namespace vigil
