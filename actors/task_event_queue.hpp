#pragma once

// Celery's task events on their way out: a node's consumers and workers
// push them (never waiting on the broker), its remote-control actor takes
// them in batches and publishes them on the `celeryev` exchange. Bounded:
// when the publisher falls behind, new events are dropped and counted
// (events are best effort, as Celery's are). Switched on by
// worker.send-events or the remote-control `enable_events`; locks.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "messages/task_events.hpp"

namespace vigil {

class task_event_queue {
public:
  explicit task_event_queue(bool enabled, size_t max = 100000)
    : enabled_(enabled), max_(max) {}

  /// True while task events are sent: producers check it before building
  /// an event.
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }

  /// Switches task events on or off; false if they already were.
  bool enable(bool on) { return enabled_.exchange(on) != on; }

  /// Queues `ev` (dropped while disabled or full).
  void push(task_event ev);

  /// Takes everything queued, oldest first (from one thread: the
  /// publisher's).
  std::vector<task_event> take();

  /// Events dropped because the queue was full.
  uint64_t dropped() const { return dropped_.load(); }

private:
  std::atomic<bool> enabled_;
  size_t max_;
  std::mutex mtx_;
  std::vector<task_event> events_;
  // The capacity take() gives the queue next (touched by take() only).
  size_t next_capacity_ = 64;
  std::atomic<uint64_t> dropped_{0};
};

} // namespace vigil
