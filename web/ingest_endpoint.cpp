#include "web/ingest_endpoint.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/backends/nodestore.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/sentry_auth.hpp"
#include "messages/sentry_envelope.hpp"
#include "messages/sentry_event.hpp"
#include "web/content_encoding.hpp"

namespace vigil {

namespace {

double now_seconds() {
  return static_cast<double>(now_unix_us()) / 1e6;
}

/// 400 for malformed input, 413 for input over a limit.
http_response input_error(const caf::error& err, std::string_view what) {
  auto status = err == errc::too_large ? 413u : 400u;
  return json_error(status, std::string{what} + ": " + error_text(err));
}

/// The client's address: the first X-Forwarded-For entry when trusted and
/// an IP address (as Relay reads it), else the socket's peer.
std::string client_address(const http_request& req, bool trust_forwarded) {
  if (trust_forwarded) {
    auto xff = req.header("X-Forwarded-For");
    auto first = xff.substr(0, xff.find(','));
    auto b = first.find_first_not_of(" \t");
    if (b != std::string_view::npos) {
      auto e = first.find_last_not_of(" \t");
      auto ip = first.substr(b, e - b + 1);
      if (is_ip_address(ip))
        return std::string{ip};
    }
  }
  return req.remote_ip;
}

} // namespace

http_response to_http_response(const ingest_result& res) {
  http_response out;
  switch (res.status) {
    case ingest_result::outcome::accepted:
      // Runs on the single ingest thread for every event: one append,
      // no JSON document built.
      out.body = "{\"id\":";
      append_json_string(out.body, res.event_id);
      out.body += '}';
      break;
    case ingest_result::outcome::rate_limited: {
      out = json_error(429, "rate limited: "
                              + (res.limits.empty()
                                   ? std::string{"quota exceeded"}
                                   : res.limits.front().reason_code));
      out.headers.emplace_back("Retry-After",
                               std::to_string(std::max<int64_t>(1,
                                                                res.retry_after)));
      break;
    }
    case ingest_result::outcome::unavailable:
      out = json_error(503, res.detail);
      out.headers.emplace_back("Retry-After", "5");
      break;
  }
  if (!res.limits.empty())
    out.headers.emplace_back("X-Sentry-Rate-Limits",
                             format_rate_limits(res.limits));
  return out;
}

ingest_endpoint::ingest_endpoint(const quota_catalog& catalog,
                                 std::shared_ptr<ingest_queue> queue,
                                 ingest_limits limits,
                                 bool trust_forwarded_for)
  : queue_(std::move(queue)),
    limits_(limits),
    trust_forwarded_for_(trust_forwarded_for) {
  for (auto& p : catalog.projects) {
    // One copy of a project's filters, shared by its keys.
    std::shared_ptr<const inbound_filters> filters;
    for (auto& k : p.keys) {
      key_entry e;
      e.scoping.organization_id = p.organization;
      e.scoping.project_id = p.id;
      e.scoping.key_id = k.id;
      e.enabled = k.enabled;
      e.quotas = catalog.quotas_for(p.id, k.id);
      if (!p.filters.empty()) {
        if (!filters)
          filters = std::make_shared<const inbound_filters>(p.filters);
        e.filters = filters;
      }
      keys_.emplace(k.public_key, std::move(e));
    }
  }
}

caf::expected<normalized_event>
ingest_endpoint::normalize(std::string_view payload, uint64_t project_id,
                           double received, normalize_options opts,
                           const key_entry* key, ingest_item& item) {
  const inbound_filters* filters = key != nullptr ? key->filters.get()
                                                  : nullptr;
  opts.filter_facts = filters != nullptr;
  auto ev = normalize_event(payload, project_id, received, opts);
  if (!ev || filters == nullptr)
    return ev;
  if (auto which = matching_filter(*filters, ev->facts, opts.client_ip)) {
    ++filtered_;
    item.filtered = std::string{*which};
    item.limited = false;
  }
  return ev;
}

ingest_endpoint_figures ingest_endpoint::figures() const {
  ingest_endpoint_figures f;
  f.requests = requests_.load();
  f.accepted = answers_->accepted.load();
  f.rate_limited = answers_->rate_limited.load();
  f.rejected_bad_request = bad_request_.load();
  f.rejected_auth = auth_failed_.load();
  f.queue_full = queue_full_.load();
  f.unknown_items_dropped = unknown_items_.load();
  f.filtered = filtered_.load();
  f.attachments_too_large = attachments_too_large_.load();
  return f;
}

std::optional<std::string>
ingest_endpoint::request_key(const http_request& req,
                             const http_responder& respond) {
  auto header = req.header("X-Sentry-Auth");
  if (header.empty()) {
    // Some clients send the same fields in Authorization.
    auto authz = req.header("Authorization");
    if (authz.substr(0, 7) == "Sentry ")
      header = authz;
  }
  if (!header.empty()) {
    auto auth = parse_sentry_auth(header);
    if (!auth) {
      ++auth_failed_;
      respond(json_error(401, "bad X-Sentry-Auth header: "
                                + error_text(auth.error())));
      return std::nullopt;
    }
    return std::move(auth->public_key);
  }
  if (auto key = query_param(req.query(), "sentry_key"))
    return *key;
  return std::string{};
}

const ingest_endpoint::key_entry*
ingest_endpoint::authorize(std::string_view public_key, uint64_t project_id,
                           const http_responder& respond) {
  auto it = keys_.find(public_key);
  if (it == keys_.end()) {
    ++auth_failed_;
    respond(json_error(401, "unknown DSN key"));
    return nullptr;
  }
  if (it->second.scoping.project_id != project_id) {
    ++auth_failed_;
    respond(json_error(401, "the DSN key does not belong to project "
                              + std::to_string(project_id)));
    return nullptr;
  }
  if (!it->second.enabled) {
    ++auth_failed_;
    respond(json_error(403, "the DSN key is disabled"));
    return nullptr;
  }
  return &it->second;
}

void ingest_endpoint::handle(http_request&& req, uint64_t project_id,
                             bool envelope, http_responder respond) {
  ++requests_;
  auto key_text = request_key(req, respond);
  if (!key_text)
    return;
  const key_entry* key = nullptr;
  if (!key_text->empty()) {
    key = authorize(*key_text, project_id, respond);
    if (key == nullptr)
      return;
  } else if (!envelope) {
    ++auth_failed_;
    respond(json_error(401, "missing authentication: send an X-Sentry-Auth "
                            "header or ?sentry_key="));
    return;
  }
  auto enc = parse_content_encoding(req.header("Content-Encoding"));
  if (!enc) {
    ++bad_request_;
    respond(json_error(400, error_text(enc.error())));
    return;
  }
  auto limit = envelope ? limits_.max_envelope_bytes : limits_.max_event_bytes;
  std::string decoded;
  std::string_view body = req.body();
  if (*enc != content_encoding::identity) {
    auto out = decode_body(body, *enc, limit);
    if (!out) {
      ++bad_request_;
      respond(input_error(out.error(), "cannot decode the request body"));
      return;
    }
    decoded = std::move(*out);
    body = decoded;
  } else if (body.size() > limit) {
    ++bad_request_;
    respond(json_error(413, std::string{envelope ? "envelope" : "event"}
                              + " exceeds "
                              + (envelope ? "web.max-envelope-size ("
                                          : "web.max-event-size (")
                              + std::to_string(limit) + " bytes)"));
    return;
  }
  ingest_job job;
  auto client_ip = client_address(req, trust_forwarded_for_);
  if (envelope) {
    if (!envelope_items(body, project_id, client_ip, key, key != nullptr,
                        job, respond))
      return;
    if (job.items.empty()) {
      // Only internal or unknown items: nothing to count or keep.
      ++answers_->accepted;
      respond(to_http_response(ingest_result{
        ingest_result::outcome::accepted, job.event_id, 0, {}, {}}));
      return;
    }
  } else {
    normalize_options nopts;
    nopts.client_ip = client_ip;
    ingest_item item;
    auto ev = normalize(body, project_id, now_seconds(), nopts, key, item);
    if (!ev) {
      ++bad_request_;
      respond(input_error(ev.error(), "invalid event"));
      return;
    }
    item.category = ev->transaction ? "transaction" : "error";
    job.event_id = ev->event_id;
    if (item.filtered.empty()) {
      item.encoded = nodestore::encode_main(ev->json);
      item.event = std::move(*ev);
    }
    job.items.push_back(std::move(item));
  }
  job.scoping = key->scoping;
  job.quotas = key->quotas;
  submit(std::move(job), std::move(respond));
}

bool ingest_endpoint::envelope_items(std::string_view body,
                                     uint64_t project_id,
                                     std::string_view client_ip,
                                     const key_entry*& key, bool have_key,
                                     ingest_job& job,
                                     const http_responder& respond) {
  auto env = parse_envelope(body, limits_.max_envelope_items);
  if (!env) {
    ++bad_request_;
    respond(input_error(env.error(), "invalid envelope"));
    return false;
  }
  if (!have_key) {
    if (!env->dsn) {
      ++auth_failed_;
      respond(json_error(401, "missing authentication: send an "
                              "X-Sentry-Auth header, ?sentry_key= or a dsn "
                              "in the envelope header"));
      return false;
    }
    auto dsn = parse_dsn(*env->dsn);
    if (!dsn) {
      ++auth_failed_;
      respond(json_error(401, "bad dsn in the envelope header: "
                                + error_text(dsn.error())));
      return false;
    }
    key = authorize(dsn->public_key, project_id, respond);
    if (key == nullptr)
      return false;
  }
  // The answer's id is the one the read API knows: the header's, as
  // normalization writes ids (a dashed UUID loses its dashes), unless an
  // event item carries its own.
  std::optional<std::string> header_id;
  if (env->event_id)
    header_id = normalize_event_id(*env->event_id);
  if (header_id)
    job.event_id = *header_id;
  auto received = now_seconds();
  bool have_event = false;
  bool has_attachment = false;
  for (auto& item : env->items) {
    ingest_item out;
    if (item.type == "client_report") {
      // Relay counts client reports in no category and limits them by no
      // quota; they are only counted here.
      out.category = "client_report";
      out.limited = false;
      job.items.push_back(std::move(out));
      continue;
    }
    auto category = item_category(item.type);
    if (category.empty()) {
      ++unknown_items_;
      continue;
    }
    out.category = std::string{category};
    out.quantity = item_quantity(item);
    if (item.type == "event" || item.type == "transaction") {
      if (item.payload.size() > limits_.max_event_bytes) {
        ++bad_request_;
        respond(json_error(413, "envelope item '" + item.type
                                  + "' exceeds web.max-event-size ("
                                  + std::to_string(limits_.max_event_bytes)
                                  + " bytes)"));
        return false;
      }
      normalize_options nopts;
      if (header_id)
        nopts.event_id_hint = *header_id;
      nopts.client_ip = client_ip;
      nopts.transaction = item.type == "transaction";
      auto ev = normalize(item.payload, project_id, received, nopts, key, out);
      if (!ev) {
        ++bad_request_;
        respond(input_error(ev.error(),
                            "invalid '" + item.type + "' item"));
        return false;
      }
      // The stored id (the event's own wins over the header's) is the one
      // to answer with.
      if (!have_event) {
        have_event = true;
        job.event_id = ev->event_id;
      }
      if (out.filtered.empty()) {
        out.encoded = nodestore::encode_main(ev->json);
        out.event = std::move(*ev);
      }
    }
    if (item.type == "attachment") {
      if (item.payload.size() > limits_.max_attachment_bytes) {
        // Relay drops an attachment over its limit and keeps the rest of
        // the envelope.
        ++attachments_too_large_;
        continue;
      }
      ingest_attachment a;
      a.name = item.filename.empty() ? "Unnamed Attachment" : item.filename;
      a.content_type = item.content_type.empty() ? "application/octet-stream"
                                                 : item.content_type;
      a.type = item.attachment_type.empty() ? "event.attachment"
                                            : item.attachment_type;
      a.bytes = std::move(item.payload);
      out.attachment = std::move(a);
      has_attachment = true;
    }
    // Sessions, spans and the rest are counted in their own category and
    // not stored.
    job.items.push_back(std::move(out));
  }
  // Relay drops an event's attachments with the event a filter drops.
  std::string filtered_by;
  for (const auto& it : job.items)
    if (!it.filtered.empty())
      filtered_by = it.filtered;
  if (!filtered_by.empty())
    for (auto& it : job.items)
      if (it.attachment) {
        it.attachment.reset();
        it.filtered = filtered_by;
      }
  if (has_attachment && job.event_id.empty()) {
    // Attachments belong to an event: as Relay's require_event_id, an
    // envelope that names none gets a new id, which the answer carries.
    job.event_id = new_event_id();
  }
  return true;
}

void ingest_endpoint::submit(ingest_job&& job, http_responder respond) {
  job.done = [answers = answers_, respond](ingest_result res) {
    if (res.status == ingest_result::outcome::accepted)
      ++answers->accepted;
    else if (res.status == ingest_result::outcome::rate_limited)
      ++answers->rate_limited;
    respond(to_http_response(res));
  };
  if (!queue_->push(std::move(job))) {
    // Refused, so not moved from: answered here, not by the job.
    job.done.cancel();
    ++queue_full_;
    auto resp = json_error(503, "the ingest pipeline is saturated "
                                "(ingest.queue-size "
                                  + std::to_string(queue_->capacity())
                                  + " requests, ingest.queue-bytes "
                                  + std::to_string(queue_->byte_capacity())
                                  + " bytes); retry later");
    resp.headers.emplace_back("Retry-After", "1");
    respond(std::move(resp));
  }
}

} // namespace vigil
