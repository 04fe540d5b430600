#include "actors/revoked_set.hpp"

namespace vigil {

void revoked_set::purge(clock::time_point now) {
  while (!order_.empty()) {
    auto& [id, t] = order_.front();
    auto it = at_.find(id);
    bool stale = it == at_.end() || it->second != t;
    if (!stale && now - t < expires_ && at_.size() <= max_)
      break;
    if (!stale)
      at_.erase(it);
    order_.pop_front();
  }
}

void revoked_set::add(const std::string& id) {
  std::lock_guard guard{mtx_};
  auto now = clock::now();
  at_[id] = now;
  order_.emplace_back(id, now);
  purge(now);
}

bool revoked_set::contains(const std::string& id) {
  std::lock_guard guard{mtx_};
  purge(clock::now());
  return at_.count(id) > 0;
}

std::vector<std::string> revoked_set::ids() {
  std::lock_guard guard{mtx_};
  purge(clock::now());
  std::vector<std::string> out;
  out.reserve(at_.size());
  for (auto& [id, t] : order_)
    if (auto it = at_.find(id); it != at_.end() && it->second == t)
      out.push_back(id);
  return out;
}

size_t revoked_set::size() {
  std::lock_guard guard{mtx_};
  purge(clock::now());
  return at_.size();
}

} // namespace vigil
