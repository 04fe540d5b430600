#pragma once

// What the read API's endpoints read from, owned by the read API's thread:
// the event store (its own connection), the write buffer's store (counts not
// yet flushed, read with `get` as Sentry's times_seen_with_pending does) and
// the TSDB actor (asked with a timeout). Each is opened on first use and
// dropped after a failure, so the next request reconnects.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "actors/backends/buffer.hpp"
#include "actors/backends/event_store.hpp"
#include "actors/backends/filestore.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/tsdb.hpp"
#include "adapters/http.hpp"
#include "messages/tsdb_keys.hpp"

namespace vigil {

/// What the Mailgun webhook checks with; never logged.
struct mailgun_webhook_secrets {
  /// mail.mailgun-api-key; empty: the webhook answers 503.
  std::string api_key;
  /// system.secret-key, which signed the reply addresses.
  std::string secret_key;
  /// How old a webhook's timestamp may be, seconds (either way).
  double max_age = 300;
};

/// What the read API needs.
struct read_api_options {
  /// api.token; empty = every request gets 401.
  std::string token;
  /// Opens a connection to the event store (db.url).
  std::function<caf::expected<std::unique_ptr<event_store>>()> open_store;
  /// auth.ip-rate-limit and auth.user-rate-limit, per minute; 0 = none.
  int64_t ip_rate_limit = 0;
  int64_t user_rate_limit = 0;
  /// The rate limiter the two limits count in (needed when either is set).
  std::optional<rate_limiter_actor> limiter;
  /// The write buffer's store (buffer.backend, buffer.options), read for
  /// the counts not yet flushed; none: SQL's counts alone. The memory store
  /// shares rows by url within the process, so this reads the node's.
  std::optional<buffer_backend_options> buffer_store;
  /// The time-series store (the stats endpoints, group stats and user
  /// counts), when the node runs one.
  std::optional<tsdb_actor> tsdb;
  /// tsdb.rollups, finest first: the resolutions the stats endpoints take.
  std::vector<tsdb_rollup> rollups = default_tsdb_rollups();
  /// Bound on each TSDB request.
  std::chrono::milliseconds tsdb_timeout{2000};
  /// Where attachments' bytes are (filestore.backend); none: attachment
  /// downloads answer 503.
  std::shared_ptr<filestore_backend> filestore;
  /// mail.mailgun-api-key and system.secret-key: the inbound reply
  /// webhook's checks (web/mailgun_webhook).
  mailgun_webhook_secrets mailgun;
  /// system.url-prefix: how clients reach this node ("http://host:port"),
  /// the start of a generated chart's URL.
  std::string url_prefix;
  /// Unix seconds now; the system clock when empty (tests set it).
  std::function<double()> clock;
};

/// The read API's sources (see the file comment). Not thread-safe: the
/// read API's thread alone uses it.
class read_sources {
public:
  read_sources(caf::actor_system& sys, const read_api_options& opts);
  ~read_sources();

  read_sources(const read_sources&) = delete;
  read_sources& operator=(const read_sources&) = delete;

  /// The event store, opened on first use.
  caf::expected<event_store*> store();
  /// Drops the store's connection after a failed read.
  void store_failed();

  /// Counters `column` of `model`'s rows with filter `id` = each of `ids`
  /// that the buffer holds, not yet flushed (0 where none). Without a
  /// buffer store, or when it fails (logged), zeros: the SQL counts stand.
  std::vector<int64_t> pending(const std::string& model,
                               const std::string& column,
                               const std::vector<int64_t>& ids);

  /// Asks the TSDB, bounded by tsdb_timeout; an error when there is none
  /// or it does not answer in time.
  caf::expected<tsdb_answer> ask_tsdb(const tsdb_query& q);

  /// The filestore; null when the node has none.
  filestore_backend* files() const { return opts_.filestore.get(); }

  /// tsdb.rollups, finest first.
  const std::vector<tsdb_rollup>& rollups() const {
    return opts_.rollups;
  }

  /// Unix seconds now (with its fraction).
  double now() const;

  /// Logs a failed read of a source at warning level, at most once a
  /// minute per source (a TSDB that is down would log every request).
  void warn(const std::string& source, const std::string& text);

private:
  caf::actor_system& sys_;
  const read_api_options& opts_;
  std::unique_ptr<event_store> store_;
  std::unique_ptr<buffer_backend> buffer_;
  std::map<std::string, std::chrono::steady_clock::time_point> warned_;
};

/// 503 with Retry-After: `what` failed with `err` (the store, say).
http_response unavailable(const std::string& what, const caf::error& err);

/// A request's `environment` argument for organization `org_id`.
struct environment_arg {
  /// The environment's id; nullopt without the argument (all
  /// environments).
  std::optional<int64_t> id;
  /// Set when the request must be answered with it instead: 404 when the
  /// organization has no such environment (as Sentry's), 503 when the
  /// store fails.
  std::optional<http_response> error;
};

/// Reads `environment` from `query` and looks it up in the store.
environment_arg read_environment_arg(read_sources& src, uint64_t org_id,
                                     std::string_view query);

} // namespace vigil
