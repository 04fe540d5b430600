#include "actors/running_tasks.hpp"

#include "messages/clock.hpp"

namespace vigil {

void running_tasks::started(const delivery& d,
                            std::shared_ptr<task_control> control,
                            std::function<void()> kill) {
  auto e = task_info_of(d);
  e.time_start = static_cast<double>(now_unix_us()) / 1e6;
  std::lock_guard guard{mtx_};
  by_id_[d.msg.id] = slot{std::move(e), std::move(control), std::move(kill)};
}

void running_tasks::finished(const std::string& id) {
  std::lock_guard guard{mtx_};
  by_id_.erase(id);
}

std::unordered_set<std::string> running_tasks::ids() {
  std::unordered_set<std::string> out;
  std::lock_guard guard{mtx_};
  for (auto& [id, s] : by_id_)
    out.insert(id);
  return out;
}

std::vector<std::string>
running_tasks::terminate(const std::vector<std::string>& ids, bool kill,
                         std::vector<std::string>* not_killed) {
  std::vector<std::string> found;
  std::lock_guard guard{mtx_};
  for (auto& id : ids)
    if (auto i = by_id_.find(id); i != by_id_.end()) {
      if (i->second.control)
        i->second.control->cancel();
      if (kill && i->second.kill)
        i->second.kill();
      else if (kill && not_killed != nullptr)
        not_killed->push_back(id);
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
