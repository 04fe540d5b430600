#include "web/events_api.hpp"

#include "messages/errors.hpp"
#include "messages/sentry_event.hpp"
#include "messages/text_excerpt.hpp"

namespace vigil {

http_response event_details(read_sources& src, uint64_t project_id,
                            std::string_view event_id) {
  auto id = normalize_event_id(event_id);
  if (!id)
    return json_error(400, "not an event id: " + excerpt(event_id, 100));
  auto store = src.store();
  if (!store)
    return unavailable("event store unavailable", store.error());
  auto doc = (*store)->get_event(project_id, *id);
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

} // namespace vigil
