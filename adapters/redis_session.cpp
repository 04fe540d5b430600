#include "adapters/redis_session.hpp"

#include "messages/errors.hpp"

namespace vigil {

redis_session::redis_session(redis_endpoint ep,
                             std::chrono::milliseconds timeout,
                             std::chrono::milliseconds retry)
  : ep_(std::move(ep)), timeout_(timeout), retry_(retry) {
}

caf::expected<redis_connection*> redis_session::get() {
  if (conn_ && conn_->ok())
    return &*conn_;
  conn_.reset();
  auto now = std::chrono::steady_clock::now();
  if (last_attempt_ != std::chrono::steady_clock::time_point{}
      && now - last_attempt_ < retry_)
    return caf::make_error(errc::connection_failed,
                           "redis " + to_string(ep_) + ": not connected");
  last_attempt_ = now;
  auto conn = redis_connection::connect(ep_, timeout_);
  if (!conn)
    return conn.error();
  conn_ = std::move(*conn);
  return &*conn_;
}

caf::expected<std::vector<redis_reply>> redis_session::flush() {
  if (!conn_)
    return caf::make_error(errc::connection_failed,
                           "redis " + to_string(ep_) + ": not connected");
  auto replies = conn_->flush();
  if (!replies)
    conn_.reset();
  return replies;
}

void redis_session::reset() {
  conn_.reset();
}

std::string redis_session::describe() const {
  return to_string(ep_);
}

} // namespace vigil
