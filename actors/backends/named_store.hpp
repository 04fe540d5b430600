#pragma once

// The in-process backends' stores: every backend opened on one name (its
// memory:// URL) in this process shares one store, as Redis clients of one
// server share its keys. A store lives while a backend uses it.

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace vigil {

/// The store named `name` of type `Store`, created on first use.
template <class Store>
std::shared_ptr<Store> named_store(const std::string& name) {
  static std::mutex mtx;
  static std::map<std::string, std::weak_ptr<Store>> stores;
  std::lock_guard<std::mutex> guard{mtx};
  auto ptr = stores[name].lock();
  if (!ptr) {
    ptr = std::make_shared<Store>();
    stores[name] = ptr;
  }
  return ptr;
}

} // namespace vigil
