#include "web/mailgun_webhook.hpp"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/reply_address.hpp"
#include "adapters/hmac.hpp"
#include "messages/email_reply.hpp"
#include "messages/errors.hpp"
#include "messages/form_data.hpp"
#include "messages/secret_compare.hpp"
#include "messages/text_excerpt.hpp"
#include "web/api_json.hpp"

namespace vigil {

namespace {

/// A refusal, logged at info: the webhook's sender is a mail provider, so
/// the reason matters to the operator more than to the client.
http_response refuse(unsigned status, const std::string& detail) {
  spdlog::info("mailgun webhook: refused ({}): {}", status, detail);
  return json_error(status, detail);
}

std::string field(const form_fields& form, const char* a,
                  const char* b = nullptr) {
  if (auto it = form.find(a); it != form.end() && !it->second.empty())
    return it->second;
  if (b != nullptr)
    if (auto it = form.find(b); it != form.end())
      return it->second;
  return {};
}

} // namespace

http_response mailgun_inbound(read_sources& src, const quota_catalog& catalog,
                              const http_request& req,
                              const mailgun_webhook_secrets& opts) {
  if (req.method() != "POST")
    return json_error(405, "use POST: this is Mailgun's inbound webhook");
  if (opts.api_key.empty())
    return json_error(503, "inbound replies are off: set "
                           "mail.mailgun-api-key");
  auto form = parse_form(req.header("Content-Type"), req.message.body());
  if (!form)
    return refuse(400, error_text(form.error()));
  auto token = field(*form, "token");
  auto timestamp = field(*form, "timestamp");
  auto signature = field(*form, "signature");
  if (token.empty() || timestamp.empty() || signature.empty())
    return refuse(400, "token, timestamp and signature are required "
                       "(Mailgun signs every webhook with them)");
  if (token.size() > 128)
    return refuse(400, "token: longer than 128 characters");
  auto expected = hex_encode(hmac_sha256(opts.api_key, timestamp + token));
  if (!secrets_equal(signature, expected))
    return refuse(403, "invalid signature (HMAC-SHA256 of timestamp and "
                       "token under mail.mailgun-api-key)");
  double ts = 0;
  auto res = std::from_chars(timestamp.data(),
                             timestamp.data() + timestamp.size(), ts);
  auto now = src.now();
  if (res.ec != std::errc{} || res.ptr != timestamp.data() + timestamp.size()
      || !std::isfinite(ts) || std::fabs(now - ts) > opts.max_age)
    return refuse(403, "stale timestamp: a webhook must arrive within "
                       + std::to_string(static_cast<int>(opts.max_age))
                       + " s of being signed");
  auto store = src.store();
  if (!store)
    return unavailable("event store unavailable", store.error());
  auto fresh = (*store)->claim_webhook_token(token, now, 2 * opts.max_age);
  if (!fresh) {
    src.store_failed();
    return unavailable("recording the webhook's token failed", fresh.error());
  }
  if (!*fresh)
    return refuse(403, "token already used: a webhook is taken once");
  auto recipient = field(*form, "recipient", "To");
  auto target = read_reply_address(recipient, opts.secret_key);
  if (!target)
    return refuse(400, "not a reply address of this installation: "
                         + excerpt(bare_address(recipient), 100));
  auto group = (*store)->get_group(target->group_id);
  if (!group) {
    src.store_failed();
    return unavailable("reading the issue failed", group.error());
  }
  const auto* project = *group ? catalog.project((*group)->project_id)
                               : nullptr;
  const auto* org = project ? catalog.organization(project->organization) : nullptr;
  if (!org || (target->org_id != 0
               && static_cast<uint64_t>(target->org_id) != org->id))
    return refuse(400, "the reply address names no issue of this "
                       "installation");
  auto sender = bare_address(field(*form, "sender", "From"));
  const auto* member = find_member(*org, sender);
  if (!member)
    return refuse(403, "the sender " + excerpt(sender, 100)
                         + " is not a member of organization " + org->slug);
  auto text = visible_reply(field(*form, "body-plain"));
  if (text.empty())
    return json_answer({{"detail", "an empty reply: nothing added"}});
  group_note note;
  note.group_id = target->group_id;
  note.author = member->email;
  note.text = std::move(text);
  note.date_added = now;
  auto added = (*store)->add_note(std::move(note));
  if (!added) {
    src.store_failed();
    return unavailable("adding the note failed", added.error());
  }
  spdlog::info("mailgun webhook: note {} on issue {} from {}", added->id,
               added->group_id, added->author);
  auto resp = json_answer({{"id", std::to_string(added->id)},
                           {"issue", std::to_string(added->group_id)}});
  resp.status = 201;
  return resp;
}

} // namespace vigil
