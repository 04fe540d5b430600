// The mailer actor: a mail sent at once, a temporary failure tried again
// with backoff until sent, a permanent one or too many tries given up,
// malformed mail refused; its status counts them. A scripted backend
// stands in for SMTP (the SMTP backend has its own test against aiosmtpd).

#include <catch2/catch.hpp>

#include <deque>
#include <mutex>

#include <caf/all.hpp>

#include "actors/mailer.hpp"
#include "messages/errors.hpp"
#include "node/actor_system.hpp"

using namespace vigil;

namespace {

/// Answers each send with the next scripted outcome (sent once the
/// script runs out), and counts the sends.
class scripted_backend final : public mail_backend {
public:
  explicit scripted_backend(std::deque<smtp_outcome> script)
    : script_(std::move(script)) {}

  std::string describe() const override { return "scripted"; }

  smtp_outcome send(const mail_message&) override {
    std::lock_guard<std::mutex> guard{mtx_};
    ++sends_;
    if (script_.empty())
      return {true, false, ""};
    auto out = script_.front();
    script_.pop_front();
    return out;
  }

  int sends() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return sends_;
  }

private:
  mutable std::mutex mtx_;
  std::deque<smtp_outcome> script_;
  int sends_ = 0;
};

smtp_outcome temporary() { return {false, true, "451 try later"}; }
smtp_outcome permanent() { return {false, false, "550 no such user"}; }

mail_message a_mail() {
  mail_message m;
  m.to = {"ann@example.com"};
  m.subject = "BACKEND-1 - KeyError";
  m.text = "one event\n";
  return m;
}

struct fixture {
  actor_system_config_ext cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  mailer_actor start(std::shared_ptr<mail_backend> backend, int attempts) {
    mailer_options o;
    o.attempts = attempts;
    o.backoff = std::chrono::milliseconds{5};
    return sys.spawn<caf::detached>(mailer_service, o, std::move(backend));
  }

  /// The mailer's answer: true, or the error's text.
  std::string send(const mailer_actor& m, mail_message mail) {
    std::string out = "no answer";
    self->request(m, std::chrono::seconds{10}, std::move(mail))
      .receive([&](bool sent) { out = sent ? "sent" : "false"; },
               [&](const caf::error& err) { out = error_text(err); });
    return out;
  }

  std::map<std::string, std::string> status(const mailer_actor& m) {
    std::map<std::string, std::string> out;
    self->request(m, std::chrono::seconds{5}, status_atom_v)
      .receive([&](const actor_status& s) { out = s.extra; },
               [&](const caf::error&) {});
    return out;
  }
};

} // namespace

TEST_CASE("mailer: sent at once, and after temporary failures",
          "[mailer]") {
  fixture f;
  auto backend = std::make_shared<scripted_backend>(
    std::deque<smtp_outcome>{temporary(), temporary()});
  auto m = f.start(backend, 4);
  CHECK(f.send(m, a_mail()) == "sent");
  CHECK(backend->sends() == 3);
  CHECK(f.send(m, a_mail()) == "sent");
  CHECK(backend->sends() == 4);
  auto st = f.status(m);
  CHECK(st["sent"] == "2");
  CHECK(st["retried"] == "2");
  CHECK(st["failed"] == "0");
  CHECK(st["waiting"] == "0");
  caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
}

TEST_CASE("mailer: given up after its tries, or at once when permanent",
          "[mailer]") {
  fixture f;
  auto backend = std::make_shared<scripted_backend>(std::deque<smtp_outcome>{
    temporary(), temporary(), temporary(), permanent()});
  auto m = f.start(backend, 3);
  CHECK_THAT(f.send(m, a_mail()), Catch::Contains("451 try later"));
  CHECK(backend->sends() == 3);
  CHECK_THAT(f.send(m, a_mail()), Catch::Contains("550 no such user"));
  CHECK(backend->sends() == 4);
  auto st = f.status(m);
  CHECK(st["failed"] == "2");
  CHECK(st["sent"] == "0");
  caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
}

TEST_CASE("mailer: malformed mail is refused without a send", "[mailer]") {
  fixture f;
  auto backend = std::make_shared<scripted_backend>(std::deque<smtp_outcome>{});
  auto m = f.start(backend, 3);
  auto bad = a_mail();
  bad.to = {"not an address"};
  CHECK(f.send(m, bad) != "sent");
  auto none = a_mail();
  none.to.clear();
  CHECK(f.send(m, none) != "sent");
  CHECK(backend->sends() == 0);
  CHECK(f.status(m)["failed"] == "2");
  caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
}
