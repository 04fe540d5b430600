#pragma once

// Mail replies in: `POST /api/hooks/mailgun/inbound/`, Mailgun's inbound
// route webhook (a form with token, timestamp, signature, recipient or To,
// sender or From, body-plain). A reply to a notification's signed
// address (actors/reply_address) from a member of the issue's
// organization becomes a note on the issue. Beyond Sentry, which checks
// only the signature: a timestamp older than five minutes and a token
// seen before (on any node: table `webhook_tokens`) are refused, so a
// captured webhook cannot be played again. Refusals are 403 (signature,
// age, replay, sender) or 400 (form, address) with a JSON `detail`.

#include "adapters/http.hpp"
#include "config/organizations.hpp"
#include "web/read_sources.hpp"

namespace vigil {

/// Answers one webhook request.
http_response mailgun_inbound(read_sources& src, const quota_catalog& catalog,
                              const http_request& req,
                              const mailgun_webhook_secrets& opts);

} // namespace vigil
