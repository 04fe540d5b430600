#include <hiredis/hiredis.h>

#include "actors/backends/result_backend.hpp"
#include "config/config.hpp"
#include "messages/errors.hpp"
#include "runtime/adapters/redis.hpp"

namespace vigil {

result_backend::~result_backend() {
  // nop
}

namespace {

constexpr std::string_view key_prefix = "celery-task-meta-";

class redis_result_backend : public result_backend {
public:
  redis_result_backend(redis_connection conn, std::chrono::seconds expires)
    : conn_(std::move(conn)), expires_(std::to_string(expires.count())) {
    // nop
  }

  caf::error store(const std::vector<stored_result>& results) override {
    if (results.empty())
      return {};
    std::vector<std::string> keys;
    keys.reserve(results.size());
    for (auto& r : results)
      keys.push_back(std::string{key_prefix} + r.task_id);
    // The PUBLISH wakes clients blocked in AsyncResult.get().
    for (size_t i = 0; i < results.size(); ++i) {
      conn_.append({"SETEX", keys[i], expires_, results[i].doc});
      conn_.append({"PUBLISH", keys[i], results[i].doc});
    }
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    for (auto& r : *replies)
      if (r->type == REDIS_REPLY_ERROR)
        return caf::make_error(errc::command_failed,
                               "storing results: " + reply_error(r.get()));
    return {};
  }

  caf::expected<std::string> fetch(std::string_view task_id) override {
    auto key = std::string{key_prefix} + std::string{task_id};
    auto r = conn_.command({"GET", key});
    if (!r)
      return r.error();
    return std::string{reply_text(r->get())};
  }

private:
  redis_connection conn_;
  std::string expires_;
};

} // namespace

caf::expected<std::unique_ptr<result_backend>>
connect_result_backend(std::string_view url, std::chrono::seconds expires,
                       std::chrono::milliseconds timeout) {
  if (url.substr(0, 8) != "redis://")
    return caf::make_error(errc::bad_config,
                           "tasks.result-backend: expected a redis:// URL, got '"
                             + mask_url(url) + "'");
  auto ep = parse_redis_url(url);
  if (!ep)
    return ep.error();
  auto conn = redis_connection::connect(*ep, timeout);
  if (!conn)
    return conn.error();
  return std::unique_ptr<result_backend>{
    std::make_unique<redis_result_backend>(std::move(*conn), expires)};
}

} // namespace vigil
