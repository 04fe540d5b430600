#include "actors/mailer.hpp"
#include "actors/metrics.hpp"

#include <spdlog/spdlog.h>

#include "config/config.hpp"
#include "messages/errors.hpp"

namespace vigil {

caf::expected<mailer_options> make_mailer_options(const config& cfg) {
  mailer_options out;
  auto& m = out.mail;
  m.backend = cfg.get_string("mail.backend");
  m.subject_prefix = cfg.get_string("mail.subject-prefix");
  auto& s = m.smtp;
  s.host = cfg.get_string("mail.host");
  s.port = static_cast<int>(cfg.get_int("mail.port"));
  s.username = cfg.get_string("mail.username");
  s.password = cfg.get_string("mail.password");
  s.use_tls = cfg.get_bool("mail.use-tls");
  s.use_ssl = cfg.get_bool("mail.use-ssl");
  s.ca_file = cfg.get_string("mail.tls-ca-file");
  s.timeout = std::chrono::milliseconds{
    static_cast<int64_t>(cfg.get_double("mail.timeout") * 1000)};
  s.from = cfg.get_string("mail.from");
  return out;
}

namespace {

using self_ptr = mailer_actor::stateful_pointer<mailer_state>;

/// One try of waiting mail `id`: answered when sent or given up, else
/// scheduled again after the backoff.
void attempt(self_ptr self, uint64_t id) {
  auto& st = self->state;
  auto it = st.waiting.find(id);
  if (it == st.waiting.end())
    return;
  auto& w = it->second;
  ++w.tries;
  auto out = st.backend->send(w.mail);
  if (out.sent) {
    ++st.sent;
    ++st.counters.processed;
    metrics::incr("email.sent", 1, {{"backend", "mailer"}});
    w.promise.deliver(true);
    st.waiting.erase(it);
    return;
  }
  if (out.transient && w.tries < st.opts.attempts) {
    ++st.retried;
    auto pause = st.opts.backoff * (1 << (w.tries - 1));
    spdlog::warn("mailer: try {} of {} failed, next in {} ms: {}", w.tries,
                 st.opts.attempts, pause.count(), out.message);
    self->delayed_send(self, pause, retry_atom_v, id);
    return;
  }
  ++st.failed;
  st.counters.fail(out.message);
  spdlog::error("mailer: mail to {} recipient(s) not sent after {} tries: {}",
                w.mail.to.size(), w.tries, out.message);
  w.promise.deliver(caf::make_error(errc::unavailable, out.message));
  st.waiting.erase(it);
}

} // namespace

mailer_actor::behavior_type
mailer_service(self_ptr self, mailer_options opts,
               std::shared_ptr<mail_backend> backend) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.backend = std::move(backend);
  spdlog::info("mailer: backend {}", st.backend->describe());
  return {
    [self](mail_message& mail) -> caf::result<bool> {
      auto& st = self->state;
      if (auto problem = mail_problem(mail); !problem.empty()) {
        ++st.failed;
        st.counters.fail(problem);
        return caf::make_error(errc::malformed, problem);
      }
      auto id = ++st.next_id;
      auto promise = self->make_response_promise<bool>();
      st.waiting.emplace(id, waiting_mail{std::move(mail), 0, promise});
      attempt(self, id);
      return promise;
    },
    [self](retry_atom, uint64_t id) { attempt(self, id); },
    [self](status_atom) {
      auto& st = self->state;
      auto out = make_status(self, st.counters);
      out.extra["backend"] = st.backend->describe();
      out.extra["sent"] = std::to_string(st.sent);
      out.extra["failed"] = std::to_string(st.failed);
      out.extra["retried"] = std::to_string(st.retried);
      out.extra["waiting"] = std::to_string(st.waiting.size());
      return out;
    },
  };
}

} // namespace vigil
