#include "tasks/alert_sink.hpp"

#include <spdlog/spdlog.h>

#include "messages/errors.hpp"

namespace vigil {

alert_sink::~alert_sink() = default;

caf::error logging_alert_sink::fired(const std::string& timeline_key,
                                     const alert_record& r) {
  std::string rules;
  for (const auto& id : r.rule_ids)
    rules += (rules.empty() ? "" : ", ") + id;
  spdlog::info("alert record for {}: event {} of issue {}, rules {}",
               timeline_key, r.event_id, r.group_id, rules);
  return {};
}

caf::error capturing_alert_sink::fired(const std::string& timeline_key,
                                       const alert_record& r) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (failures_ > 0) {
    --failures_;
    return caf::make_error(errc::unavailable, "capturing sink told to fail");
  }
  records_.emplace_back(timeline_key, r);
  return {};
}

std::vector<std::pair<std::string, alert_record>>
capturing_alert_sink::records() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return records_;
}

void capturing_alert_sink::fail_next(size_t n) {
  std::lock_guard<std::mutex> guard{mtx_};
  failures_ = n;
}

} // namespace vigil
