#include "web/comments_api.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "messages/errors.hpp"
#include "web/api_json.hpp"
#include "web/issues_api.hpp"

namespace vigil {

namespace {

/// Longest note text accepted (Sentry's NoteSerializer has no limit; one
/// keeps a pasted log from filling the table).
constexpr size_t max_note_bytes = 64 * 1024;

nlohmann::json note_json(const group_note& n,
                         const organization_config* org) {
  std::string name;
  if (org)
    if (const auto* m = find_member(*org, n.author))
      name = m->name;
  return {{"id", std::to_string(n.id)},
          {"type", "note"},
          {"data", {{"text", n.text}}},
          {"dateCreated",
           sentry_time(static_cast<int64_t>(std::llround(n.date_added * 1e6)))},
          {"user", {{"email", n.author}, {"name", name}}}};
}

} // namespace

http_response issue_comments(read_sources& src, const quota_catalog& catalog,
                             std::string_view id, const http_request& req) {
  auto issue = find_issue(src, catalog, id);
  if (issue.error)
    return std::move(*issue.error);
  const auto* org = catalog.organization(issue.project->organization);
  auto store = src.store();
  if (!store)
    return unavailable("event store unavailable", store.error());
  if (req.method() == "POST") {
    auto doc = nlohmann::json::parse(req.message.body(), nullptr, false);
    if (!doc.is_object() || !doc.contains("text") || !doc["text"].is_string()
        || doc["text"].get_ref<const std::string&>().empty())
      return json_error(400, "the body must be {\"text\": \"...\"} with a "
                             "non-empty text");
    auto& text = doc["text"].get_ref<const std::string&>();
    if (text.size() > max_note_bytes)
      return json_error(400, "text: longer than "
                               + std::to_string(max_note_bytes) + " bytes");
    group_note note;
    note.group_id = issue.group->id;
    note.author = "api";
    note.text = text;
    note.date_added = src.now();
    auto added = (*store)->add_note(std::move(note));
    if (!added) {
      src.store_failed();
      return unavailable("adding the note failed", added.error());
    }
    auto resp = json_answer(note_json(*added, org));
    resp.status = 201;
    return resp;
  }
  auto notes = (*store)->list_notes(issue.group->id);
  if (!notes) {
    src.store_failed();
    return unavailable("reading the notes failed", notes.error());
  }
  auto out = nlohmann::json::array();
  for (const auto& n : *notes)
    out.push_back(note_json(n, org));
  return json_answer(out);
}

} // namespace vigil
