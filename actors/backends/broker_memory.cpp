// The in-process broker: the embedded default for a single node. It keeps
// kombu envelopes, like the Redis backend, so both run the same code paths
// and pass the same contract tests.

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include "actors/backends/broker.hpp"
#include "config/text.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/kombu_envelope.hpp"

namespace vigil {

namespace {

struct unacked_entry {
  std::string queue;
  std::string envelope;
  int64_t received_us = 0;
};

/// The queues of one memory:// name, shared by every broker handle on it.
struct memory_store {
  std::mutex mtx;
  /// Keyed by kombu list key (queue plus priority suffix); front = next out.
  std::unordered_map<std::string, std::deque<std::string>> lists;
  std::unordered_map<std::string, unacked_entry> unacked;
  /// Failed deliveries per delivery tag (broker::restore_unacked), kept
  /// until the message is acknowledged or dead-lettered.
  std::unordered_map<std::string, uint32_t> failed;
  std::deque<dead_letter> dead; // newest first
  /// Most messages waiting in `lists` that a publish may leave.
  size_t max_waiting = memory_broker_default_max;
  /// Who hears of settled messages (broker::watch_settled); expired ones
  /// are dropped as they are found.
  std::vector<std::weak_ptr<broker::settled_listener>> listeners;
  /// While someone listens: the task id of each message published, by
  /// delivery tag, and how many messages of each task id are held (a
  /// retry is published before its predecessor is acknowledged).
  std::unordered_map<std::string, std::string> watched;
  std::unordered_map<std::string, size_t> held;

  size_t waiting() const {
    size_t n = 0;
    for (auto& [key, list] : lists)
      n += list.size();
    return n;
  }
};

std::shared_ptr<memory_store> store_for(std::string_view url,
                                        size_t max_waiting) {
  static std::mutex mtx;
  static std::map<std::string, std::shared_ptr<memory_store>, std::less<>> stores;
  std::lock_guard guard{mtx};
  auto i = stores.find(url);
  if (i == stores.end()) {
    auto store = std::make_shared<memory_store>();
    store->max_waiting = max_waiting;
    i = stores.emplace(std::string{url}, std::move(store)).first;
  }
  return i->second;
}

class memory_broker : public broker {
public:
  memory_broker(std::string_view url, size_t max_waiting)
    : url_(url), store_(store_for(url, max_waiting)) {
    // nop
  }

  std::string describe() const override {
    return url_;
  }

  caf::error publish(const std::vector<outgoing_task>& batch) override {
    std::vector<std::pair<std::string, std::string>> encoded;
    std::vector<std::string> tags;
    encoded.reserve(batch.size());
    tags.reserve(batch.size());
    for (auto& out : batch) {
      tags.push_back(new_uuid4());
      encoded.emplace_back(kombu_queue_key(out.queue, out.msg.priority),
                           encode_kombu_envelope(out.msg, out.queue,
                                                 tags.back()));
    }
    std::lock_guard guard{store_->mtx};
    if (encoded.size() > store_->max_waiting)
      return caf::make_error(errc::too_large,
                             "a batch of " + std::to_string(encoded.size())
                               + " messages is larger than " + url_
                               + "'s max-messages ("
                               + std::to_string(store_->max_waiting) + ")");
    if (auto n = store_->waiting(); n + encoded.size() > store_->max_waiting)
      return caf::make_error(errc::too_large,
                             url_ + " holds " + std::to_string(n)
                               + " waiting messages (max-messages "
                               + std::to_string(store_->max_waiting)
                               + "): no worker is keeping up; nothing of "
                                 "this batch was queued");
    for (auto& [key, env] : encoded)
      store_->lists[key].push_back(std::move(env));
    if (!store_->listeners.empty())
      for (size_t i = 0; i < batch.size(); ++i) {
        ++store_->held[batch[i].msg.id];
        store_->watched.emplace(std::move(tags[i]), batch[i].msg.id);
      }
    return {};
  }

  caf::error push_raw(std::string_view queue,
                      std::string_view envelope) override {
    std::lock_guard guard{store_->mtx};
    store_->lists[std::string{queue}].emplace_back(envelope);
    return {};
  }

  caf::error fetch(const std::vector<std::string>& queues, size_t max,
                   std::vector<raw_delivery>& out) override {
    auto now = now_unix_us();
    std::lock_guard guard{store_->mtx};
    for (int prio : {0, 3, 6, 9}) {
      for (auto& q : queues) {
        if (max == 0)
          return {};
        auto i = store_->lists.find(kombu_queue_key(q, prio));
        if (i == store_->lists.end())
          continue;
        auto& list = i->second;
        while (max > 0 && !list.empty()) {
          auto env = std::move(list.front());
          list.pop_front();
          --max;
          auto tag = find_delivery_tag(env);
          if (tag.empty()) {
            store_->dead.push_front(dead_letter{
              new_uuid4(), "", "", q, "message has no properties.delivery_tag",
              now, std::move(env), ""});
            continue;
          }
          store_->unacked[tag] = unacked_entry{q, env, now};
          uint32_t failed = 0;
          if (auto f = store_->failed.find(tag); f != store_->failed.end())
            failed = f->second;
          out.push_back(raw_delivery{q, std::move(tag), std::move(env),
                                     failed});
        }
      }
    }
    return {};
  }

  caf::error ack(const std::vector<std::string>& tags) override {
    std::vector<std::string> settled;
    std::vector<std::shared_ptr<settled_listener>> fns;
    {
      std::lock_guard guard{store_->mtx};
      forget_locked(tags);
      settle_locked(tags, settled, fns);
    }
    notify(std::move(settled), fns);
    return {};
  }

  bool durable() const override {
    return false;
  }

  bool watch_settled(std::shared_ptr<settled_listener> fn) override {
    std::lock_guard guard{store_->mtx};
    store_->listeners.push_back(fn);
    return true;
  }

  caf::error requeue(const std::vector<std::string>& tags) override {
    std::lock_guard guard{store_->mtx};
    for (auto& tag : tags)
      restore_locked(tag);
    return {};
  }

  caf::expected<size_t>
  restore_expired(std::chrono::duration<double> visibility_timeout) override {
    auto cutoff = now_unix_us()
                  - static_cast<int64_t>(visibility_timeout.count() * 1e6);
    std::lock_guard guard{store_->mtx};
    std::vector<std::string> expired;
    for (auto& [tag, entry] : store_->unacked)
      if (entry.received_us <= cutoff)
        expired.push_back(tag);
    for (auto& tag : expired)
      restore_locked(tag, true);
    return expired.size();
  }

  caf::expected<size_t>
  restore_unacked(const std::vector<std::string>& tags) override {
    std::lock_guard guard{store_->mtx};
    size_t n = 0;
    for (auto& tag : tags)
      if (restore_locked(tag, true))
        ++n;
    return n;
  }

  caf::expected<uint32_t> count_delivery(const std::string& tag) override {
    std::lock_guard guard{store_->mtx};
    return ++store_->failed[tag];
  }

  caf::error dead_letter_batch(const std::vector<dead_letter>& letters,
                               const std::vector<std::string>& tags) override {
    std::vector<std::string> settled;
    std::vector<std::shared_ptr<settled_listener>> fns;
    {
      std::lock_guard guard{store_->mtx};
      for (auto& x : letters)
        store_->dead.push_front(x);
      forget_locked(tags);
      settle_locked(tags, settled, fns);
    }
    notify(std::move(settled), fns);
    return {};
  }

  caf::expected<std::vector<dead_letter>> list_dead_letters() override {
    std::lock_guard guard{store_->mtx};
    return std::vector<dead_letter>(store_->dead.begin(), store_->dead.end());
  }

  caf::expected<size_t> replay_dead_letters(std::string_view id) override {
    std::lock_guard guard{store_->mtx};
    size_t n = 0;
    auto& dead = store_->dead;
    for (auto i = dead.begin(); i != dead.end();) {
      if (!id.empty() && i->id != id) {
        ++i;
        continue;
      }
      store_->lists[i->queue].push_back(i->envelope);
      i = dead.erase(i);
      ++n;
    }
    return n;
  }

  caf::expected<size_t> queue_length(std::string_view queue) override {
    std::lock_guard guard{store_->mtx};
    size_t n = 0;
    for (int prio : {0, 3, 6, 9})
      if (auto i = store_->lists.find(kombu_queue_key(queue, prio));
          i != store_->lists.end())
        n += i->second.size();
    return n;
  }

  caf::expected<size_t> unacked_count() override {
    std::lock_guard guard{store_->mtx};
    return store_->unacked.size();
  }

private:
  // The task ids that `tags` settle, and the listeners to tell.
  void settle_locked(const std::vector<std::string>& tags,
                     std::vector<std::string>& settled,
                     std::vector<std::shared_ptr<settled_listener>>& fns) {
    if (store_->listeners.empty())
      return;
    for (auto& tag : tags) {
      auto i = store_->watched.find(tag);
      if (i == store_->watched.end())
        continue;
      auto h = store_->held.find(i->second);
      if (h != store_->held.end() && --h->second == 0) {
        store_->held.erase(h);
        settled.push_back(std::move(i->second));
      }
      store_->watched.erase(i);
    }
    if (settled.empty())
      return;
    auto& ls = store_->listeners;
    for (auto i = ls.begin(); i != ls.end();) {
      if (auto fn = i->lock()) {
        fns.push_back(std::move(fn));
        ++i;
      } else {
        i = ls.erase(i);
      }
    }
  }

  static void notify(std::vector<std::string> settled,
                     const std::vector<std::shared_ptr<settled_listener>>& fns) {
    if (settled.empty())
      return;
    for (size_t i = 0; i < fns.size(); ++i)
      (*fns[i])(i + 1 == fns.size() ? std::move(settled) : settled);
  }

  // Puts a delivery back at the head of its queue, marked as redelivered;
  // after a crash (`crashed`), a delivery with no failure counted gets one.
  bool restore_locked(const std::string& tag, bool crashed = false) {
    auto i = store_->unacked.find(tag);
    if (i == store_->unacked.end())
      return false;
    auto env = mark_redelivered(i->second.envelope);
    store_->lists[i->second.queue].push_front(
      env ? std::move(*env) : std::move(i->second.envelope));
    store_->unacked.erase(i);
    if (crashed)
      store_->failed.emplace(tag, 1);
    return true;
  }

  // Deliveries that left for good, with their failure counts.
  void forget_locked(const std::vector<std::string>& tags) {
    for (auto& tag : tags) {
      store_->unacked.erase(tag);
      store_->failed.erase(tag);
    }
  }

  std::string url_;
  std::shared_ptr<memory_store> store_;
};

} // namespace

caf::expected<std::unique_ptr<broker>> make_memory_broker(std::string_view url) {
  std::string why;
  auto max = memory_url_max_messages(url, memory_broker_default_max, why);
  if (!max)
    return caf::make_error(errc::bad_config, "broker.url: " + why);
  return std::unique_ptr<broker>{std::make_unique<memory_broker>(url, *max)};
}

} // namespace vigil
