// The event store's attachment rows (table `event_attachments`, schema
// migration 4): what an envelope's attachment items were, their bytes being
// in the filestore.

#include "actors/backends/event_store.hpp"

namespace vigil {

namespace {

constexpr std::string_view attachment_columns =
  "SELECT id, project_id, event_id, name, content_type, type, size, sha1,"
  " file_key, date_added FROM event_attachments";

attachment_row read_attachment(sql_rows& rows, size_t r) {
  attachment_row a;
  a.id = rows.get_int64(r, 0);
  a.project_id = static_cast<uint64_t>(rows.get_int64(r, 1));
  a.event_id = rows.take_text(r, 2);
  a.name = rows.take_text(r, 3);
  a.content_type = rows.take_text(r, 4);
  a.type = rows.take_text(r, 5);
  a.size = rows.get_int64(r, 6);
  a.sha1 = rows.take_text(r, 7);
  a.file_key = rows.take_text(r, 8);
  a.date_added = rows.get_double(r, 9);
  return a;
}

caf::expected<std::vector<attachment_row>>
read_attachments(caf::expected<sql_rows> rows) {
  if (!rows)
    return std::move(rows.error());
  std::vector<attachment_row> out;
  out.reserve(rows->size());
  for (size_t r = 0; r < rows->size(); ++r)
    out.push_back(read_attachment(*rows, r));
  return out;
}

} // namespace

caf::error
event_store::store_attachments(const std::vector<attachment_row>& rows) {
  if (rows.empty())
    return {};
  sql_transaction tx{*db_};
  if (auto err = tx.start())
    return err;
  for (const auto& a : rows) {
    auto n = db_->exec(
      "INSERT INTO event_attachments (project_id, event_id, name,"
      " content_type, type, size, sha1, file_key, date_added)"
      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
      " ON CONFLICT (project_id, event_id, file_key) DO NOTHING",
      {static_cast<int64_t>(a.project_id), a.event_id, a.name,
       a.content_type, a.type, a.size, a.sha1, a.file_key, a.date_added});
    if (!n)
      return std::move(n.error());
  }
  return tx.commit();
}

caf::expected<std::vector<attachment_row>>
event_store::list_attachments(uint64_t project_id,
                              const std::string& event_id) {
  return read_attachments(
    db_->query(std::string{attachment_columns}
                 + " WHERE project_id = ? AND event_id = ? ORDER BY id",
               {static_cast<int64_t>(project_id), event_id}));
}

caf::expected<std::optional<attachment_row>>
event_store::get_attachment(uint64_t project_id, const std::string& event_id,
                            int64_t id) {
  auto rows = read_attachments(
    db_->query(std::string{attachment_columns}
                 + " WHERE project_id = ? AND event_id = ? AND id = ?",
               {static_cast<int64_t>(project_id), event_id, id}));
  if (!rows)
    return std::move(rows.error());
  if (rows->empty())
    return std::optional<attachment_row>{};
  return std::optional<attachment_row>{std::move(rows->front())};
}

caf::expected<std::vector<attachment_row>>
event_store::attachments_before(double cutoff, size_t limit) {
  return read_attachments(
    db_->query(std::string{attachment_columns}
                 + " WHERE date_added < ? ORDER BY date_added, id LIMIT ?",
               {cutoff, static_cast<int64_t>(limit)}));
}

caf::error event_store::delete_attachments(const std::vector<int64_t>& ids) {
  if (ids.empty())
    return {};
  sql_transaction tx{*db_};
  if (auto err = tx.start())
    return err;
  for (auto id : ids)
    if (auto n = db_->exec("DELETE FROM event_attachments WHERE id = ?", {id});
        !n)
      return std::move(n.error());
  return tx.commit();
}

} // namespace vigil
