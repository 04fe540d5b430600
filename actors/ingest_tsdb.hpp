#pragma once

// What one ingest batch records in the time-series store, summed per
// series so that a burst of one project is one increment, not one per
// event: Sentry's per-event counts (_tsdb_record_all_metrics: project,
// group, users affected) and its per-outcome counts
// (tsdb_increments_from_outcome: received, rejected, blacklisted of the
// project, organization and key), plus vigil's organization_outcomes.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

// Before tsdb_messages.hpp, whose inspect overloads name caf::error.
#include <caf/error.hpp>

#include "messages/quota_messages.hpp"
#include "messages/tsdb_messages.hpp"

namespace vigil {

/// What became of an item, as Sentry's outcomes name it.
enum class item_outcome {
  accepted,
  /// Refused by a quota.
  rate_limited,
  /// Dropped by an inbound filter (projects[].filters).
  filtered,
};

/// "accepted", "rate_limited" or "filtered" (organization_outcomes' keys).
const char* to_string(item_outcome x);

/// Whether `category` is one of Sentry's error categories (error, default,
/// security), the only ones its received/rejected/blacklisted series
/// count.
bool counts_as_received(std::string_view category);

/// The TSDB counts of one batch, all at one timestamp.
class ingest_tsdb_batch {
public:
  /// `timestamp`: when the batch was received (Unix seconds, the node's
  /// clock), as Sentry stamps outcomes.
  explicit ingest_tsdb_batch(int64_t timestamp) : timestamp_(timestamp) {
    // nop
  }

  /// One item's outcome: organization_outcomes ("{org}:{category}:
  /// {outcome}", `quantity`), and for error categories the project's,
  /// organization's and key's received (every outcome) and rejected
  /// (rate_limited) or blacklisted (filtered) series, one per item.
  void item(const quota_scoping& scoping, std::string_view category,
            int64_t quantity, item_outcome outcome);

  /// One stored event (not a retry): project, and for an error (group_id
  /// not 0) its group; with a user identity (normalized_event's
  /// user_identity) the users affected by the project and the group. With
  /// an environment (its id, 0 for none) each is counted for it too, as
  /// Sentry's `?e=` fields beside the all-environments one.
  void event(uint64_t project_id, int64_t group_id,
             std::string_view user_identity, int64_t environment_id = 0);

  bool empty() const {
    return counts_.empty() && users_.empty();
  }

  /// The summed increments and the distinct values, for one tell to the
  /// TSDB actor (the values are moved out: call each once).
  std::vector<tsdb_incr> incrs() const;
  std::vector<tsdb_record> take_records();

private:
  void add(tsdb_model model, tsdb_key key, int64_t n,
           int64_t environment_id = 0);

  // (model, id or -1, text, environment id or 0) -> count
  using series = std::tuple<int, int64_t, std::string, int64_t>;
  // (model, id, environment id or 0) -> values
  using distinct = std::tuple<int, int64_t, int64_t>;
  int64_t timestamp_;
  std::map<series, int64_t> counts_;
  std::map<distinct, std::vector<std::string>> users_;
};

} // namespace vigil
