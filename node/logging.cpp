#include "node/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "messages/errors.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

// Renders the message as a JSON string literal, so that a log line stays one
// valid JSON object whatever the message holds.
class json_message_flag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string text;
    append_json_string(text, std::string_view{msg.payload.data(),
                                              msg.payload.size()});
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

} // namespace

caf::error setup_logging(const std::string& level, const std::string& format) {
  auto lvl = spdlog::level::from_str(level == "warning" ? "warn" : level);
  if (lvl == spdlog::level::off && level != "off")
    return caf::make_error(errc::bad_config,
                           "log.level: unknown level '" + level + "'");
  spdlog::drop("vigil");
  auto logger = spdlog::stderr_logger_mt("vigil");
  logger->set_level(lvl);
  if (format == "json") {
    auto f = std::make_unique<spdlog::pattern_formatter>(
      spdlog::pattern_time_type::utc, std::string{"\n"});
    f->add_flag<json_message_flag>('*').set_pattern(
      R"({"time": "%Y-%m-%dT%H:%M:%S.%fZ", "level": "%l", "thread": %t, "msg": %*})");
    logger->set_formatter(std::move(f));
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  }
  spdlog::set_default_logger(logger);
  return {};
}

} // namespace vigil
