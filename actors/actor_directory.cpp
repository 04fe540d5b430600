#include "actors/actor_directory.hpp"

namespace vigil {

void actor_directory::add(std::string service, caf::actor handle,
                          status_reply reply) {
  if (!handle)
    return;
  std::lock_guard<std::mutex> guard{mtx_};
  entries_.push_back({std::move(service), std::move(handle), reply});
}

std::vector<directory_entry> actor_directory::entries() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return entries_;
}

} // namespace vigil
