// The in-process write buffer: rows and takes in a store shared by every
// backend of one name in this process, behind a mutex. What Redis keeps in
// `b:k:*` hashes, the `b:p` sets and the locks is kept here in maps, with
// the same keys, so the two backends pass one contract suite.

#include <algorithm>
#include <map>
#include <mutex>

#include "actors/backends/named_store.hpp"
#include "actors/backends/buffer.hpp"
#include "messages/clock.hpp"

namespace vigil {

namespace {

struct pending_row {
  buffer_incr sums;
  int64_t first_pending = 0;
};

struct held_lock {
  std::string token;
  std::chrono::steady_clock::time_point until;
};

struct buffer_store {
  std::mutex mtx;
  std::map<std::string, pending_row> rows;
  std::map<std::string, buffer_take> takes;
  std::map<std::string, held_lock> locks;
  buffer_backend_stats stats;
};

class memory_buffer final : public buffer_backend {
public:
  explicit memory_buffer(const buffer_backend_options& opts)
    : url_(opts.url),
      partitions_(opts.partitions < 1 ? 1 : opts.partitions),
      store_(named_store<buffer_store>(opts.url)) {
  }

  std::string describe() const override {
    return "memory buffer " + url_;
  }

  caf::error incr(const std::vector<buffer_incr>& batch,
                  int64_t now) override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    for (const auto& inc : batch) {
      auto key = buffer_row_key(inc.model, inc.filters);
      auto [it, fresh] = store_->rows.try_emplace(key);
      if (fresh) {
        it->second.sums = inc;
        it->second.first_pending = now;
        ++store_->stats.row_writes;
      } else {
        it->second.sums.merge(inc);
      }
      ++store_->stats.increments;
    }
    return {};
  }

  caf::expected<std::map<std::string, int64_t>>
  get(const std::string& model, const std::vector<std::string>& columns,
      const buffer_fields& filters) override {
    std::map<std::string, int64_t> out;
    for (const auto& c : columns)
      out[c] = 0;
    std::lock_guard<std::mutex> guard{store_->mtx};
    auto it = store_->rows.find(buffer_row_key(model, filters));
    if (it != store_->rows.end())
      for (const auto& c : columns)
        if (auto v = it->second.sums.columns.find(c);
            v != it->second.sums.columns.end())
          out[c] = v->second;
    return out;
  }

  caf::expected<std::vector<std::string>> pending(int partition,
                                                  size_t limit) override {
    auto wanted = buffer_partition_key(partition, partitions_);
    std::vector<std::pair<int64_t, std::string>> found;
    {
      std::lock_guard<std::mutex> guard{store_->mtx};
      for (const auto& [key, row] : store_->rows)
        if (buffer_pending_key(key, partitions_) == wanted)
          found.emplace_back(row.first_pending, key);
    }
    std::sort(found.begin(), found.end());
    std::vector<std::string> out;
    for (auto& [_, key] : found) {
      if (out.size() >= limit)
        break;
      out.push_back(std::move(key));
    }
    return out;
  }

  caf::expected<size_t> pending_count(int partition) override {
    auto wanted = buffer_partition_key(partition, partitions_);
    size_t n = 0;
    std::lock_guard<std::mutex> guard{store_->mtx};
    for (const auto& [key, row] : store_->rows)
      if (buffer_pending_key(key, partitions_) == wanted)
        ++n;
    return n;
  }

  caf::expected<std::optional<buffer_take>>
  take(const std::string& row_key, int64_t now) override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    auto it = store_->rows.find(row_key);
    if (it == store_->rows.end()) {
      ++store_->stats.empty_takes;
      return std::optional<buffer_take>{};
    }
    buffer_take t;
    t.take_id = new_uuid4();
    t.row_key = row_key;
    t.sums = std::move(it->second.sums);
    t.taken_at = now;
    store_->rows.erase(it);
    store_->takes[t.take_id] = t;
    ++store_->stats.takes;
    return std::optional<buffer_take>{std::move(t)};
  }

  caf::error finish(const std::string& take_id) override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    store_->takes.erase(take_id);
    return {};
  }

  caf::expected<std::vector<buffer_take>>
  unfinished(int64_t older_than) override {
    std::vector<buffer_take> out;
    std::lock_guard<std::mutex> guard{store_->mtx};
    for (const auto& [_, t] : store_->takes)
      if (t.taken_at < older_than)
        out.push_back(t);
    return out;
  }

  caf::expected<bool> try_lock(const std::string& name,
                               const std::string& token,
                               std::chrono::seconds ttl) override {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> guard{store_->mtx};
    auto it = store_->locks.find(name);
    // Held by another token and not expired: busy. The holder itself
    // renews, as the Redis lock does.
    if (it != store_->locks.end() && it->second.until > now
        && it->second.token != token)
      return false;
    store_->locks[name] = {token, now + ttl};
    return true;
  }

  caf::error unlock(const std::string& name,
                    const std::string& token) override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    auto it = store_->locks.find(name);
    if (it != store_->locks.end() && it->second.token == token)
      store_->locks.erase(it);
    return {};
  }

  buffer_backend_stats stats() const override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    return store_->stats;
  }

private:
  std::string url_;
  int partitions_;
  std::shared_ptr<buffer_store> store_;
};

} // namespace

std::unique_ptr<buffer_backend>
make_memory_buffer_backend(const buffer_backend_options& opts) {
  return std::make_unique<memory_buffer>(opts);
}

} // namespace vigil
