#include "actors/task_supervisor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/errors.hpp"

namespace vigil {

namespace {

using self_ptr = task_supervisor_actor::stateful_pointer<task_supervisor_state>;
using std::chrono::milliseconds;

void spawn_group(self_ptr self) {
  auto& st = self->state;
  auto results = st.opts.result_backend_url.empty()
                   ? std::string{}
                   : st.opts.result_serializer;
  st.workers.clear();
  st.consumers.clear();
  auto per_consumer = st.opts;
  per_consumer.prefetch = std::max<size_t>(1, st.opts.prefetch
                                                / st.consumer_count);
  per_consumer.fetch_batch = std::min(per_consumer.fetch_batch,
                                      per_consumer.prefetch);
  for (size_t c = 0; c < st.consumer_count; ++c) {
    // Worker threads are dealt out as evenly as they go.
    auto n = st.concurrency / st.consumer_count
             + (c < st.concurrency % st.consumer_count ? 1 : 0);
    std::vector<task_worker_actor> mine;
    for (size_t i = 0; i < n; ++i)
      mine.push_back(self->spawn<caf::detached + caf::monitored>(
        task_worker, st.registry, results));
    st.workers.insert(st.workers.end(), mine.begin(), mine.end());
    st.consumers.push_back(self->spawn<caf::detached + caf::monitored>(
      task_consumer, per_consumer, std::move(mine)));
  }
  st.started = std::chrono::steady_clock::now();
}

void stop_group(self_ptr self) {
  auto& st = self->state;
  for (auto& c : st.consumers)
    self->send_exit(c, caf::exit_reason::user_shutdown);
  for (auto& w : st.workers)
    self->send_exit(w, caf::exit_reason::user_shutdown);
  st.consumers.clear();
  st.workers.clear();
}

} // namespace

task_supervisor_actor::behavior_type
task_supervisor(task_supervisor_actor::stateful_pointer<task_supervisor_state> self,
                consumer_options opts, size_t consumers, size_t concurrency,
                std::shared_ptr<const task_registry> registry) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.concurrency = std::max<size_t>(1, concurrency);
  st.consumer_count = std::clamp<size_t>(consumers, 1, st.concurrency);
  st.registry = std::move(registry);
  spawn_group(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    bool ours = false;
    for (auto& c : st.consumers)
      ours = ours || dm.source == c.address();
    for (auto& w : st.workers)
      ours = ours || dm.source == w.address();
    if (!ours || st.stopping || !dm.reason
        || dm.reason == caf::exit_reason::user_shutdown)
      return;
    auto text = caf::to_string(dm.reason);
    st.counters.fail(text);
    ++st.counters.restarts;
    auto healthy = std::chrono::steady_clock::now() - st.started
                   > std::chrono::minutes{1};
    st.backoff = healthy ? milliseconds{100}
                         : std::clamp(st.backoff * 2, milliseconds{100},
                                      milliseconds{30000});
    spdlog::error("task group failed ({}); restarting in {} ms", text,
                  st.backoff.count());
    stop_group(self);
    self->delayed_send(self, st.backoff, restart_atom_v);
  });
  return {
    [=](restart_atom) {
      if (!self->state.stopping && self->state.consumers.empty())
        spawn_group(self);
    },
    [=](drain_atom) -> caf::result<bool> {
      auto& st = self->state;
      st.stopping = true;
      if (st.consumers.empty())
        return true;
      auto rp = self->make_response_promise<bool>();
      auto timeout = std::chrono::duration_cast<milliseconds>(
                       std::chrono::duration<double>(st.opts.shutdown_timeout))
                     + milliseconds{5000};
      // Complete only if every consumer drained completely.
      auto remaining = std::make_shared<size_t>(st.consumers.size());
      auto all_complete = std::make_shared<bool>(true);
      for (auto& c : st.consumers)
        self->request(c, timeout, drain_atom_v)
          .then(
            [=](bool complete) mutable {
              *all_complete = *all_complete && complete;
              if (--*remaining == 0)
                rp.deliver(*all_complete);
            },
            [=](caf::error&) mutable {
              *all_complete = false;
              if (--*remaining == 0)
                rp.deliver(false);
            });
      return rp;
    },
    [=](status_atom) -> caf::result<std::vector<actor_status>> {
      auto& st = self->state;
      auto own = make_status(self, st.counters);
      own.extra["concurrency"] = std::to_string(st.concurrency);
      auto rp = self->make_response_promise<std::vector<actor_status>>();
      auto results = std::make_shared<std::vector<actor_status>>();
      results->push_back(std::move(own));
      std::vector<caf::actor> children;
      for (auto& c : st.consumers)
        children.push_back(caf::actor_cast<caf::actor>(c));
      for (auto& w : st.workers)
        children.push_back(caf::actor_cast<caf::actor>(w));
      auto remaining = std::make_shared<size_t>(children.size());
      if (children.empty()) {
        rp.deliver(*results);
        return rp;
      }
      for (auto& child : children) {
        // A child busy in a long task cannot answer: say so instead of waiting.
        self->request(child, milliseconds{500}, status_atom_v)
          .then(
            [=](actor_status& s) mutable {
              results->push_back(std::move(s));
              if (--*remaining == 0)
                rp.deliver(*results);
            },
            [=](caf::error& err) mutable {
              actor_status s;
              s.id = child.id();
              s.name = "(unresponsive)";
              s.last_error = caf::to_string(err);
              results->push_back(std::move(s));
              if (--*remaining == 0)
                rp.deliver(*results);
            });
      }
      return rp;
    },
  };
}

} // namespace vigil
