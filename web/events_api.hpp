#pragma once

// The event endpoint of the read API:
// `GET /api/0/projects/{org}/{project}/events/{event_id}/`, the stored
// event JSON as ingestion kept it.

#include <cstdint>
#include <string_view>

#include "adapters/http.hpp"
#include "web/read_sources.hpp"

namespace vigil {

/// Event `event_id` (the path segment, any of the forms SDKs write) of
/// project `project_id`.
http_response event_details(read_sources& src, uint64_t project_id,
                            std::string_view event_id);

} // namespace vigil
