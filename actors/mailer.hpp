#pragma once

// The mailer actor: sends mail through the configured backend (mail.*),
// trying again with backoff when the server is unreachable or answers 4xx,
// and answering each request once the mail is sent or given up. Detached:
// the backend's sends block for at most mail.timeout.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>

#include <caf/expected.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/backends/mailer.hpp"
#include "actors/status.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

class config;

/// What the mailer is made of.
struct mailer_options {
  mail_options mail;
  /// Tries of one mail when its failure is transient.
  int attempts = 4;
  /// The pause before the second try, doubling after.
  std::chrono::milliseconds backoff{1000};
};

/// mail.* from the configuration (make_mail_backend checks them).
caf::expected<mailer_options> make_mailer_options(const config& cfg);

/// The mailer.
using mailer_actor = caf::typed_actor<
  /// Sends a mail: true once sent (or, with the dummy backend, dropped);
  /// an error (errc::unavailable with the reason) when it was given up.
  /// Callers bound the request by at least attempts × mail.timeout plus
  /// the backoffs.
  caf::replies_to<mail_message>::with<bool>,
  /// Internal: tries waiting mail `id` again.
  caf::reacts_to<retry_atom, uint64_t>,
  /// Status: sent, failed, retried, waiting.
  caf::replies_to<status_atom>::with<actor_status>>;

/// A mail waiting for its next try.
struct waiting_mail {
  mail_message mail;
  int tries = 0;
  caf::typed_response_promise<bool> promise;
};

/// State of the mailer actor.
struct mailer_state {
  static inline const char* name = "mailer.actor";
  mailer_options opts;
  std::shared_ptr<mail_backend> backend;
  status_counters counters;
  uint64_t sent = 0;
  uint64_t failed = 0;
  uint64_t retried = 0;
  uint64_t next_id = 0;
  std::map<uint64_t, waiting_mail> waiting;
};

/// Spawn with `spawn<caf::detached>(mailer_service, opts, backend)`, the
/// backend made by make_mail_backend(opts.mail).
mailer_actor::behavior_type
mailer_service(mailer_actor::stateful_pointer<mailer_state> self,
               mailer_options opts, std::shared_ptr<mail_backend> backend);

} // namespace vigil
