// The event store's notes on issues (table `group_notes`) and the webhook
// tokens already taken (table `webhook_tokens`), schema migration 5.

#include "actors/backends/event_store.hpp"
#include "messages/errors.hpp"

namespace vigil {

caf::expected<group_note> event_store::add_note(group_note note) {
  auto rows = db_->query("INSERT INTO group_notes (group_id, author, text,"
                         " date_added) VALUES (?, ?, ?, ?) RETURNING id",
                         {note.group_id, note.author, note.text,
                          note.date_added});
  if (!rows)
    return std::move(rows.error());
  if (rows->empty())
    return caf::make_error(errc::command_failed,
                           "adding a note returned no id");
  note.id = rows->get_int64(0, 0);
  return note;
}

caf::expected<std::vector<group_note>>
event_store::list_notes(int64_t group_id) {
  auto rows = db_->query("SELECT id, group_id, author, text, date_added"
                         " FROM group_notes WHERE group_id = ?"
                         " ORDER BY id DESC LIMIT 1000",
                         {group_id});
  if (!rows)
    return std::move(rows.error());
  std::vector<group_note> out;
  out.reserve(rows->size());
  for (size_t r = 0; r < rows->size(); ++r) {
    group_note n;
    n.id = rows->get_int64(r, 0);
    n.group_id = rows->get_int64(r, 1);
    n.author = rows->take_text(r, 2);
    n.text = rows->take_text(r, 3);
    n.date_added = rows->get_double(r, 4);
    out.push_back(std::move(n));
  }
  return out;
}

caf::expected<bool> event_store::claim_webhook_token(const std::string& token,
                                                     double now,
                                                     double keep) {
  sql_transaction tx{*db_};
  if (auto err = tx.start())
    return err;
  auto old = db_->exec("DELETE FROM webhook_tokens WHERE seen_at < ?",
                       {now - keep});
  if (!old)
    return std::move(old.error());
  auto n = db_->exec("INSERT INTO webhook_tokens (token, seen_at)"
                     " VALUES (?, ?) ON CONFLICT (token) DO NOTHING",
                     {token, now});
  if (!n)
    return std::move(n.error());
  if (auto err = tx.commit())
    return err;
  return *n == 1;
}

} // namespace vigil
