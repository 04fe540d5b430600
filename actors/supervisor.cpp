#include "actors/supervisor.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/errors.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

namespace {

using self_ptr = caf::stateful_actor<supervisor_state>*;

void start_child(self_ptr self) {
  auto& st = self->state;
  st.child = st.opts.spawn_child(self);
  st.started = std::chrono::steady_clock::now();
}

caf::behavior supervisor(self_ptr self, supervisor_options opts) {
  self->state.opts = std::move(opts);
  start_child(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    using std::chrono::milliseconds;
    auto& st = self->state;
    if (dm.source != st.child.address())
      return;
    st.child = caf::actor{};
    if (st.stopping || dm.reason == caf::exit_reason::user_shutdown
        || dm.reason == caf::exit_reason::normal) {
      self->quit(dm.reason);
      return;
    }
    auto text = self->system().render(dm.reason);
    ++st.counters.restarts;
    st.counters.fail(text);
    bool healthy = std::chrono::steady_clock::now() - st.started
                   >= st.opts.healthy_after;
    st.backoff = healthy ? st.opts.min_backoff
                         : std::clamp(st.backoff * 2, st.opts.min_backoff,
                                      st.opts.max_backoff);
    spdlog::error("{} failed ({}); restart {} in {} ms", st.opts.child_name,
                  text, st.counters.restarts, st.backoff.count());
    self->delayed_send(self, st.backoff, restart_atom_v);
  });
  // Stopping the supervisor stops its child; the down handler above then
  // sees a user_shutdown and does not restart it.
  self->set_exit_handler([=](caf::exit_msg& msg) {
    auto& st = self->state;
    st.stopping = true;
    if (st.child)
      self->send_exit(st.child, msg.reason);
    else
      self->quit(msg.reason);
  });
  self->set_default_handler(
    [=](caf::scheduled_actor*,
        caf::message_view& x) -> caf::result<caf::message> {
      auto& st = self->state;
      if (!st.child)
        return caf::make_error(errc::unavailable,
                               st.opts.child_name
                                 + " is restarting; retry later");
      return self->delegate(st.child, x.move_content_to_message());
    });
  return {
    [=](restart_atom) {
      auto& st = self->state;
      if (st.stopping || st.child)
        return;
      start_child(self);
      spdlog::info("{} restarted", st.opts.child_name);
    },
    [=](status_atom) -> caf::result<actor_status> {
      auto& st = self->state;
      if (!st.child)
        return caf::make_error(errc::unavailable,
                               st.opts.child_name + " is restarting");
      auto rp = self->make_response_promise<actor_status>();
      auto restarts = st.counters.restarts;
      auto last_error = st.counters.last_error;
      self->request(st.child, st.opts.status_timeout, status_atom_v)
        .then(
          [=](actor_status& s) mutable {
            s.restarts += restarts;
            if (s.last_error.empty())
              s.last_error = last_error;
            rp.deliver(std::move(s));
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
  };
}

} // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_options opts) {
  return sys.spawn(supervisor, std::move(opts));
}

} // namespace vigil
