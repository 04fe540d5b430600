#include "web/read_sources.hpp"

#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/text_excerpt.hpp"
#include "web/stats_query.hpp"

namespace vigil {

read_sources::read_sources(caf::actor_system& sys,
                           const read_api_options& opts)
  : sys_(sys), opts_(opts) {
  // Nothing opens here: the store and the buffer connect on the read API's
  // thread, at the first request that needs them.
}

read_sources::~read_sources() = default;

caf::expected<event_store*> read_sources::store() {
  if (!store_) {
    if (!opts_.open_store)
      return caf::make_error(errc::unavailable, "no event store configured");
    auto s = opts_.open_store();
    if (!s)
      return s.error();
    store_ = std::move(*s);
  }
  return store_.get();
}

void read_sources::store_failed() {
  store_.reset();
}

std::vector<int64_t> read_sources::pending(const std::string& model,
                                           const std::string& column,
                                           const std::vector<int64_t>& ids) {
  std::vector<int64_t> out(ids.size(), 0);
  if (!opts_.buffer_store || ids.empty())
    return out;
  if (!buffer_) {
    auto b = make_buffer_backend(*opts_.buffer_store);
    if (!b) {
      warn("buffer", error_text(b.error()));
      return out;
    }
    buffer_ = std::move(*b);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    auto got = buffer_->get(model, {column},
                            {{"id", buffer_value::of(ids[i])}});
    if (!got) {
      // One failure ends the round: a store that is down would otherwise
      // cost its timeout once per row.
      warn("buffer", error_text(got.error()));
      buffer_.reset();
      return std::vector<int64_t>(ids.size(), 0);
    }
    if (auto j = got->find(column); j != got->end())
      out[i] = j->second;
  }
  return out;
}

caf::expected<tsdb_answer> read_sources::ask_tsdb(const tsdb_query& q) {
  if (!opts_.tsdb)
    return caf::make_error(errc::unavailable, "this node runs no TSDB");
  caf::expected<tsdb_answer> out{caf::make_error(errc::unavailable,
                                                 "the TSDB did not answer")};
  caf::scoped_actor self{sys_};
  self->request(*opts_.tsdb, opts_.tsdb_timeout, q)
    .receive([&](tsdb_answer& a) { out = std::move(a); },
             [&](const caf::error& err) { out = err; });
  return out;
}

double read_sources::now() const {
  if (opts_.clock)
    return opts_.clock();
  return static_cast<double>(now_unix_us()) / 1e6;
}

void read_sources::warn(const std::string& source, const std::string& text) {
  auto t = std::chrono::steady_clock::now();
  auto i = warned_.find(source);
  if (i != warned_.end() && t - i->second < std::chrono::minutes{1})
    return;
  warned_[source] = t;
  spdlog::warn("read api: {}: {} (answering without it)", source,
               printable_excerpt(text));
}

http_response unavailable(const std::string& what, const caf::error& err) {
  auto resp = json_error(503, what + ": " + error_text(err));
  resp.headers.emplace_back("Retry-After", "5");
  return resp;
}

environment_arg read_environment_arg(read_sources& src, uint64_t org_id,
                                     std::string_view query) {
  environment_arg out;
  auto name = query_value(query, "environment");
  if (!name)
    return out;
  auto store = src.store();
  if (!store) {
    out.error = unavailable("event store unavailable", store.error());
    return out;
  }
  auto id = (*store)->find_environment(org_id, *name);
  if (!id) {
    src.store_failed();
    out.error = unavailable("reading the environments failed", id.error());
  } else if (!*id) {
    out.error = json_error(404, "Environment does not exist: "
                                  + excerpt(*name, 100));
  } else {
    out.id = **id;
  }
  return out;
}

} // namespace vigil
