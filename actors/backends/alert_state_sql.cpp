#include "actors/backends/alert_state.hpp"

#include <atomic>

#include "actors/backends/event_store.hpp"

namespace vigil {

namespace {

class sql_alert_state : public alert_state {
public:
  explicit sql_alert_state(alert_state_options opts)
    : opts_(std::move(opts)), id_(next_id()) {
    // nop
  }

  caf::expected<std::optional<std::string>>
  group_status(int64_t group_id) override {
    auto s = store();
    if (!s)
      return s.error();
    auto g = (*s)->get_group(group_id);
    if (!g)
      return failed(g.error());
    if (!*g)
      return std::optional<std::string>{};
    return std::optional<std::string>{(*g)->status};
  }

  caf::expected<std::optional<std::string>>
  event_json(uint64_t project_id, const std::string& event_id) override {
    auto s = store();
    if (!s)
      return s.error();
    auto ev = (*s)->get_event(project_id, event_id);
    if (!ev)
      return failed(ev.error());
    return std::move(*ev);
  }

  caf::expected<int64_t> group_count(alert_condition_kind kind,
                                     int64_t group_id, int64_t start,
                                     int64_t end) override {
    auto t = tsdb();
    if (!t)
      return t.error();
    tsdb_range range;
    range.start = start;
    range.end = end;
    range.rollup
      = tsdb_optimal_rollup(opts_.tsdb.rollups, start, end).seconds;
    std::vector<tsdb_key> keys{tsdb_key::of(group_id)};
    if (kind == alert_condition_kind::users_frequency) {
      auto n = (*t)->get_distinct_counts_totals(
        tsdb_model::users_affected_by_group, keys, range);
      if (!n)
        return tsdb_failed(n.error());
      return n->empty() ? int64_t{0} : n->front();
    }
    auto series = (*t)->get_range(tsdb_model::group, keys, range);
    if (!series)
      return tsdb_failed(series.error());
    auto sums = tsdb_sums(*series);
    return sums.empty() ? int64_t{0} : sums.front();
  }

  caf::expected<bool> activate_rule(uint64_t project_id,
                                    const std::string& rule_id,
                                    int64_t group_id, double now,
                                    double frequency_secs) override {
    auto s = store();
    if (!s)
      return s.error();
    auto took = (*s)->activate_rule(project_id, rule_id, group_id, now,
                                    frequency_secs);
    if (!took)
      return failed(took.error());
    return *took;
  }

  caf::error release_rule(uint64_t project_id, const std::string& rule_id,
                          int64_t group_id, double fired_at) override {
    auto s = store();
    if (!s)
      return s.error();
    auto err = (*s)->release_rule(project_id, rule_id, group_id, fired_at);
    if (err)
      failed(err);
    return err;
  }

private:
  // One thread's connections; `owner` tells them apart should a process
  // make more than one state (tests). An id, not the address: a new state
  // may live where a destroyed one did.
  struct thread_conns {
    uint64_t owner = 0;
    std::unique_ptr<event_store> store;
    std::unique_ptr<tsdb_backend> tsdb;
  };

  static thread_conns& conns() {
    thread_local thread_conns c;
    return c;
  }

  thread_conns& mine() {
    auto& c = conns();
    if (c.owner != id_)
      c = thread_conns{id_, nullptr, nullptr};
    return c;
  }

  caf::expected<event_store*> store() {
    auto& c = mine();
    if (!c.store) {
      auto s = event_store::open(opts_.db_url, opts_.db_options);
      if (!s)
        return s.error();
      c.store = std::move(*s);
    }
    return c.store.get();
  }

  caf::expected<tsdb_backend*> tsdb() {
    auto& c = mine();
    if (!c.tsdb) {
      auto t = make_tsdb_backend(opts_.tsdb);
      if (!t)
        return t.error();
      c.tsdb = std::move(*t);
    }
    return c.tsdb.get();
  }

  // A failed call drops the connection: the retry opens a new one.
  caf::error failed(const caf::error& err) {
    mine().store.reset();
    return err;
  }

  caf::error tsdb_failed(const caf::error& err) {
    mine().tsdb.reset();
    return err;
  }

  static uint64_t next_id() {
    static std::atomic<uint64_t> ids{0};
    return ++ids;
  }

  alert_state_options opts_;
  uint64_t id_;
};

} // namespace

std::shared_ptr<alert_state> make_alert_state(alert_state_options opts) {
  return std::make_shared<sql_alert_state>(std::move(opts));
}

} // namespace vigil
