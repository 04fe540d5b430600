#include "actors/ingest_tsdb.hpp"

namespace vigil {

const char* to_string(item_outcome x) {
  switch (x) {
    case item_outcome::accepted:
      return "accepted";
    case item_outcome::rate_limited:
      return "rate_limited";
    case item_outcome::filtered:
      return "filtered";
  }
  return "accepted";
}

bool counts_as_received(std::string_view category) {
  return category == "error" || category == "default"
         || category == "security";
}

void ingest_tsdb_batch::add(tsdb_model model, tsdb_key key, int64_t n,
                            int64_t environment_id) {
  counts_[series{static_cast<int>(model), key.id.value_or(-1),
                 std::move(key.text), environment_id}]
    += n;
}

void ingest_tsdb_batch::item(const quota_scoping& scoping,
                             std::string_view category, int64_t quantity,
                             item_outcome outcome) {
  auto org = static_cast<int64_t>(scoping.organization_id);
  auto project = static_cast<int64_t>(scoping.project_id);
  auto key = static_cast<int64_t>(scoping.key_id);
  std::string text = std::to_string(org);
  text += ':';
  text += category;
  text += ':';
  text += to_string(outcome);
  add(tsdb_model::organization_outcomes, tsdb_key::of(std::move(text)),
      quantity < 0 ? 0 : quantity);
  if (!counts_as_received(category))
    return;
  // Sentry counts every outcome but invalid as received; rejected and
  // blacklisted are parts of it.
  add(tsdb_model::project_total_received, tsdb_key::of(project), 1);
  add(tsdb_model::organization_total_received, tsdb_key::of(org), 1);
  if (key != 0)
    add(tsdb_model::key_total_received, tsdb_key::of(key), 1);
  if (outcome == item_outcome::rate_limited) {
    add(tsdb_model::project_total_rejected, tsdb_key::of(project), 1);
    add(tsdb_model::organization_total_rejected, tsdb_key::of(org), 1);
    if (key != 0)
      add(tsdb_model::key_total_rejected, tsdb_key::of(key), 1);
  } else if (outcome == item_outcome::filtered) {
    add(tsdb_model::project_total_blacklisted, tsdb_key::of(project), 1);
    add(tsdb_model::organization_total_blacklisted, tsdb_key::of(org), 1);
    if (key != 0)
      add(tsdb_model::key_total_blacklisted, tsdb_key::of(key), 1);
  }
}

void ingest_tsdb_batch::event(uint64_t project_id, int64_t group_id,
                              std::string_view user_identity,
                              int64_t environment_id) {
  auto project = static_cast<int64_t>(project_id);
  // The backends write the all-environments field of each increment that
  // names an environment as well.
  add(tsdb_model::project, tsdb_key::of(project), 1, environment_id);
  if (group_id != 0)
    add(tsdb_model::group, tsdb_key::of(group_id), 1, environment_id);
  if (user_identity.empty())
    return;
  users_[{static_cast<int>(tsdb_model::users_affected_by_project), project,
          environment_id}]
    .emplace_back(user_identity);
  if (group_id != 0)
    users_[{static_cast<int>(tsdb_model::users_affected_by_group), group_id,
            environment_id}]
      .emplace_back(user_identity);
}

std::vector<tsdb_incr> ingest_tsdb_batch::incrs() const {
  std::vector<tsdb_incr> out;
  out.reserve(counts_.size());
  for (const auto& [s, n] : counts_) {
    const auto& [model, id, text, env] = s;
    tsdb_incr x;
    x.model = static_cast<tsdb_model>(model);
    x.key = id >= 0 && text.empty() ? tsdb_key::of(id) : tsdb_key::of(text);
    x.timestamp = timestamp_;
    x.count = n;
    if (env != 0)
      x.environment_id = env;
    out.push_back(std::move(x));
  }
  return out;
}

std::vector<tsdb_record> ingest_tsdb_batch::take_records() {
  std::vector<tsdb_record> out;
  out.reserve(users_.size());
  for (auto& [s, values] : users_) {
    const auto& [model, id, env] = s;
    tsdb_record r;
    r.model = static_cast<tsdb_model>(model);
    r.key = tsdb_key::of(id);
    r.values = std::move(values);
    r.timestamp = timestamp_;
    if (env != 0)
      r.environment_id = env;
    out.push_back(std::move(r));
  }
  users_.clear();
  return out;
}

} // namespace vigil
