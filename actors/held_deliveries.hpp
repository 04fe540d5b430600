#pragma once

#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace vigil {

/// The delivery tags a task consumer holds unacknowledged, kept where its
/// supervisor can hand them to the consumer's successor: a consumer that
/// dies leaves them here, and the successor gives them back at once
/// (broker::restore_unacked) instead of leaving them in the broker until
/// the visibility timeout. The consumer updates it once per batch; the
/// successor reads it on another thread, hence the lock.
class held_deliveries {
public:
  /// Records tags just fetched.
  void add(const std::vector<std::string>& tags) {
    std::lock_guard guard{mtx_};
    tags_.insert(tags.begin(), tags.end());
  }

  /// Forgets tags acknowledged, dead-lettered or given back.
  void remove(const std::vector<std::string>& tags) {
    if (tags.empty())
      return;
    std::lock_guard guard{mtx_};
    for (auto& tag : tags)
      tags_.erase(tag);
  }

  /// Every tag held, in no particular order.
  std::vector<std::string> snapshot() const {
    std::lock_guard guard{mtx_};
    return {tags_.begin(), tags_.end()};
  }

  size_t size() const {
    std::lock_guard guard{mtx_};
    return tags_.size();
  }

private:
  mutable std::mutex mtx_;
  std::unordered_set<std::string> tags_;
};

} // namespace vigil
