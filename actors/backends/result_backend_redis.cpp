#include "actors/backends/result_backend.hpp"
#include "adapters/redis.hpp"
#include "config/config.hpp"
#include "messages/errors.hpp"

namespace vigil {

result_backend::~result_backend() {
  // nop
}

namespace {

constexpr std::string_view key_prefix = "celery-task-meta-";

// Celery's guard: once a task's stored state is SUCCESS, a later state (from
// a duplicate delivery, say) is dropped. Checked and written atomically.
// The status is found in either serialization: msgpack writes the fixstr
// bytes a6 "status" a7 "SUCCESS", JSON writes "status": "SUCCESS".
// KEYS: result key. ARGV: document, expiry in seconds.
redis_script store_script{R"lua(
local cur = redis.call('GET', KEYS[1])
if cur and (string.find(cur, '\166status\167SUCCESS', 1, true)
            or string.find(cur, '"status"%s*:%s*"SUCCESS"')) then
  return 0
end
redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
)lua"};

constexpr std::string_view group_prefix = "celery-taskset-meta-";

// Celery's on_chord_part_return with result_chord_ordered (its default):
// ZADD the entry, ZCOUNT, GET .t and .s, EXPIRE all three; in one script,
// so two parts finishing together never both see the chord complete. The
// part that completes it gets the entries (ZRANGE, group_index order).
// Without `.s` (no client set the chord size) nothing completes, as in
// Celery. KEYS: .j .t .s. ARGV: entry, score, expiry in seconds.
redis_script chord_part_script{R"lua(
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local ready = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
local extra = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local size = redis.call('GET', KEYS[3])
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
if not size or ready ~= (tonumber(size) or -1) + extra then
  return false
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
)lua"};

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
    // The PUBLISH (in the script) wakes clients blocked in AsyncResult.get().
    if (auto err = conn_.preload(store_script))
      return err;
    for (size_t i = 0; i < results.size(); ++i)
      conn_.append_eval(store_script, {keys[i]}, {results[i].doc, expires_});
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    return check_replies(*replies, "storing results");
  }

  caf::expected<std::string> fetch(std::string_view task_id) override {
    auto key = std::string{key_prefix} + std::string{task_id};
    auto r = conn_.command({"GET", key});
    if (!r)
      return r.error();
    return std::string{r->as_string()};
  }

  caf::expected<std::vector<std::vector<std::string>>>
  return_chord_parts(const std::vector<chord_part>& parts) override {
    std::vector<std::vector<std::string>> out(parts.size());
    if (parts.empty())
      return out;
    if (auto err = conn_.preload(chord_part_script))
      return err;
    std::vector<std::string> keys;
    std::vector<std::string> scores;
    keys.reserve(parts.size() * 3);
    scores.reserve(parts.size());
    for (auto& p : parts) {
      auto base = std::string{group_prefix} + p.group_id;
      keys.push_back(base + ".j");
      keys.push_back(base + ".t");
      keys.push_back(base + ".s");
      scores.push_back(p.group_index < 0 ? std::string{"+inf"}
                                         : std::to_string(p.group_index));
    }
    for (size_t i = 0; i < parts.size(); ++i)
      conn_.append_eval(chord_part_script,
                        {keys[3 * i], keys[3 * i + 1], keys[3 * i + 2]},
                        {parts[i].entry, scores[i], expires_});
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    if (auto err = check_replies(*replies, "returning chord parts"))
      return err;
    for (size_t i = 0; i < parts.size(); ++i)
      for (auto e : (*replies)[i].elements())
        out[i].emplace_back(e.as_string());
    return out;
  }

  caf::error set_chord_sizes(
    const std::vector<std::pair<std::string, int64_t>>& sizes) override {
    if (sizes.empty())
      return {};
    for (auto& [gid, n] : sizes) {
      auto key = std::string{group_prefix} + gid + ".s";
      auto size = std::to_string(n);
      if (expires_ == "0")
        conn_.append({"SET", key, size});
      else
        conn_.append({"SET", key, size, "EX", expires_});
    }
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    return check_replies(*replies, "setting chord sizes");
  }

  caf::error forget_chords(const std::vector<std::string>& groups) override {
    if (groups.empty())
      return {};
    std::vector<std::string> keys;
    for (auto& g : groups)
      for (auto suffix : {".j", ".t", ".s"})
        keys.push_back(std::string{group_prefix} + g + suffix);
    std::vector<std::string_view> argv{"DEL"};
    argv.insert(argv.end(), keys.begin(), keys.end());
    auto r = conn_.command(argv);
    if (!r)
      return r.error();
    return {};
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
