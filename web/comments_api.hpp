#pragma once

// An issue's notes, as Sentry's group notes endpoint:
// `GET /api/0/issues/{id}/comments/` lists them newest first in the
// activity shape `{id, type: "note", data: {text}, dateCreated, user:
// {email, name}}`; `POST` with `{"text": ...}` adds one (written by
// "api", the token's user).

#include <string_view>

#include "adapters/http.hpp"
#include "config/organizations.hpp"
#include "web/read_sources.hpp"

namespace vigil {

/// Answers GET or POST on issue `id`'s comments.
http_response issue_comments(read_sources& src, const quota_catalog& catalog,
                             std::string_view id, const http_request& req);

} // namespace vigil
