#include "web/api_json.hpp"

#include <nlohmann/json.hpp>

#include "messages/clock.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

std::string sentry_time(int64_t unix_us) {
  return format_iso8601_naive(unix_us) + "Z";
}

std::string sentry_time_seconds(int64_t unix_seconds) {
  auto text = format_iso8601_naive(unix_seconds * 1000000);
  // Drop ".000000": stats_v2's intervals are whole seconds.
  return text.substr(0, text.find('.')) + "Z";
}

nlohmann::json series_json(const std::vector<tsdb_point>& series) {
  auto out = nlohmann::json::array();
  for (const auto& [ts, n] : series)
    out.push_back({ts, n});
  return out;
}

http_response json_answer(const nlohmann::json& doc) {
  http_response resp;
  resp.body = dump_json(doc);
  return resp;
}

} // namespace vigil
