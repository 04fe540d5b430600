#include "actors/task_supervisor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/errors.hpp"

namespace vigil {

namespace {

using self_ptr = task_supervisor_actor::stateful_pointer<task_supervisor_state>;
using std::chrono::milliseconds;

std::string describe(const task_child& c) {
  if (c.consumer)
    return "task consumer " + std::to_string(c.group);
  return "task worker " + std::to_string(c.slot) + " of consumer "
         + std::to_string(c.group);
}

// Children run on threads of their own unless a test drives them on the
// deterministic scheduler.
template <class Handle, class F, class... Ts>
Handle spawn_child(self_ptr self, F fn, Ts&&... xs) {
  if (self->state.opts.spawn_detached)
    return self->spawn<caf::detached + caf::monitored>(fn,
                                                       std::forward<Ts>(xs)...);
  return self->spawn<caf::monitored>(fn, std::forward<Ts>(xs)...);
}

size_t consumer_of(const task_supervisor_state& st, size_t group) {
  for (size_t k = 0; k < st.children.size(); ++k)
    if (st.children[k].consumer && st.children[k].group == group)
      return k;
  return st.children.size();
}

// Spawns child `k` and wires it to its consumer or its workers.
void start_child(self_ptr self, size_t k) {
  auto& st = self->state;
  auto& c = st.children[k];
  c.started = std::chrono::steady_clock::now();
  if (!c.consumer) {
    auto w = spawn_child<task_worker_actor>(self, task_worker, st.registry,
                                            st.result_serializer,
                                            worker_shared{st.opts.time_limits,
                                                          st.opts.events,
                                                          st.opts.running});
    c.handle = caf::actor_cast<caf::actor>(w);
    auto owner = consumer_of(st, c.group);
    if (owner < st.children.size() && st.children[owner].handle)
      self->send(caf::actor_cast<task_consumer_actor>(
                   st.children[owner].handle),
                 caf::put_atom_v, uint64_t{c.slot}, w);
    return;
  }
  std::vector<task_worker_actor> workers;
  for (auto& w : st.children)
    if (!w.consumer && w.group == c.group)
      workers.push_back(caf::actor_cast<task_worker_actor>(w.handle));
  auto h = spawn_child<task_consumer_actor>(self, task_consumer, st.opts,
                                            std::move(workers),
                                            st.held[c.group]);
  c.handle = caf::actor_cast<caf::actor>(h);
}

void on_child_down(self_ptr self, size_t k, const caf::error& reason) {
  auto& st = self->state;
  auto& c = st.children[k];
  c.handle = caf::actor{};
  if (st.stopping || !reason || reason == caf::exit_reason::user_shutdown)
    return;
  auto text = caf::to_string(reason);
  st.counters.fail(describe(c) + ": " + text);
  ++st.counters.restarts;
  ++c.restarts;
  auto healthy = std::chrono::steady_clock::now() - c.started
                 > std::chrono::minutes{1};
  c.backoff = healthy ? milliseconds{100}
                      : std::clamp(c.backoff * 2, milliseconds{100},
                                   milliseconds{30000});
  spdlog::error("{} failed ({}); restarting it in {} ms", describe(c), text,
                c.backoff.count());
  self->delayed_send(self, c.backoff, restart_atom_v, uint64_t{k});
}

} // namespace

task_supervisor_actor::behavior_type
task_supervisor(task_supervisor_actor::stateful_pointer<task_supervisor_state> self,
                consumer_options opts, size_t consumers, size_t concurrency,
                std::shared_ptr<const task_registry> registry) {
  auto& st = self->state;
  st.concurrency = std::max<size_t>(1, concurrency);
  auto groups = std::clamp<size_t>(consumers, 1, st.concurrency);
  st.registry = std::move(registry);
  st.result_serializer = opts.result_backend_url.empty()
                           ? std::string{}
                           : opts.result_serializer;
  st.opts = std::move(opts);
  st.opts.prefetch = std::max<size_t>(1, st.opts.prefetch / groups);
  st.opts.fetch_batch = std::min(st.opts.fetch_batch, st.opts.prefetch);
  for (size_t g = 0; g < groups; ++g) {
    st.held.push_back(std::make_shared<held_deliveries>());
    st.children.push_back(task_child{true, g, 0, {}, {}, {}, 0});
    // Worker threads are dealt out as evenly as they go.
    auto n = st.concurrency / groups + (g < st.concurrency % groups ? 1 : 0);
    for (size_t i = 0; i < n; ++i)
      st.children.push_back(task_child{false, g, i, {}, {}, {}, 0});
  }
  // Workers first: each consumer is spawned with its workers.
  for (size_t k = 0; k < st.children.size(); ++k)
    if (!st.children[k].consumer)
      start_child(self, k);
  for (size_t k = 0; k < st.children.size(); ++k)
    if (st.children[k].consumer)
      start_child(self, k);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    for (size_t k = 0; k < st.children.size(); ++k)
      if (st.children[k].handle
          && st.children[k].handle.address() == dm.source) {
        on_child_down(self, k, dm.reason);
        return;
      }
  });
  // The children are monitored, not linked: pass a shutdown on to them.
  self->set_exit_handler([=](caf::exit_msg& em) {
    auto& st = self->state;
    st.stopping = true;
    for (auto& c : st.children)
      if (c.handle)
        self->send_exit(c.handle, em.reason);
    self->quit(em.reason);
  });
  return {
    [=](restart_atom, uint64_t k) {
      auto& st = self->state;
      if (st.stopping || k >= st.children.size() || st.children[k].handle)
        return;
      spdlog::info("restarting {}", describe(st.children[k]));
      start_child(self, k);
    },
    [=](drain_atom) -> caf::result<bool> {
      auto& st = self->state;
      st.stopping = true;
      std::vector<task_consumer_actor> live;
      for (auto& c : st.children)
        if (c.consumer && c.handle)
          live.push_back(caf::actor_cast<task_consumer_actor>(c.handle));
      if (live.empty())
        return true;
      auto rp = self->make_response_promise<bool>();
      auto timeout = std::chrono::duration_cast<milliseconds>(
                       std::chrono::duration<double>(st.opts.shutdown_timeout))
                     + milliseconds{5000};
      // Complete only if every consumer drained completely.
      auto remaining = std::make_shared<size_t>(live.size());
      auto all_complete = std::make_shared<bool>(true);
      for (auto& c : live)
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
      size_t waiting = 0;
      for (auto& c : st.children)
        if (!c.handle)
          ++waiting;
      own.extra["restarting"] = std::to_string(waiting);
      auto rp = self->make_response_promise<std::vector<actor_status>>();
      auto results = std::make_shared<std::vector<actor_status>>();
      results->push_back(std::move(own));
      std::vector<std::pair<caf::actor, uint64_t>> children;
      for (auto& c : st.children)
        if (c.handle)
          children.emplace_back(c.handle, c.restarts);
      auto remaining = std::make_shared<size_t>(children.size());
      if (children.empty()) {
        rp.deliver(*results);
        return rp;
      }
      for (auto& [child, restarts] : children) {
        // A child busy in a long task cannot answer: say so instead of waiting.
        self->request(child, milliseconds{500}, status_atom_v)
          .then(
            [=, restarts = restarts](actor_status& s) mutable {
              s.restarts = restarts;
              results->push_back(std::move(s));
              if (--*remaining == 0)
                rp.deliver(*results);
            },
            [=, id = child.id(), restarts = restarts](caf::error& err) mutable {
              actor_status s;
              s.id = id;
              s.name = "(unresponsive)";
              s.restarts = restarts;
              s.last_error = caf::to_string(err);
              results->push_back(std::move(s));
              if (--*remaining == 0)
                rp.deliver(*results);
            });
      }
      return rp;
    },
    [=](caf::get_atom) {
      std::vector<caf::actor> out;
      for (auto& c : self->state.children)
        out.push_back(c.handle);
      return out;
    },
  };
}

} // namespace vigil
