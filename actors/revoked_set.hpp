#pragma once

// The ids of revoked tasks, as a Celery worker keeps them (celery's
// LimitedSet): at most `max` ids, each forgotten `expires` after it was
// revoked. Shared by a node's remote control (which adds) and its task
// consumers (which check each due delivery), so it locks.

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace vigil {

class revoked_set {
public:
  revoked_set(size_t max, std::chrono::seconds expires)
    : max_(max), expires_(expires) {}

  /// Revokes `id` now (again: its expiry starts over).
  void add(const std::string& id);

  /// True if `id` was revoked and has not expired.
  bool contains(const std::string& id);

  /// The ids held now (for the `revoked` and `hello` commands).
  std::vector<std::string> ids();

  size_t size();

private:
  using clock = std::chrono::steady_clock;
  void purge(clock::time_point now);

  std::mutex mtx_;
  size_t max_;
  std::chrono::seconds expires_;
  /// id -> when it was (last) revoked.
  std::unordered_map<std::string, clock::time_point> at_;
  /// Ids in the order revoked; stale entries (re-revoked) are skipped.
  std::deque<std::pair<std::string, clock::time_point>> order_;
};

} // namespace vigil
