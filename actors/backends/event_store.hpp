#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "actors/backends/nodestore.hpp"
#include "adapters/sql.hpp"

namespace vigil {

/// One normalized event, ready to store.
struct stored_event {
  /// 32 hex digits, as the SDKs send it.
  std::string event_id;
  uint64_t project_id = 0;
  /// The grouping hash (from the fingerprint, exception or message).
  std::string grouping_hash;
  std::string title;
  std::string culprit;
  /// When the event happened, Unix seconds.
  double timestamp = 0;
  /// The normalized event as JSON text (the nodestore value).
  std::string json;
  /// Optional: `nodestore::encode_main(json)`, computed by the caller off
  /// the writer's thread (compression is most of a write's CPU time). Empty:
  /// store_batch encodes `json` itself.
  std::string encoded;
  /// A transaction (`"type": "transaction"`): stored in the nodestore, but
  /// not an error: it joins no group and counts in no times_seen.
  bool transaction = false;
};

/// What storing an event did to its group.
struct group_outcome {
  int64_t group_id = 0;
  /// True when this event created the group; a retry of that event
  /// (already stored) says so again (groups.first_event_id).
  bool is_new = false;
  /// The event's node existed already (a retry of a stored event): it
  /// counted nothing now.
  bool duplicate = false;
  /// The event reopened its resolved group (Sentry's is_regression): the
  /// first new event of the batch for a group whose status was resolved.
  bool is_regression = false;
};

/// What `store_batch` leaves to the write buffer when asked to: the count
/// of one existing group's new events in the batch, and their latest
/// timestamp (the group's row is not touched by the batch's transaction).
struct group_count {
  int64_t group_id = 0;
  /// Events of the batch that joined the group (retries not counted).
  int64_t times_seen = 0;
  /// The latest of their timestamps, Unix seconds.
  double last_seen = 0;
};

/// What `store_batch` writes into the task outbox (`vigil_outbox`) in the
/// batch's own transaction: the record of the tasks the batch queues, and
/// the deletion of rows whose tasks the broker has settled.
struct outbox_write {
  /// Builds the batch's record from its outcomes (called inside the
  /// transaction); an empty record writes no row.
  std::function<std::string(const std::vector<group_outcome>&)> record;
  /// Rows to delete in the same transaction.
  std::vector<int64_t> settled;
  /// Set by store_batch: the id of the row written, 0 when none.
  int64_t written = 0;
};

/// One row of the task outbox.
struct outbox_row {
  int64_t id = 0;
  /// When it was written, Unix seconds.
  double created_at = 0;
  std::string record;
};

/// One row of the `groups` table (an issue).
struct group_row {
  int64_t id = 0;
  uint64_t project_id = 0;
  std::string hash;
  std::string title;
  std::string culprit;
  double first_seen = 0;
  double last_seen = 0;
  int64_t times_seen = 0;
  /// "unresolved" for every group this version creates.
  std::string status;
};

/// One row of `event_attachments`: an envelope attachment's metadata (its
/// bytes are in the filestore under `file_key`), as Sentry's
/// EventAttachment and File keep it.
struct attachment_row {
  int64_t id = 0;
  uint64_t project_id = 0;
  /// 32 hex digits.
  std::string event_id;
  /// The item's `filename`.
  std::string name;
  /// The item's `content_type` ("application/octet-stream" when absent).
  std::string content_type;
  /// The item's `attachment_type` ("event.attachment" when absent).
  std::string type;
  int64_t size = 0;
  /// Hex SHA-1 of the bytes (Sentry's File.checksum).
  std::string sha1;
  /// Where the bytes are in the filestore.
  std::string file_key;
  /// When it was stored, Unix seconds.
  double date_added = 0;
};

/// A note on an issue (Sentry's Activity of type NOTE): a comment, or a
/// mail reply that became one.
struct group_note {
  int64_t id = 0;
  int64_t group_id = 0;
  /// Who wrote it: the member's address.
  std::string author;
  std::string text;
  /// Unix seconds.
  double date_added = 0;
};

/// The highest schema version this build creates (see docs/STORAGE.md).
constexpr int64_t event_store_schema_version = 6;

/// Event storage for the ingest pipeline: the nodestore plus the `groups`
/// table, on one SQL connection. Not thread-safe: the ingest actor owns one
/// (HTTP read handlers open their own, which SQLite's WAL mode lets read
/// while the writer writes).
class event_store {
public:
  /// Opens `db_url` (see sql_connection::open) and brings the schema up to
  /// date, creating it on first start (recorded in `vigil_schema_version`).
  /// Fails when the database has a newer schema than this build knows.
  static caf::expected<std::unique_ptr<event_store>>
  open(const std::string& db_url, const sql_options& opts = {});

  /// Stores a batch in ONE transaction: each event's node (id
  /// `event_node_id`) and one upsert per group it touches (times_seen + the
  /// number of its events, last_seen = max, first_seen = min; title and
  /// culprit from the group's first event). Returns one outcome per event,
  /// in order; within a batch the first event of a new hash creates its
  /// group (is_new) and the others count in it. An event
  /// whose node already exists (a retry) changes neither its node nor its
  /// group: its outcome names the group, with the is_new it had when first
  /// stored. A transaction's outcome is group 0, not new. With `outbox`,
  /// the batch's outbox row is written and the settled rows are deleted in
  /// the same transaction. On error nothing of the batch is stored.
  ///
  /// With `deferred` (buffer.ingest-counters: buffer), a group that exists
  /// already is not updated: its count and latest timestamp are appended to
  /// `deferred`, one entry per group, for the caller to send to the write
  /// buffer after the commit. A new group is still inserted here, with the
  /// count, first and last seen of the batch's events that created it; an
  /// insert that finds the group created meanwhile (another node) defers
  /// its count too. `deferred` is cleared first, and left empty on error.
  caf::expected<std::vector<group_outcome>>
  store_batch(const std::vector<stored_event>& events,
              outbox_write* outbox = nullptr,
              std::vector<group_count>* deferred = nullptr);

  /// Outbox rows with an id in (`after_id`, `until_id`], oldest first, at
  /// most `limit`: the tasks a node republishes at start.
  caf::expected<std::vector<outbox_row>>
  outbox_rows(int64_t after_id, int64_t until_id, size_t limit);

  /// The highest outbox row id (0 when the outbox is empty). Ids only grow.
  caf::expected<int64_t> outbox_max_id();

  /// Deletes outbox rows (their tasks settled) in one transaction.
  caf::error delete_outbox(const std::vector<int64_t>& ids);

  /// The stored JSON of an event, or nullopt when unknown.
  caf::expected<std::optional<std::string>>
  get_event(uint64_t project_id, const std::string& event_id);

  /// The groups of a project, newest `last_seen` first.
  caf::expected<std::vector<group_row>> list_groups(uint64_t project_id,
                                                    size_t limit = 100);

  /// One group by id, or nullopt.
  caf::expected<std::optional<group_row>> get_group(int64_t group_id);

  /// The ids of organization `organization_id`'s environments `names`, in
  /// order, each created when missing (Sentry's Environment.get_or_create;
  /// table `environments`). Known ids are cached by this store.
  caf::expected<std::vector<int64_t>>
  environment_ids(uint64_t organization_id,
                  const std::vector<std::string>& names);

  /// The id of an existing environment, nullopt when the organization has
  /// none of that name.
  caf::expected<std::optional<int64_t>>
  find_environment(uint64_t organization_id, const std::string& name);

  /// Records attachments in one transaction. A row that is there already
  /// (same project, event and file key: a retried envelope) is kept as it
  /// is, so a retry stores nothing twice.
  caf::error store_attachments(const std::vector<attachment_row>& rows);

  /// The attachments of an event, oldest first.
  caf::expected<std::vector<attachment_row>>
  list_attachments(uint64_t project_id, const std::string& event_id);

  /// One attachment of an event, or nullopt.
  caf::expected<std::optional<attachment_row>>
  get_attachment(uint64_t project_id, const std::string& event_id,
                 int64_t id);

  /// Attachments stored before `cutoff` (Unix seconds), oldest first, at
  /// most `limit`: what retention removes.
  caf::expected<std::vector<attachment_row>>
  attachments_before(double cutoff, size_t limit);

  /// Deletes attachment rows by id, in one transaction.
  caf::error delete_attachments(const std::vector<int64_t>& ids);

  /// Adds a note to issue `note.group_id`; answers it with its id.
  caf::expected<group_note> add_note(group_note note);

  /// The notes of an issue, newest first (Sentry's activity order).
  caf::expected<std::vector<group_note>> list_notes(int64_t group_id);

  /// Records a webhook's one-time `token` seen at `now`: true the first
  /// time, false when it was seen before (a replay). Tokens older than
  /// `keep` seconds are forgotten in the same call.
  caf::expected<bool> claim_webhook_token(const std::string& token,
                                          double now, double keep);

  /// Sets a group's status ("resolved", "unresolved" or "ignored", checked
  /// by the caller); resolving records `now` as its resolved_at, any other
  /// status clears it. False when there is no such group.
  caf::expected<bool> set_group_status(int64_t group_id,
                                       const std::string& status, double now);

  /// Sentry's GroupRuleStatus check-and-update, in one statement: marks rule
  /// `rule_id` active for the group at `now` unless it was active after
  /// `now - frequency_secs`. True when this call took the firing (two
  /// workers asking at once: exactly one gets true).
  caf::expected<bool> activate_rule(uint64_t project_id,
                                    const std::string& rule_id,
                                    int64_t group_id, double now,
                                    double frequency_secs);

  /// Undoes a firing taken at `fired_at` whose record could not be kept,
  /// so that the task's retry may fire it again.
  caf::error release_rule(uint64_t project_id, const std::string& rule_id,
                          int64_t group_id, double fired_at);

  /// The nodestore on the same connection.
  nodestore& nodes() { return nodes_; }

  /// The connection (for tests and maintenance).
  sql_connection& db() { return *db_; }

  /// Creates or upgrades the schema on `db` (what `open` runs).
  static caf::error migrate(sql_connection& db);

  explicit event_store(std::unique_ptr<sql_connection> db);

private:
  std::unique_ptr<sql_connection> db_;
  nodestore nodes_;
  /// (organization, name) -> environment id, as environment_ids found them.
  std::map<std::pair<uint64_t, std::string>, int64_t> environments_;
};

/// The nodestore id of an event: md5 hex of "<project_id>:<event_id>"
/// (Sentry's Event.generate_node_id).
std::string event_node_id(uint64_t project_id, const std::string& event_id);

/// The database URL a node uses: `db_url` (config db.url) when set, else
/// `sqlite://<data_dir>/vigil.db` (data_dir: config node.data-dir; a
/// relative one stays relative to the working directory).
std::string effective_db_url(std::string_view db_url,
                             std::string_view data_dir);

/// Connection options from config db.sqlite-synchronous ("normal"/"full").
sql_options make_sql_options(std::string_view sqlite_synchronous);

} // namespace vigil
