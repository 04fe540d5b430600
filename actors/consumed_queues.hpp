#pragma once

// The queues a node's consumers take tasks from, changed at run time by
// the remote-control `add_consumer` / `cancel_consumer` commands (shared by
// the remote control and the consumers, which pick a change up before their
// next fetch); locks.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace vigil {

class consumed_queues {
public:
  explicit consumed_queues(std::vector<std::string> initial)
    : queues_(std::move(initial)) {}

  /// Starts consuming `queue`; false if it already was.
  bool add(const std::string& queue);

  /// Stops consuming `queue`; false if it was not.
  bool remove(const std::string& queue);

  /// The queues now, in the order added.
  std::vector<std::string> list();

  /// Bumped by each change.
  uint64_t version() const { return version_.load(); }

private:
  std::mutex mtx_;
  std::vector<std::string> queues_;
  std::atomic<uint64_t> version_{0};
};

} // namespace vigil
