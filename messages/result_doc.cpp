#include "messages/result_doc.hpp"

#include "messages/clock.hpp"

namespace vigil {

const char* to_string(task_state s) {
  switch (s) {
    case task_state::success: return "SUCCESS";
    case task_state::failure: return "FAILURE";
    case task_state::retry: return "RETRY";
    case task_state::revoked: return "REVOKED";
  }
  return "PENDING";
}

value make_exception(std::string type, std::string message,
                     std::string module) {
  return value_map{{"exc_type", std::move(type)},
                   {"exc_message", value_array{value{std::move(message)}}},
                   {"exc_module", std::move(module)}};
}

value make_result_doc(task_state state, const std::string& task_id,
                      value result, int64_t date_done_us,
                      const std::string& traceback,
                      const std::string& parent_id,
                      const std::string& group_id) {
  value_map doc;
  doc.reserve(8);
  doc.emplace_back("status", to_string(state));
  doc.emplace_back("result", std::move(result));
  doc.emplace_back("traceback",
                   traceback.empty() ? value{} : value{traceback});
  doc.emplace_back("children", value_array{});
  doc.emplace_back("date_done", state == task_state::retry
                                  ? value{}
                                  : value{format_iso8601_naive(date_done_us)});
  if (!group_id.empty())
    doc.emplace_back("group_id", group_id);
  if (!parent_id.empty())
    doc.emplace_back("parent_id", parent_id);
  doc.emplace_back("task_id", task_id);
  return doc;
}

} // namespace vigil
