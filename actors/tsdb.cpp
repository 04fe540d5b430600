#include "actors/tsdb.hpp"
#include "actors/metrics.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "config/config.hpp"
#include "config/organizations.hpp"
#include "config/service_options.hpp"
#include "config/tsdb_rollups.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

using self_ptr = tsdb_actor::stateful_pointer<tsdb_state>;

caf::error open_backend(self_ptr self) {
  auto& st = self->state;
  if (st.backend)
    return {};
  auto b = make_tsdb_backend(st.opts);
  if (!b)
    return b.error();
  st.backend = std::move(*b);
  return {};
}

void warn(self_ptr self, const caf::error& err, size_t lost) {
  auto& st = self->state;
  auto text = error_text(err);
  st.counters.fail(text);
  auto now = std::chrono::steady_clock::now();
  if (now - st.last_warning >= std::chrono::minutes{1}) {
    st.last_warning = now;
    spdlog::warn("tsdb: store failed, {} count(s) dropped: {}", lost, text);
  }
}

void write_waiting(self_ptr self) {
  auto& st = self->state;
  st.scheduled = false;
  if (st.incrs.empty() && st.records.empty())
    return;
  auto incrs = std::move(st.incrs);
  auto records = std::move(st.records);
  st.incrs.clear();
  st.records.clear();
  auto n = incrs.size() + records.size();
  caf::error err = open_backend(self);
  if (!err && !incrs.empty())
    err = st.backend->incr_multi(incrs);
  if (!err && !records.empty())
    err = st.backend->record_multi(records);
  if (err) {
    st.dropped += n;
    warn(self, err, n);
    return;
  }
  ++st.writes;
  st.written += n;
  metrics::incr("tsdb.incr", static_cast<double>(incrs.size()));
}

caf::expected<tsdb_answer> answer(self_ptr self, const tsdb_query& q) {
  auto& st = self->state;
  if (auto err = open_backend(self))
    return err;
  tsdb_answer out;
  switch (q.kind) {
    case tsdb_query_kind::range: {
      auto r = st.backend->get_range(q.model, q.keys, q.range);
      if (!r)
        return r.error();
      out.series = std::move(*r);
      break;
    }
    case tsdb_query_kind::distinct_series: {
      auto r = st.backend->get_distinct_counts_series(q.model, q.keys, q.range);
      if (!r)
        return r.error();
      out.series = std::move(*r);
      break;
    }
    case tsdb_query_kind::distinct_totals: {
      auto r = st.backend->get_distinct_counts_totals(q.model, q.keys, q.range);
      if (!r)
        return r.error();
      out.totals = std::move(*r);
      break;
    }
    default:
      return caf::make_error(errc::malformed, "tsdb: unknown query kind");
  }
  return out;
}

} // namespace

tsdb_actor::behavior_type tsdb_service(self_ptr self, tsdb_backend_options opts) {
  self->state.opts = std::move(opts);
  spdlog::info("tsdb: backend {}", self->state.opts.backend == "redis"
                                     ? mask_url(self->state.opts.url)
                                     : self->state.opts.backend);
  return {
    [=](record_atom, std::vector<tsdb_incr>& incrs,
        std::vector<tsdb_record>& records) {
      auto& st = self->state;
      auto n = incrs.size() + records.size();
      st.counters.processed += n;
      if (st.incrs.size() + st.records.size() + n > st.max_waiting) {
        st.dropped += n;
        return;
      }
      st.incrs.insert(st.incrs.end(), std::make_move_iterator(incrs.begin()),
                      std::make_move_iterator(incrs.end()));
      st.records.insert(st.records.end(),
                        std::make_move_iterator(records.begin()),
                        std::make_move_iterator(records.end()));
      if (!st.scheduled) {
        // Behind what waits in the mailbox: those join this write.
        st.scheduled = true;
        self->send(self, batch_atom_v);
      }
    },
    [=](batch_atom) { write_waiting(self); },
    [=](tsdb_query& q) -> caf::result<tsdb_answer> {
      write_waiting(self);
      auto out = answer(self, q);
      if (!out) {
        warn(self, out.error(), 0);
        return out.error();
      }
      return std::move(*out);
    },
    [=](status_atom) {
      auto& st = self->state;
      auto out = make_status(self, st.counters);
      out.extra["backend"] = st.backend ? st.backend->describe()
                                        : st.opts.backend;
      out.extra["written"] = std::to_string(st.written);
      out.extra["writes"] = std::to_string(st.writes);
      out.extra["dropped"] = std::to_string(st.dropped);
      return out;
    },
  };
}

caf::expected<tsdb_backend_options> make_tsdb_options(const config& cfg) {
  tsdb_backend_options out;
  out.backend = cfg.get_string("tsdb.backend");
  auto opts = read_service_options(cfg, "tsdb.options", tsdb_option_fields());
  if (!opts)
    return opts.error();
  auto rollups = parse_tsdb_rollups(cfg.get_node("tsdb.rollups"));
  if (!rollups)
    return caf::make_error(errc::bad_config,
                           "tsdb.rollups: " + error_text(rollups.error()));
  out.rollups = std::move(*rollups);
  if (out.backend == "redis") {
    auto url = redis_cluster_url(cfg, "tsdb.options");
    if (!url)
      return url.error();
    out.url = *url;
  }
  return out;
}

} // namespace vigil
