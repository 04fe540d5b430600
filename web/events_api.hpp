#pragma once

// The event endpoints of the read API:
// `GET /api/0/projects/{org}/{project}/events/{event_id}/`, the stored
// event JSON as ingestion kept it, and its attachments under
// `.../attachments/` (Sentry's EventAttachment serializer) and
// `.../attachments/{id}/?download=1` (the bytes).

#include <cstdint>
#include <string_view>

#include "adapters/http.hpp"
#include "web/read_sources.hpp"

namespace vigil {

/// Event `event_id` (the path segment, any of the forms SDKs write) of
/// project `project_id`.
http_response event_details(read_sources& src, uint64_t project_id,
                            std::string_view event_id);

/// The attachments of event `event_id`: a JSON list, oldest first.
http_response event_attachments(read_sources& src, uint64_t project_id,
                                std::string_view event_id);

/// One attachment: its JSON, or with `download=1` in `query` its bytes
/// (Content-Type as stored, Content-Disposition with its name).
http_response event_attachment(read_sources& src, uint64_t project_id,
                               std::string_view event_id,
                               std::string_view attachment_id,
                               std::string_view query);

} // namespace vigil
