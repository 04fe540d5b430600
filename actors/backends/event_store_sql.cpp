// Event storage on SQL: nodestore rows and group upserts per ingest batch,
// in one transaction (see event_store.hpp and docs/STORAGE.md).

#include "actors/backends/event_store.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <string_view>
#include <utility>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/md5.hpp"

namespace vigil {

namespace {

// Migration 1: the nodestore table (Sentry's shape, as the nodestore
// creates it) and the groups table. Dialects differ only in the
// auto-increment key.
constexpr std::string_view groups_columns =
  " project_id bigint NOT NULL,"
  " hash varchar(128) NOT NULL,"
  " title text NOT NULL,"
  " culprit text NOT NULL,"
  " first_seen double precision NOT NULL,"
  " last_seen double precision NOT NULL,"
  " times_seen bigint NOT NULL DEFAULT 0,"
  " status varchar(32) NOT NULL DEFAULT 'unresolved',"
  " UNIQUE (project_id, hash));"
  "CREATE INDEX IF NOT EXISTS groups_project_last_seen"
  " ON groups (project_id, last_seen);";

std::string schema_v1(sql_dialect d) {
  std::string sql{nodestore::schema_sql()};
  sql += "CREATE TABLE IF NOT EXISTS groups (";
  // SQLite's AUTOINCREMENT never reuses the id of a deleted group.
  sql += d == sql_dialect::sqlite ? " id integer PRIMARY KEY AUTOINCREMENT,"
                                  : " id bigserial PRIMARY KEY,";
  sql += groups_columns;
  return sql;
}

constexpr std::string_view version_table_sql =
  "CREATE TABLE IF NOT EXISTS vigil_schema_version ("
  " version integer NOT NULL PRIMARY KEY,"
  " applied_at double precision NOT NULL)";

// Migration 2: the task outbox (the post_process tasks of each batch, kept
// until the broker has settled them) and the first event of each group,
// which tells a retried event whether it created its group.
std::string schema_v2(sql_dialect d) {
  std::string sql = "CREATE TABLE IF NOT EXISTS vigil_outbox (";
  // AUTOINCREMENT: ids only grow, so that rows written after a node
  // started are never taken for rows it must republish.
  sql += d == sql_dialect::sqlite
           ? " id integer PRIMARY KEY AUTOINCREMENT, created_at double precision NOT NULL,"
             " record blob NOT NULL);"
           : " id bigserial PRIMARY KEY, created_at double precision NOT NULL,"
             " record bytea NOT NULL);";
  sql += "ALTER TABLE groups ADD COLUMN first_event_id text;";
  return sql;
}

// Migration 3: environments (Sentry's Environment: a name per
// organization), whose ids the TSDB's per-environment counts carry.
std::string schema_v3(sql_dialect d) {
  std::string sql = "CREATE TABLE IF NOT EXISTS environments (";
  sql += d == sql_dialect::sqlite ? " id integer PRIMARY KEY AUTOINCREMENT,"
                                  : " id bigserial PRIMARY KEY,";
  sql += " organization_id bigint NOT NULL, name varchar(64) NOT NULL,"
         " date_added double precision NOT NULL,"
         " UNIQUE (organization_id, name));";
  return sql;
}

// Migration 4: envelope attachments' metadata (their bytes are in the
// filestore), as Sentry's EventAttachment.
std::string schema_v4(sql_dialect d) {
  std::string sql = "CREATE TABLE IF NOT EXISTS event_attachments (";
  sql += d == sql_dialect::sqlite ? " id integer PRIMARY KEY AUTOINCREMENT,"
                                  : " id bigserial PRIMARY KEY,";
  sql += " project_id bigint NOT NULL, event_id varchar(32) NOT NULL,"
         " name text NOT NULL, content_type text NOT NULL,"
         " type text NOT NULL, size bigint NOT NULL,"
         " sha1 varchar(40) NOT NULL, file_key text NOT NULL,"
         " date_added double precision NOT NULL,"
         " UNIQUE (project_id, event_id, file_key));"
         "CREATE INDEX IF NOT EXISTS event_attachments_date_added"
         " ON event_attachments (date_added);";
  return sql;
}

// Migration 5: alert rules. A group's resolved_at (set when it is
// resolved, cleared when it is reopened: what tells a regression), and
// Sentry's GroupRuleStatus: when each rule last fired for each group, so
// that a rule fires at most once per group per its frequency.
std::string schema_v5(sql_dialect) {
  return "ALTER TABLE groups ADD COLUMN resolved_at double precision;"
         "CREATE TABLE IF NOT EXISTS group_rule_status ("
         " project_id bigint NOT NULL, rule_id varchar(64) NOT NULL,"
         " group_id bigint NOT NULL, last_active double precision,"
         " date_added double precision NOT NULL,"
         " PRIMARY KEY (project_id, rule_id, group_id));";
}

// Migration 6: notes on issues (comments, and mail replies that became
// comments), and the one-time tokens of the Mailgun webhooks already
// taken, so that a captured webhook cannot be played again on any node.
std::string schema_v6(sql_dialect d) {
  std::string sql = "CREATE TABLE IF NOT EXISTS group_notes (";
  sql += d == sql_dialect::sqlite ? " id integer PRIMARY KEY AUTOINCREMENT,"
                                  : " id bigserial PRIMARY KEY,";
  sql += " group_id bigint NOT NULL, author text NOT NULL,"
         " text text NOT NULL, date_added double precision NOT NULL);"
         "CREATE INDEX IF NOT EXISTS group_notes_group"
         " ON group_notes (group_id, id);"
         "CREATE TABLE IF NOT EXISTS webhook_tokens ("
         " token varchar(128) NOT NULL PRIMARY KEY,"
         " seen_at double precision NOT NULL);"
         "CREATE INDEX IF NOT EXISTS webhook_tokens_seen_at"
         " ON webhook_tokens (seen_at);";
  return sql;
}

std::string upsert_group_sql(sql_dialect d) {
  auto max = d == sql_dialect::sqlite ? "max" : "greatest";
  auto min = d == sql_dialect::sqlite ? "min" : "least";
  return std::string{
           "INSERT INTO groups (project_id, hash, title, culprit, first_seen,"
           " last_seen, times_seen, status, first_event_id)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, 'unresolved', ?)"
           " ON CONFLICT (project_id, hash) DO UPDATE SET"
           " last_seen = "}
         + max + "(groups.last_seen, excluded.last_seen), first_seen = " + min
         + "(groups.first_seen, excluded.first_seen),"
           " times_seen = groups.times_seen + excluded.times_seen"
           " RETURNING id, first_event_id, status";
}

// A new group only: an existing one's counters go through the write
// buffer (store_batch's `deferred`), so the batch does not rewrite its row.
constexpr std::string_view insert_group_sql =
  "INSERT INTO groups (project_id, hash, title, culprit, first_seen,"
  " last_seen, times_seen, status, first_event_id)"
  " VALUES (?, ?, ?, ?, ?, ?, ?, 'unresolved', ?)"
  " ON CONFLICT (project_id, hash) DO NOTHING"
  " RETURNING id, first_event_id, status";

constexpr std::string_view find_group_sql =
  "SELECT id, first_event_id, status FROM groups"
  " WHERE project_id = ? AND hash = ?";

// Sentry's _handle_regression: a resolved group that gets an event is
// unresolved again. Conditional, so that of two batches (or nodes) racing
// on it exactly one sees the change and reports the regression.
constexpr std::string_view reopen_group_sql =
  "UPDATE groups SET status = 'unresolved', resolved_at = NULL"
  " WHERE id = ? AND status = 'resolved'";

constexpr std::string_view insert_outbox_sql =
  "INSERT INTO vigil_outbox (created_at, record) VALUES (?, ?) RETURNING id";

constexpr std::string_view delete_outbox_sql =
  "DELETE FROM vigil_outbox WHERE id = ?";

constexpr std::string_view group_columns =
  "SELECT id, project_id, hash, title, culprit, first_seen, last_seen,"
  " times_seen, status FROM groups";

group_row read_group(sql_rows& rows, size_t r) {
  group_row g;
  g.id = rows.get_int64(r, 0);
  g.project_id = static_cast<uint64_t>(rows.get_int64(r, 1));
  g.hash = rows.take_text(r, 2);
  g.title = rows.take_text(r, 3);
  g.culprit = rows.take_text(r, 4);
  g.first_seen = rows.get_double(r, 5);
  g.last_seen = rows.get_double(r, 6);
  g.times_seen = rows.get_int64(r, 7);
  g.status = rows.take_text(r, 8);
  return g;
}

} // namespace

std::string event_node_id(uint64_t project_id, const std::string& event_id) {
  char prefix[24];
  auto end = std::to_chars(prefix, prefix + sizeof(prefix) - 1, project_id).ptr;
  *end++ = ':';
  return md5_hex({std::string_view{prefix, static_cast<size_t>(end - prefix)},
                  event_id});
}

std::string effective_db_url(std::string_view db_url,
                             std::string_view data_dir) {
  if (!db_url.empty())
    return std::string{db_url};
  std::string dir{data_dir.empty() ? std::string_view{"."} : data_dir};
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  return "sqlite://" + dir + (dir == "/" ? "" : "/") + "vigil.db";
}

sql_options make_sql_options(std::string_view sqlite_synchronous) {
  sql_options opts;
  opts.sqlite_synchronous_full = sqlite_synchronous == "full";
  return opts;
}

event_store::event_store(std::unique_ptr<sql_connection> db)
  : db_(std::move(db)), nodes_(*db_) {}

caf::expected<std::unique_ptr<event_store>>
event_store::open(const std::string& db_url, const sql_options& opts) {
  auto db = sql_connection::open(db_url, opts);
  if (!db)
    return std::move(db.error());
  if (auto err = migrate(**db))
    return err;
  return std::make_unique<event_store>(std::move(*db));
}

caf::error event_store::migrate(sql_connection& db) {
  // Up to date (every start but the first): no write lock taken, so that
  // read-only connections open without waiting for the writer.
  if (auto v = db.query("SELECT max(version) FROM vigil_schema_version");
      v && !v->empty() && v->get_int64(0, 0) == event_store_schema_version)
    return {};
  sql_transaction tx{db};
  if (auto err = tx.start())
    return err;
  // Nodes starting together must not race on CREATE TABLE: SQLite's BEGIN
  // IMMEDIATE already serializes them, PostgreSQL takes a lock for it.
  if (db.dialect() == sql_dialect::postgresql) {
    auto locked = db.query("SELECT pg_advisory_xact_lock(7418120001)");
    if (!locked)
      return std::move(locked.error());
  }
  if (auto err = db.exec_script(version_table_sql))
    return err;
  auto rows = db.query("SELECT max(version) FROM vigil_schema_version");
  if (!rows)
    return std::move(rows.error());
  int64_t current = rows->empty() ? 0 : rows->get_int64(0, 0);
  if (current > event_store_schema_version)
    return caf::make_error(errc::unsupported,
                           "the database " + db.display_url()
                             + " has schema version "
                             + std::to_string(current)
                             + ", newer than this build knows ("
                             + std::to_string(event_store_schema_version)
                             + "): upgrade vigil");
  // Each migration and its version row, in order.
  using script = std::string (*)(sql_dialect);
  constexpr std::pair<int64_t, script> migrations[] = {
    {1, schema_v1}, {2, schema_v2}, {3, schema_v3}, {4, schema_v4},
    {5, schema_v5}, {6, schema_v6}};
  for (auto [version, make] : migrations) {
    if (current >= version)
      continue;
    if (auto err = db.exec_script(make(db.dialect())))
      return err;
    auto n = db.exec("INSERT INTO vigil_schema_version (version, applied_at)"
                     " VALUES (?, ?)",
                     {version, now_unix_seconds()});
    if (!n)
      return std::move(n.error());
  }
  return tx.commit();
}

caf::expected<std::vector<group_outcome>>
event_store::store_batch(const std::vector<stored_event>& events,
                         outbox_write* outbox,
                         std::vector<group_count>* deferred) {
  std::vector<group_outcome> out(events.size());
  if (outbox != nullptr)
    outbox->written = 0;
  if (deferred != nullptr)
    deferred->clear();
  if (events.empty() && (outbox == nullptr || outbox->settled.empty()))
    return out;
  // One upsert per group, not per event: bursts of one issue are the
  // common case, and each upsert rewrites the group's row.
  struct group_work {
    const stored_event* first = nullptr; // first event counted, or nullptr
    int64_t count = 0;
    double first_seen = 0;
    double last_seen = 0;
    std::vector<size_t> members; // indexes into events
  };
  std::map<std::pair<uint64_t, std::string_view>, group_work> groups;
  // Handed to `deferred` only once the batch is committed.
  std::vector<group_count> counts;
  sql_transaction tx{*db_};
  if (auto err = tx.start())
    return err;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& ev = events[i];
    auto id = event_node_id(ev.project_id, ev.event_id);
    auto inserted = ev.encoded.empty()
                      ? nodes_.insert_if_absent(id, ev.json)
                      : nodes_.insert_encoded_if_absent(id, ev.encoded);
    if (!inserted)
      return std::move(inserted.error());
    out[i].duplicate = !*inserted;
    // Transactions are stored, and that is all: no issue, no count.
    if (ev.transaction)
      continue;
    auto& g = groups[{ev.project_id, ev.grouping_hash}];
    g.members.push_back(i);
    // A retry of a stored event (its node exists) counts nothing.
    if (!*inserted)
      continue;
    if (g.first == nullptr) {
      g.first = &ev;
      g.first_seen = ev.timestamp;
      g.last_seen = ev.timestamp;
    }
    ++g.count;
    g.first_seen = std::min(g.first_seen, ev.timestamp);
    g.last_seen = std::max(g.last_seen, ev.timestamp);
  }
  auto upsert = upsert_group_sql(db_->dialect());
  for (auto& [key, g] : groups) {
    auto project = static_cast<int64_t>(key.first);
    std::string hash{key.second};
    int64_t group_id = 0;
    // The event that created the group (NULL for groups created before
    // schema version 2: then no retry is new).
    std::string first_event;
    caf::expected<sql_rows> rows{sql_rows{}};
    if (g.count > 0 && deferred != nullptr) {
      // Existing groups (the common case) cost one read, and their count
      // goes to the buffer; only a missing one is inserted.
      rows = db_->query(find_group_sql, {project, hash});
      bool defer = rows && !rows->empty();
      if (rows && rows->empty()) {
        rows = db_->query(insert_group_sql,
                          {project, hash, g.first->title, g.first->culprit,
                           g.first_seen, g.last_seen, g.count,
                           g.first->event_id});
        if (rows && rows->empty()) {
          // Created meanwhile by another node's batch: count in it.
          rows = db_->query(find_group_sql, {project, hash});
          defer = true;
        }
      }
      if (rows && !rows->empty() && defer)
        counts.push_back({rows->get_int64(0, 0), g.count, g.last_seen});
    } else if (g.count > 0) {
      rows = db_->query(upsert, {project, hash, g.first->title,
                                 g.first->culprit, g.first_seen, g.last_seen,
                                 g.count, g.first->event_id});
    } else {
      rows = db_->query(find_group_sql, {project, hash});
      if (rows && rows->empty()) {
        // Only retries, and their nodes exist without a group (written by
        // other means): create the group from the first of them.
        const auto& ev = events[g.members.front()];
        rows = db_->query(upsert, {project, hash, ev.title, ev.culprit,
                                   ev.timestamp, ev.timestamp, int64_t{1},
                                   ev.event_id});
      }
    }
    if (!rows)
      return std::move(rows.error());
    if (rows->empty())
      return caf::make_error(errc::command_failed,
                             "group upsert returned no row");
    group_id = rows->get_int64(0, 0);
    if (!rows->is_null(0, 1))
      first_event = rows->take_text(0, 1);
    // A new event (not a retry) of a resolved group reopens it.
    bool regressed = false;
    if (g.count > 0 && !rows->is_null(0, 2)
        && rows->take_text(0, 2) == "resolved") {
      auto n = db_->exec(reopen_group_sql, {group_id});
      if (!n)
        return std::move(n.error());
      regressed = *n == 1;
    }
    bool flagged = false;
    for (auto i : g.members) {
      out[i].group_id = group_id;
      // The first new event of the batch is the one that regressed it.
      if (regressed && !out[i].duplicate) {
        out[i].is_regression = true;
        regressed = false;
      }
      // One event per batch is new: a duplicate in the batch is a retry.
      if (!flagged && !first_event.empty()
          && events[i].event_id == first_event) {
        out[i].is_new = true;
        flagged = true;
      }
    }
  }
  if (outbox != nullptr) {
    for (auto id : outbox->settled)
      if (auto n = db_->exec(delete_outbox_sql, {id}); !n)
        return std::move(n.error());
    if (outbox->record) {
      auto record = outbox->record(out);
      if (!record.empty()) {
        auto rows = db_->query(insert_outbox_sql,
                               {now_unix_seconds(), sql_blob{std::move(record)}});
        if (!rows)
          return std::move(rows.error());
        if (rows->empty())
          return caf::make_error(errc::command_failed,
                                 "outbox insert returned no row");
        outbox->written = rows->get_int64(0, 0);
      }
    }
  }
  if (auto err = tx.commit()) {
    if (outbox != nullptr)
      outbox->written = 0;
    return err;
  }
  if (deferred != nullptr)
    *deferred = std::move(counts);
  return out;
}

caf::expected<std::vector<outbox_row>>
event_store::outbox_rows(int64_t after_id, int64_t until_id, size_t limit) {
  auto rows = db_->query("SELECT id, created_at, record FROM vigil_outbox"
                         " WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                         {after_id, until_id, static_cast<int64_t>(limit)});
  if (!rows)
    return std::move(rows.error());
  std::vector<outbox_row> out;
  out.reserve(rows->size());
  for (size_t r = 0; r < rows->size(); ++r)
    out.push_back(outbox_row{rows->get_int64(r, 0), rows->get_double(r, 1),
                             rows->take_text(r, 2)});
  return out;
}

caf::expected<int64_t> event_store::outbox_max_id() {
  auto rows = db_->query("SELECT coalesce(max(id), 0) FROM vigil_outbox");
  if (!rows)
    return std::move(rows.error());
  return rows->empty() ? int64_t{0} : rows->get_int64(0, 0);
}

caf::error event_store::delete_outbox(const std::vector<int64_t>& ids) {
  if (ids.empty())
    return {};
  sql_transaction tx{*db_};
  if (auto err = tx.start())
    return err;
  for (auto id : ids)
    if (auto n = db_->exec(delete_outbox_sql, {id}); !n)
      return std::move(n.error());
  return tx.commit();
}

caf::expected<std::optional<std::string>>
event_store::get_event(uint64_t project_id, const std::string& event_id) {
  return nodes_.get(event_node_id(project_id, event_id));
}

caf::expected<std::vector<group_row>>
event_store::list_groups(uint64_t project_id, size_t limit) {
  auto rows = db_->query(std::string{group_columns}
                           + " WHERE project_id = ?"
                             " ORDER BY last_seen DESC, id DESC LIMIT ?",
                         {static_cast<int64_t>(project_id),
                          static_cast<int64_t>(limit)});
  if (!rows)
    return std::move(rows.error());
  std::vector<group_row> out;
  out.reserve(rows->size());
  for (size_t r = 0; r < rows->size(); ++r)
    out.push_back(read_group(*rows, r));
  return out;
}

caf::expected<std::vector<int64_t>>
event_store::environment_ids(uint64_t organization_id,
                             const std::vector<std::string>& names) {
  std::vector<int64_t> out;
  out.reserve(names.size());
  auto org = static_cast<int64_t>(organization_id);
  for (const auto& name : names) {
    auto key = std::make_pair(organization_id, name);
    if (auto it = environments_.find(key); it != environments_.end()) {
      out.push_back(it->second);
      continue;
    }
    // Insert-if-absent then read: nodes creating one together agree.
    auto n = db_->exec("INSERT INTO environments (organization_id, name,"
                       " date_added) VALUES (?, ?, ?)"
                       " ON CONFLICT (organization_id, name) DO NOTHING",
                       {org, name, now_unix_seconds()});
    if (!n)
      return std::move(n.error());
    auto id = find_environment(organization_id, name);
    if (!id)
      return std::move(id.error());
    if (!*id)
      return caf::make_error(errc::command_failed,
                             "environment insert left no row");
    // Few per organization; the bound only guards against a flood of names.
    if (environments_.size() >= 10000)
      environments_.clear();
    environments_.emplace(std::move(key), **id);
    out.push_back(**id);
  }
  return out;
}

caf::expected<std::optional<int64_t>>
event_store::find_environment(uint64_t organization_id,
                              const std::string& name) {
  auto rows = db_->query("SELECT id FROM environments"
                         " WHERE organization_id = ? AND name = ?",
                         {static_cast<int64_t>(organization_id), name});
  if (!rows)
    return std::move(rows.error());
  if (rows->empty())
    return std::optional<int64_t>{};
  return std::optional<int64_t>{rows->get_int64(0, 0)};
}

caf::expected<std::optional<group_row>>
event_store::get_group(int64_t group_id) {
  auto rows = db_->query(std::string{group_columns} + " WHERE id = ?",
                         {group_id});
  if (!rows)
    return std::move(rows.error());
  if (rows->empty())
    return std::optional<group_row>{};
  return std::optional<group_row>{read_group(*rows, 0)};
}

} // namespace vigil
