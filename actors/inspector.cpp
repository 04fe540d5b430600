#include "actors/inspector.hpp"

#include <map>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

service_figures::~service_figures() {
  // nop
}

cluster_source::~cluster_source() {
  // nop
}

namespace {

using json = nlohmann::json;

/// The figures helper: runs the blocking `collect` on its own thread.
using figures_actor
  = caf::typed_actor<caf::replies_to<caf::get_atom>::with<std::string>>;

figures_actor::behavior_type
figures_helper(figures_actor::pointer, std::shared_ptr<service_figures> src) {
  return {
    [src](caf::get_atom) -> std::string {
      try {
        return src->collect();
      } catch (const std::exception& e) {
        return dump_json(json{{"figures_error", e.what()}});
      } catch (...) {
        return dump_json(json{{"figures_error", "unknown failure"}});
      }
    },
  };
}

/// One actor's row.
json actor_row(const std::string& service, const actor_status& st,
               bool answering) {
  json extra = json::object();
  for (auto& [k, v] : st.extra)
    extra[k] = v;
  return json{{"service", service},
              {"id", st.id},
              {"name", st.name},
              {"answering", answering},
              {"mailbox", st.mailbox_size},
              {"processed", st.processed},
              {"errors", st.errors},
              {"restarts", st.restarts},
              {"last_error", st.last_error},
              {"extra", std::move(extra)}};
}

/// One snapshot being gathered: a slot per directory entry (a list entry
/// holds the supervisor and each child), filled as answers or timeouts
/// come in; delivered when nothing is outstanding. Every request it waits
/// for has a timeout, so it always completes.
struct gathering {
  struct slot {
    std::string service;
    json own;
    std::vector<json> children;
    /// The supervisor's view of its children's restarts, by actor id.
    std::map<uint64_t, uint64_t> restarts;
  };
  std::vector<slot> slots;
  json figures;
  size_t pending = 0;
  std::function<void(json)> done;
};

struct inspector_state {
  static inline const char* name = "inspector";
  inspector_options opts;
  std::optional<figures_actor> figures;
  /// The last name each actor answered with, for the rows of actors that
  /// do not answer now.
  std::map<uint64_t, std::string> names;
  /// Cluster requests running (each holds a detached actor).
  size_t cluster_requests = 0;
};

using self_ptr = inspector_actor::stateful_pointer<inspector_state>;

json silent_row(self_ptr self, const std::string& service, uint64_t id,
                const std::string& why) {
  actor_status st;
  st.id = id;
  if (auto i = self->state.names.find(id); i != self->state.names.end())
    st.name = i->second;
  st.last_error = why;
  return actor_row(service, st, false);
}

json answered_row(self_ptr self, const std::string& service,
                  const actor_status& st) {
  self->state.names[st.id] = st.name;
  return actor_row(service, st, true);
}

void finish(const std::shared_ptr<gathering>& g, self_ptr self) {
  if (--g->pending > 0)
    return;
  json actors = json::array();
  for (auto& s : g->slots) {
    if (!s.own.is_null())
      actors.push_back(std::move(s.own));
    for (auto& c : s.children) {
      if (auto i = s.restarts.find(c["id"].get<uint64_t>());
          i != s.restarts.end())
        c["restarts"] = i->second;
      actors.push_back(std::move(c));
    }
  }
  auto card = self->state.opts.identity ? self->state.opts.identity->card()
                                        : node_card{};
  json out{{"node", to_json(card)},
           {"time", now_unix_seconds()},
           {"reachable", true},
           {"actors", std::move(actors)}};
  if (g->figures.is_object())
    for (auto& [k, v] : g->figures.items())
      out[k] = v;
  g->done(std::move(out));
}

std::string reason(const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return "did not answer within the inspector's timeout";
  return error_text(err);
}

/// Asks a supervisor for its children, then each child itself, so that a
/// child blocked in a task shows as not answering while the others do.
void ask_list(self_ptr self, const std::shared_ptr<gathering>& g, size_t i,
              caf::actor handle) {
  auto timeout = self->state.opts.timeout;
  g->pending += 2;
  self->request(handle, timeout, status_atom_v)
    .then(
      [=](std::vector<actor_status>& all) {
        auto& s = g->slots[i];
        if (!all.empty())
          s.own = answered_row(self, s.service, all.front());
        for (size_t k = 1; k < all.size(); ++k)
          s.restarts[all[k].id] = all[k].restarts;
        finish(g, self);
      },
      [=](caf::error& err) {
        auto& s = g->slots[i];
        s.own = silent_row(self, s.service, handle.id(), reason(err));
        finish(g, self);
      });
  self->request(handle, timeout, caf::get_atom_v)
    .then(
      [=](std::vector<caf::actor>& children) {
        g->slots[i].children.resize(children.size());
        for (size_t k = 0; k < children.size(); ++k) {
          auto& child = children[k];
          if (!child) {
            actor_status st;
            st.name = "(restarting)";
            g->slots[i].children[k] = actor_row(g->slots[i].service, st, false);
            continue;
          }
          ++g->pending;
          self->request(child, timeout, status_atom_v)
            .then(
              [=](actor_status& st) {
                g->slots[i].children[k]
                  = answered_row(self, g->slots[i].service, st);
                finish(g, self);
              },
              [=, id = child.id()](caf::error& err) {
                g->slots[i].children[k]
                  = silent_row(self, g->slots[i].service, id, reason(err));
                finish(g, self);
              });
        }
        finish(g, self);
      },
      [=](caf::error&) {
        // The supervisor's own row says it did not answer.
        finish(g, self);
      });
}

/// Gathers this node's snapshot and hands it to `done`.
void gather(self_ptr self, std::function<void(json)> done) {
  auto g = std::make_shared<gathering>();
  g->done = std::move(done);
  // Held until every request is sent, so that an answer cannot complete
  // the snapshot early.
  g->pending = 1;
  auto timeout = self->state.opts.timeout;
  auto entries = self->state.opts.directory
                   ? self->state.opts.directory->entries()
                   : std::vector<directory_entry>{};
  g->slots.resize(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    auto& e = entries[i];
    g->slots[i].service = e.service;
    if (e.reply == status_reply::list) {
      ask_list(self, g, i, e.handle);
      continue;
    }
    ++g->pending;
    self->request(e.handle, timeout, status_atom_v)
      .then(
        [=](actor_status& st) {
          g->slots[i].own = answered_row(self, g->slots[i].service, st);
          finish(g, self);
        },
        [=, id = e.handle.id()](caf::error& err) {
          g->slots[i].own
            = silent_row(self, g->slots[i].service, id, reason(err));
          finish(g, self);
        });
  }
  if (self->state.figures) {
    ++g->pending;
    self->request(*self->state.figures, timeout, caf::get_atom_v)
      .then(
        [=](std::string& text) {
          auto parsed = json::parse(text, nullptr, false);
          if (parsed.is_object())
            g->figures = std::move(parsed);
          finish(g, self);
        },
        [=](caf::error& err) {
          g->figures = json{{"figures_error", reason(err)}};
          finish(g, self);
        });
  }
  finish(g, self);
}

/// Most cluster requests at once (each holds a thread while it fetches).
constexpr size_t max_cluster_requests = 4;

using peers_actor
  = caf::typed_actor<caf::replies_to<cluster_atom, std::string>::with<std::string>>;

peers_actor::behavior_type
peers_fetcher(peers_actor::pointer self, std::shared_ptr<cluster_source> src) {
  return {
    [self, src](cluster_atom, const std::string& self_id) {
      self->quit();
      try {
        return src->peers(self_id);
      } catch (const std::exception& e) {
        return dump_json(json::array(
          {json{{"reachable", false}, {"error", e.what()}}}));
      }
    },
  };
}

inspector_actor::behavior_type
inspector_fn(self_ptr self, inspector_options opts) {
  self->state.opts = std::move(opts);
  if (self->state.opts.figures)
    self->state.figures = self->spawn<caf::detached + caf::linked>(
      figures_helper, self->state.opts.figures);
  return {
    [=](snapshot_atom) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      gather(self, [rp](json snap) mutable { rp.deliver(dump_json(snap)); });
      return rp;
    },
    [=](snapshot_atom, cluster_atom) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      auto nodes = std::make_shared<json>(json::array());
      auto own = std::make_shared<json>();
      auto pending = std::make_shared<int>(1);
      auto complete = [rp, nodes, own, pending]() mutable {
        if (--*pending > 0)
          return;
        json all = json::array();
        all.push_back(std::move(*own));
        for (auto& n : *nodes)
          all.push_back(std::move(n));
        rp.deliver(dump_json(json{{"nodes", std::move(all)}}));
      };
      auto& st = self->state;
      if (st.opts.cluster && st.cluster_requests < max_cluster_requests) {
        ++*pending;
        ++st.cluster_requests;
        auto fetcher = self->spawn<caf::detached>(peers_fetcher,
                                                  st.opts.cluster);
        auto id = st.opts.identity ? st.opts.identity->card().id
                                   : std::string{};
        self->request(fetcher, st.opts.cluster_timeout, cluster_atom_v, id)
          .then(
            [=](std::string& text) mutable {
              --self->state.cluster_requests;
              auto parsed = json::parse(text, nullptr, false);
              if (parsed.is_array())
                *nodes = std::move(parsed);
              complete();
            },
            [=](caf::error& err) mutable {
              --self->state.cluster_requests;
              *nodes = json::array(
                {json{{"reachable", false},
                      {"error", "the other nodes: " + reason(err)}}});
              complete();
            });
      }
      gather(self, [own, complete](json snap) mutable {
        *own = std::move(snap);
        complete();
      });
      return rp;
    },
  };
}

} // namespace

inspector_actor make_inspector(caf::actor_system& sys, inspector_options opts) {
  return sys.spawn(inspector_fn, std::move(opts));
}

} // namespace vigil
