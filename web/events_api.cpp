#include "web/events_api.hpp"

#include <charconv>

#include <nlohmann/json.hpp>

#include "messages/errors.hpp"
#include "messages/sentry_auth.hpp"
#include "messages/sentry_event.hpp"
#include "messages/text_excerpt.hpp"
#include "web/api_json.hpp"

namespace vigil {

namespace {

/// What an event endpoint reads with: the event id in its stored form and
/// the store, or the answer to give instead (400, 503).
struct event_request {
  std::string id;
  event_store* store = nullptr;
  std::optional<http_response> refused;
};

event_request open_event(read_sources& src, std::string_view event_id) {
  event_request out;
  auto id = normalize_event_id(event_id);
  if (!id) {
    out.refused = json_error(400, "not an event id: "
                                    + excerpt(event_id, 100));
    return out;
  }
  out.id = std::move(*id);
  auto store = src.store();
  if (!store) {
    out.refused = unavailable("event store unavailable", store.error());
    return out;
  }
  out.store = *store;
  return out;
}

} // namespace

http_response event_details(read_sources& src, uint64_t project_id,
                            std::string_view event_id) {
  auto ev = open_event(src, event_id);
  if (ev.refused)
    return std::move(*ev.refused);
  const auto* id = &ev.id;
  auto doc = ev.store->get_event(project_id, *id);
  if (!doc) {
    src.store_failed();
    return unavailable("reading the event failed", doc.error());
  }
  if (!*doc)
    return json_error(404, "no event " + *id + " in this project");
  http_response resp;
  resp.body = std::move(**doc);
  return resp;
}

namespace {

/// An attachment as Sentry's EventAttachmentSerializer writes it.
nlohmann::json attachment_json(const attachment_row& a) {
  return {{"id", std::to_string(a.id)},
          {"event_id", a.event_id},
          {"type", a.type},
          {"name", a.name},
          {"mimetype", a.content_type},
          {"size", a.size},
          {"sha1", a.sha1},
          {"dateCreated",
           sentry_time(static_cast<int64_t>(a.date_added * 1e6))},
          {"headers", {{"Content-Type", a.content_type}}}};
}

/// `filename="..."` for Content-Disposition: quotes, backslashes and
/// control characters replaced, so a name cannot break the header.
std::string disposition_name(const std::string& name) {
  std::string out;
  for (unsigned char c : name)
    out += (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
             ? '_'
             : static_cast<char>(c);
  return out;
}

} // namespace

http_response event_attachments(read_sources& src, uint64_t project_id,
                                std::string_view event_id) {
  auto ev = open_event(src, event_id);
  if (ev.refused)
    return std::move(*ev.refused);
  auto rows = ev.store->list_attachments(project_id, ev.id);
  if (!rows) {
    src.store_failed();
    return unavailable("reading the attachments failed", rows.error());
  }
  auto doc = nlohmann::json::array();
  for (const auto& a : *rows)
    doc.push_back(attachment_json(a));
  return json_answer(doc);
}

http_response event_attachment(read_sources& src, uint64_t project_id,
                               std::string_view event_id,
                               std::string_view attachment_id,
                               std::string_view query) {
  int64_t aid = 0;
  auto [end, ec] = std::from_chars(attachment_id.data(),
                                   attachment_id.data() + attachment_id.size(),
                                   aid);
  if (ec != std::errc{} || end != attachment_id.data() + attachment_id.size()
      || aid <= 0)
    return json_error(400, "not an attachment id: "
                             + excerpt(attachment_id, 100));
  auto ev = open_event(src, event_id);
  if (ev.refused)
    return std::move(*ev.refused);
  const auto* id = &ev.id;
  auto row = ev.store->get_attachment(project_id, *id, aid);
  if (!row) {
    src.store_failed();
    return unavailable("reading the attachment failed", row.error());
  }
  if (!*row)
    return json_error(404, "no attachment " + std::to_string(aid)
                             + " of event " + *id);
  auto download = query_param(query, "download");
  if (!download || *download == "0" || *download == "false")
    return json_answer(attachment_json(**row));
  auto* files = src.files();
  if (files == nullptr)
    return json_error(503, "this node has no filestore");
  auto bytes = files->get((*row)->file_key);
  if (!bytes) {
    if (bytes.error() == errc::not_found)
      return json_error(404, "the attachment's file is gone from the "
                             "filestore");
    return unavailable("reading the attachment's file failed",
                       bytes.error());
  }
  http_response resp;
  resp.body = std::move(*bytes);
  resp.content_type = (*row)->content_type;
  resp.headers.emplace_back("Content-Disposition",
                            "attachment; filename=\""
                              + disposition_name((*row)->name) + "\"");
  return resp;
}

} // namespace vigil
