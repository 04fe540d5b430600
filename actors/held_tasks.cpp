#include "actors/held_tasks.hpp"

#include <algorithm>
#include <unistd.h>

#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/errors.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

task_info task_info_of(const delivery& d) {
  task_info t;
  t.id = d.msg.id;
  t.name = d.msg.task;
  t.argsrepr = d.msg.argsrepr;
  t.kwargsrepr = d.msg.kwargsrepr;
  t.queue = d.queue;
  t.priority = d.msg.priority;
  t.redelivered = d.redelivered;
  return t;
}

value request_info(const task_info& t, const std::string& hostname) {
  value_map di;
  di.emplace_back("exchange", "");
  di.emplace_back("routing_key", t.queue);
  di.emplace_back("priority", static_cast<int64_t>(t.priority));
  di.emplace_back("redelivered", t.redelivered);
  bool started = t.time_start > 0;
  value_map m;
  m.emplace_back("id", t.id);
  m.emplace_back("name", t.name);
  m.emplace_back("args", t.argsrepr);
  m.emplace_back("kwargs", t.kwargsrepr);
  m.emplace_back("type", t.name);
  m.emplace_back("hostname", hostname);
  m.emplace_back("time_start", started ? value{t.time_start} : value{nullptr});
  m.emplace_back("acknowledged", false);
  m.emplace_back("delivery_info", std::move(di));
  m.emplace_back("worker_pid", started ? value{static_cast<int64_t>(::getpid())}
                                       : value{nullptr});
  return value{std::move(m)};
}

void held_tasks::attach(caf::actor consumer) {
  std::lock_guard guard{mtx_};
  consumers_.push_back(std::move(consumer));
}

void held_tasks::detach(caf::actor_id id) {
  std::lock_guard guard{mtx_};
  consumers_.erase(std::remove_if(consumers_.begin(), consumers_.end(),
                                  [&](const caf::actor& a) {
                                    return a.id() == id;
                                  }),
                   consumers_.end());
}

void held_tasks::put(caf::actor_id, held_snapshot snap) {
  std::lock_guard guard{mtx_};
  auto& r = answers_.reserved;
  r.insert(r.end(), std::make_move_iterator(snap.reserved.begin()),
           std::make_move_iterator(snap.reserved.end()));
  auto& s = answers_.scheduled;
  s.insert(s.end(), std::make_move_iterator(snap.scheduled.begin()),
           std::make_move_iterator(snap.scheduled.end()));
}

held_snapshot held_tasks::take() {
  held_snapshot out;
  {
    std::lock_guard guard{mtx_};
    std::swap(out, answers_);
  }
  std::stable_sort(out.scheduled.begin(), out.scheduled.end(),
                   [](const task_info& a, const task_info& b) {
                     return a.eta_us < b.eta_us;
                   });
  return out;
}

held_snapshot held_tasks::gather(caf::actor_system& sys,
                                 std::chrono::milliseconds timeout) {
  std::vector<caf::actor> consumers;
  {
    std::lock_guard guard{mtx_};
    consumers = consumers_;
    answers_ = {}; // a late answer to an earlier request is stale
  }
  caf::scoped_actor self{sys};
  for (auto& c : consumers)
    self->request(c, timeout, snapshot_atom_v)
      .receive([](bool) {},
               [&](caf::error& err) {
                 spdlog::warn("remote control: a task consumer did not tell "
                              "what it holds: {}", error_text(err));
               });
  return take();
}

} // namespace vigil
