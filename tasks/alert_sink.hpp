#pragma once

// Where the records of fired alert rules go: the digests store's timeline
// (`mail:p:{project_id}`) once the digests service is plugged in; until
// then, and in tests, the implementations below.

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>

#include "messages/alert_record.hpp"

namespace vigil {

/// Receives one record per event that fired rules. Called from any worker
/// thread: implementations are thread-safe.
class alert_sink {
public:
  virtual ~alert_sink();

  /// Adds `record` to the timeline `timeline_key`. An error makes
  /// post_process undo the firing and retry the task, so nothing that fired
  /// is lost when the store is down.
  virtual caf::error fired(const std::string& timeline_key,
                           const alert_record& record) = 0;
};

/// Logs each record at info ("alert record for mail:p:1: event ... of issue
/// 7, rules default"), keeping nothing: what a node without a digests store
/// does.
class logging_alert_sink : public alert_sink {
public:
  caf::error fired(const std::string& timeline_key,
                   const alert_record& record) override;
};

/// Keeps every record in memory, in order (tests).
class capturing_alert_sink : public alert_sink {
public:
  caf::error fired(const std::string& timeline_key,
                   const alert_record& record) override;

  /// The records so far, with their timeline keys.
  std::vector<std::pair<std::string, alert_record>> records() const;

  /// Makes the next `n` calls fail (a store that is down).
  void fail_next(size_t n);

private:
  mutable std::mutex mtx_;
  std::vector<std::pair<std::string, alert_record>> records_;
  size_t failures_ = 0;
};

} // namespace vigil
