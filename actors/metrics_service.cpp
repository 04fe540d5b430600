#include "actors/metrics_service.hpp"

#include <map>

#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/metrics.hpp"
#include "messages/clock.hpp"

namespace vigil {

namespace {

using self_ptr = metrics_actor::stateful_pointer<metrics_state>;

std::chrono::milliseconds interval_of(const metrics_config& c) {
  return std::chrono::milliseconds{
    std::max<int64_t>(10, static_cast<int64_t>(c.interval * 1000))};
}

void emit(self_ptr self) {
  auto& st = self->state;
  auto points = metrics::collect();
  st.opts.backend->emit(points, now_unix_seconds());
  st.counters.processed += points.size();
  ++st.intervals;
}

/// One directory poll: the figures summed per actor name (several workers
/// share one), recorded as gauges once every actor answered or timed out.
struct poll_round {
  struct figures {
    std::string service;
    uint64_t mailbox = 0;
    uint64_t processed = 0;
  };
  std::map<std::string, figures> by_name;
  size_t pending = 0;

  void add(const std::string& service, const actor_status& s) {
    auto& f = by_name[s.name];
    f.service = service;
    f.mailbox += s.mailbox_size;
    f.processed += s.processed;
  }

  void record() const {
    for (auto& [name, f] : by_name) {
      metrics::gauge("actors.mailbox_size", static_cast<double>(f.mailbox),
                     {{"actor", name}, {"service", f.service}});
      metrics::gauge("actors.processed", static_cast<double>(f.processed),
                     {{"actor", name}, {"service", f.service}});
    }
  }
};

void poll(self_ptr self) {
  auto& st = self->state;
  if (!st.opts.directory || st.polling)
    return;
  auto entries = st.opts.directory->entries();
  if (entries.empty())
    return;
  st.polling = true;
  auto round = std::make_shared<poll_round>();
  round->pending = entries.size();
  auto done = [self, round] {
    if (--round->pending == 0) {
      round->record();
      self->state.polling = false;
    }
  };
  for (auto& e : entries) {
    auto on_error = [self, done](caf::error&) {
      ++self->state.not_answering;
      done();
    };
    if (e.reply == status_reply::list) {
      self->request(e.handle, st.opts.status_timeout, status_atom_v)
        .then(
          [round, done, service = e.service](std::vector<actor_status>& xs) {
            for (auto& s : xs)
              round->add(service, s);
            done();
          },
          on_error);
    } else {
      self->request(e.handle, st.opts.status_timeout, status_atom_v)
        .then(
          [round, done, service = e.service](actor_status& s) {
            round->add(service, s);
            done();
          },
          on_error);
    }
  }
}

} // namespace

metrics_actor::behavior_type metrics_service(self_ptr self,
                                             metrics_service_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  if (!st.opts.backend)
    st.opts.backend = std::move(*make_metrics_backend(metrics_config{}));
  metrics::configure(st.opts.config.backend != "dummy",
                     st.opts.config.sample_rate);
  spdlog::info("metrics: backend {}, prefix '{}', every {} s, sample rate {}",
               st.opts.backend->describe(), st.opts.config.prefix,
               st.opts.config.interval, st.opts.config.sample_rate);
  if (st.opts.config.backend != "dummy")
    self->send(self, metrics_atom_v);
  return {
    [=](metrics_atom) {
      emit(self);
      poll(self);
      self->delayed_send(self, interval_of(self->state.opts.config),
                         metrics_atom_v);
    },
    [=](flush_atom) {
      emit(self);
      return true;
    },
    [=](status_atom) {
      auto& st = self->state;
      auto out = make_status(self, st.counters);
      out.extra = st.opts.backend->figures();
      out.extra["backend"] = st.opts.backend->describe();
      out.extra["intervals"] = std::to_string(st.intervals);
      out.extra["status not answered"] = std::to_string(st.not_answering);
      return out;
    },
  };
}

} // namespace vigil
