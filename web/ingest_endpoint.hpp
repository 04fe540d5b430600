#pragma once

// The store and envelope endpoints: Sentry SDK authentication, body
// decoding, parsing and normalization on the HTTP thread, then a job for
// the ingest pipeline (actors/ingest.hpp), whose answer becomes the HTTP
// response (200, 429 with X-Sentry-Rate-Limits, 503).

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "actors/ingest_queue.hpp"
#include "adapters/http.hpp"
#include "config/organizations.hpp"

namespace vigil {

/// Size limits of the ingest endpoints (web.max-event-size, ...).
struct ingest_limits {
  /// Largest event JSON after decompression.
  size_t max_event_bytes = 1024 * 1024;
  /// Largest envelope after decompression.
  size_t max_envelope_bytes = 100 * 1024 * 1024;
  /// Most items in one envelope.
  size_t max_envelope_items = 100;
  /// Largest attachment kept (ingest.max-attachment-size).
  size_t max_attachment_bytes = 100 * 1024 * 1024;
};

/// Counters of what the endpoints saw, for status and tests.
struct ingest_endpoint_figures {
  uint64_t requests = 0;
  uint64_t accepted = 0;
  uint64_t rate_limited = 0;
  uint64_t rejected_bad_request = 0;
  uint64_t rejected_auth = 0;
  uint64_t queue_full = 0;
  uint64_t unknown_items_dropped = 0;
  /// Events an inbound filter dropped.
  uint64_t filtered = 0;
  /// Attachments over ingest.max-attachment-size, dropped.
  uint64_t attachments_too_large = 0;
};

/// Handles `POST /api/{project_id}/store/` and `/envelope/`.
class ingest_endpoint {
public:
  /// `trust_forwarded_for` (web.trust-forwarded-for): the client's address
  /// is X-Forwarded-For's first entry rather than the socket's peer.
  ingest_endpoint(const quota_catalog& catalog,
                  std::shared_ptr<ingest_queue> queue, ingest_limits limits,
                  bool trust_forwarded_for = false);

  /// Handles one request for `project_id`; `envelope` selects the format.
  void handle(http_request&& req, uint64_t project_id, bool envelope,
              http_responder respond);

  ingest_endpoint_figures figures() const;

private:
  /// A DSN key with everything a request needs, resolved at start-up.
  struct key_entry {
    quota_scoping scoping;
    bool enabled = true;
    std::vector<quota_config> quotas;
    /// The project's inbound filters; null when it has none.
    std::shared_ptr<const inbound_filters> filters;
  };

  /// Normalizes an event item and applies the key's project's inbound
  /// filters to it.
  caf::expected<normalized_event> normalize(std::string_view payload,
                                            uint64_t project_id,
                                            double received,
                                            normalize_options opts,
                                            const key_entry* key,
                                            ingest_item& item);

  /// Finds the key of `public_key` for `project_id`, or answers 401/403.
  const key_entry* authorize(std::string_view public_key, uint64_t project_id,
                             const http_responder& respond);

  /// The public key from X-Sentry-Auth or ?sentry_key=, "" if neither.
  /// Answers 401 and returns nullopt for a malformed header.
  std::optional<std::string> request_key(const http_request& req,
                                         const http_responder& respond);

  /// Builds the job's items from an envelope; answers 4xx and returns
  /// false when the envelope is bad.
  bool envelope_items(std::string_view body, uint64_t project_id,
                      std::string_view client_ip, const key_entry*& key,
                      bool have_key, ingest_job& job,
                      const http_responder& respond);

  void submit(ingest_job&& job, http_responder respond);

  /// Looks up a `std::string_view` without building a string.
  struct key_hash {
    using is_transparent = void;
    size_t operator()(std::string_view x) const {
      return std::hash<std::string_view>{}(x);
    }
  };

  std::unordered_map<std::string, key_entry, key_hash, std::equal_to<>>
    keys_;
  std::shared_ptr<ingest_queue> queue_;
  ingest_limits limits_;
  bool trust_forwarded_for_ = false;
  std::atomic<uint64_t> requests_{0};
  /// The pipeline's answers, counted by the jobs' reply callbacks: shared
  /// with them, as a job can be answered after this endpoint is gone.
  struct answer_counters {
    std::atomic<uint64_t> accepted{0};
    std::atomic<uint64_t> rate_limited{0};
  };
  std::shared_ptr<answer_counters> answers_
    = std::make_shared<answer_counters>();
  std::atomic<uint64_t> bad_request_{0};
  std::atomic<uint64_t> auth_failed_{0};
  std::atomic<uint64_t> queue_full_{0};
  std::atomic<uint64_t> unknown_items_{0};
  std::atomic<uint64_t> filtered_{0};
  std::atomic<uint64_t> attachments_too_large_{0};
};

/// Renders a pipeline answer as an HTTP response.
http_response to_http_response(const ingest_result& res);

} // namespace vigil
