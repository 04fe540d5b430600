#include "actors/consumed_queues.hpp"

#include <algorithm>

namespace vigil {

bool consumed_queues::add(const std::string& queue) {
  std::lock_guard guard{mtx_};
  if (std::find(queues_.begin(), queues_.end(), queue) != queues_.end())
    return false;
  queues_.push_back(queue);
  ++version_;
  return true;
}

bool consumed_queues::remove(const std::string& queue) {
  std::lock_guard guard{mtx_};
  auto i = std::find(queues_.begin(), queues_.end(), queue);
  if (i == queues_.end())
    return false;
  queues_.erase(i);
  ++version_;
  return true;
}

std::vector<std::string> consumed_queues::list() {
  std::lock_guard guard{mtx_};
  return queues_;
}

} // namespace vigil
