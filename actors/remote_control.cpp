#include "actors/remote_control.hpp"

#include <algorithm>
#include <csignal>
#include <unistd.h>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/celery_events.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

value ok(std::string text) {
  value_map m;
  m.emplace_back("ok", std::move(text));
  return value{std::move(m)};
}

value stats_of(const remote_control_state& st) {
  const auto& o = st.opts;
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::steady_clock::now() - st.started)
                  .count();
  value_map pool;
  pool.emplace_back("implementation", "vigil");
  pool.emplace_back("max-concurrency", static_cast<int64_t>(o.concurrency));
  pool.emplace_back("processes", value_array{});
  value_map m;
  m.emplace_back("total", value_map{});
  m.emplace_back("pid", static_cast<int64_t>(::getpid()));
  m.emplace_back("clock", std::to_string(st.clock));
  m.emplace_back("uptime", static_cast<int64_t>(uptime));
  m.emplace_back("pool", std::move(pool));
  m.emplace_back("broker", st.transport ? st.transport->broker_info()
                                         : value{value_map{}});
  m.emplace_back("prefetch_count", static_cast<int64_t>(o.prefetch));
  if (o.events)
    // vigil's own: task events dropped because their queue was full.
    m.emplace_back("events_dropped", static_cast<int64_t>(o.events->dropped()));
  if (o.time_limits) {
    // vigil's own: tasks stopped at their soft / given up at their hard
    // time limit since the node started.
    value_map tl;
    tl.emplace_back("soft", static_cast<int64_t>(o.time_limits->soft_exceeded.load()));
    tl.emplace_back("hard", static_cast<int64_t>(o.time_limits->hard_exceeded.load()));
    m.emplace_back("time_limits_exceeded", std::move(tl));
  }
  if (o.rate_limits)
    // vigil's own: deliveries held back for their rate-limit token.
    m.emplace_back("rate_limited",
                   static_cast<int64_t>(o.rate_limits->delayed.load()));
  return value{std::move(m)};
}

value active_queues_of(const remote_control_options& o) {
  value_array out;
  for (auto& q : o.consumed ? o.consumed->list() : o.queues) {
    value_map ex;
    ex.emplace_back("name", q);
    ex.emplace_back("type", "direct");
    ex.emplace_back("durable", true);
    ex.emplace_back("auto_delete", false);
    value_map m;
    m.emplace_back("name", q);
    m.emplace_back("exchange", std::move(ex));
    m.emplace_back("routing_key", q);
    m.emplace_back("durable", true);
    m.emplace_back("exclusive", false);
    m.emplace_back("auto_delete", false);
    m.emplace_back("no_ack", false);
    out.emplace_back(std::move(m));
  }
  return value{std::move(out)};
}

// Python's repr of KeyError(name), as kombu's Node.dispatch replies when
// no handler has the name.
value unknown_command(std::string_view name) {
  std::string text = "KeyError('";
  for (char c : name)
    if (c == '\'' || c == '\\')
      (text += '\\') += c;
    else if (static_cast<unsigned char>(c) >= 0x20)
      text += c;
  text += "')";
  value_map m;
  m.emplace_back("error", std::move(text));
  return value{std::move(m)};
}

// Celery's nok(): {"error": text}.
value nok(std::string text) {
  value_map m;
  m.emplace_back("error", std::move(text));
  return value{std::move(m)};
}

bool registered(const remote_control_state& st, const value& args) {
  auto* name = args.find("task_name");
  if (name == nullptr || !name->is_text())
    return false;
  for (auto& t : st.opts.tasks)
    if (t == name->as_text())
      return true;
  return false;
}

// `conf`: only settings that carry no secret (never a URL).
value conf_of(const remote_control_state& st) {
  value_map m;
  m.emplace_back("worker_concurrency",
                 static_cast<int64_t>(st.opts.concurrency));
  m.emplace_back("worker_prefetch_multiplier", 1);
  value_array queues;
  for (auto& q : st.opts.consumed ? st.opts.consumed->list() : st.opts.queues)
    queues.emplace_back(q);
  m.emplace_back("task_queues", std::move(queues));
  m.emplace_back("worker_hostname", st.opts.hostname);
  return value{std::move(m)};
}

value revoked_ids(remote_control_state& st) {
  value_array out;
  if (st.opts.revoked)
    for (auto& id : st.opts.revoked->ids())
      out.emplace_back(id);
  return value{std::move(out)};
}

// The signal of revoke(terminate=True) as Celery's platforms.signum reads
// it: a number, or an upper-case name with or without its SIG prefix;
// anything else is the error Celery replies. True: SIGKILL.
caf::expected<bool> is_kill_signal(const value* sig, std::string* error) {
  if (sig == nullptr || sig->is_nil())
    return false; // Celery's default: TERM
  if (sig->is_number())
    return sig->as_double() == SIGKILL;
  auto bad = [&](std::string text) {
    *error = std::move(text);
    return caf::expected<bool>{caf::make_error(caf::sec::invalid_argument)};
  };
  if (!sig->is_text())
    return bad("TypeError('signal name must be uppercase string.')");
  auto name = sig->as_text();
  bool upper = std::any_of(name.begin(), name.end(),
                           [](char c) { return c >= 'A' && c <= 'Z'; })
               && std::none_of(name.begin(), name.end(),
                               [](char c) { return c >= 'a' && c <= 'z'; });
  if (!upper)
    return bad("TypeError('signal name must be uppercase string.')");
  if (name.rfind("SIG", 0) != 0)
    name = "SIG" + name;
  static const char* const known[] = {
    "SIGHUP",  "SIGINT",  "SIGQUIT", "SIGILL",    "SIGTRAP", "SIGABRT",
    "SIGIOT",  "SIGBUS",  "SIGFPE",  "SIGKILL",   "SIGUSR1", "SIGSEGV",
    "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",   "SIGCHLD", "SIGCONT",
    "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU",   "SIGURG",  "SIGXCPU",
    "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",  "SIGPOLL",
    "SIGPWR",  "SIGSYS"};
  if (std::none_of(std::begin(known), std::end(known),
                   [&](const char* k) { return name == k; })) {
    std::string clean;
    for (char c : name)
      if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20)
        clean += c;
    return bad("AttributeError(\"module 'signal' has no attribute '" + clean
               + "'\")");
  }
  return name == "SIGKILL";
}

// Celery's `revoke`: task_id is one id or a list. With terminate=True a
// running one is stopped: SIGKILL abandons its thread at once if it runs
// on one of its own (a task with a hard time limit; REVOKED is stored),
// any other signal (TERM by default) sets its cancellation flag: vigil
// tasks are threads, so TERM means "cancel at the next check".
value revoke(remote_control_state& st, const value& args) {
  std::vector<std::string> ids;
  if (auto* t = args.find("task_id"); t != nullptr) {
    if (t->is_text())
      ids.push_back(t->as_text());
    else if (t->is_array())
      for (auto& x : t->as_array())
        if (x.is_text())
          ids.push_back(x.as_text());
  }
  std::string joined;
  for (auto& id : ids) {
    if (st.opts.revoked)
      st.opts.revoked->add(id);
    joined += (joined.empty() ? "" : ", ") + id;
  }
  if (!ids.empty())
    spdlog::info("remote control: revoked {}", joined);
  if (auto* t = args.find("terminate"); t != nullptr && t->is_bool()
                                         && t->as_bool()) {
    // As in Celery: the ids are revoked before the signal is read.
    std::string bad_signal;
    auto kill = is_kill_signal(args.find("signal"), &bad_signal);
    if (!kill)
      return nok(std::move(bad_signal));
    std::vector<std::string> hit;
    std::vector<std::string> flag_only;
    if (st.opts.running)
      hit = st.opts.running->terminate(ids, *kill, &flag_only);
    if (hit.empty())
      return ok("terminate: tasks unknown");
    std::string names;
    for (auto& id : hit)
      names += (names.empty() ? "" : ", ") + id;
    spdlog::info("remote control: {} running {}",
                 *kill ? "killing" : "cancelling", names);
    for (auto& id : flag_only)
      spdlog::warn("remote control: task {} runs on its worker's thread (no "
                   "hard time limit): SIGKILL only sets its cancellation "
                   "flag", id);
    return ok("terminate: " + names);
  }
  return ok("tasks " + joined + " flagged as revoked");
}

// Celery's `active`: Request.info of each running task.
value active_of(remote_control_state& st) {
  value_array out;
  if (!st.opts.running)
    return value{std::move(out)};
  for (auto& e : st.opts.running->list())
    out.emplace_back(request_info(e, st.opts.hostname));
  return value{std::move(out)};
}

// Celery's `reserved` (Request.info of each task received and not started)
// and `scheduled` ({eta, priority, request} of each held for its time),
// from what the node's consumers answer now.
value held_of(remote_control_state& st, bool scheduled) {
  value_array out;
  if (!st.opts.running)
    return value{std::move(out)};
  // Bounded well below a Celery client's usual 1 s inspect timeout: a
  // consumer stuck in a broker call is left out rather than the reply lost.
  auto bound = std::min(st.opts.io_timeout, std::chrono::milliseconds{500});
  auto snap = st.system != nullptr
                ? st.opts.running->held.gather(*st.system, bound)
                : st.opts.running->held.take();
  if (!scheduled) {
    for (auto& t : snap.reserved)
      out.emplace_back(request_info(t, st.opts.hostname));
    return value{std::move(out)};
  }
  for (auto& t : snap.scheduled) {
    value_map m;
    m.emplace_back("eta", format_iso8601(t.eta_us));
    m.emplace_back("priority", static_cast<int64_t>(t.priority));
    m.emplace_back("request", request_info(t, st.opts.hostname));
    out.emplace_back(std::move(m));
  }
  return value{std::move(out)};
}

// Celery's `rate_limit`: the rate string checked first, then the task.
value set_rate_limit(remote_control_state& st, const value& args) {
  auto* given = args.find("rate_limit");
  auto rate = parse_celery_rate(given != nullptr ? *given : value{});
  if (!rate)
    return nok("Invalid rate limit string: " + error_text(rate.error()));
  if (!registered(st, args))
    return nok("unknown task");
  auto task = args.find("task_name")->as_text();
  if (st.opts.rate_limits)
    st.opts.rate_limits->set(task, *rate);
  if (*rate <= 0) {
    spdlog::info("remote control: rate limits disabled for tasks of type {}",
                 task);
    return ok("rate limit disabled successfully");
  }
  spdlog::info("remote control: new rate limit for tasks of type {}: {}/s",
               task, *rate);
  return ok("new rate limit set successfully");
}

// Celery's `add_consumer` / `cancel_consumer`: the consumers pick the
// change up before their next fetch (Celery's call_soon). The exchange,
// type and routing key of `add_consumer` are accepted and not used: vigil
// consumes a queue by its name (declared on AMQP as Celery declares it).
value change_consumer(remote_control_state& st, bool add, const value& args) {
  auto* q = args.find("queue");
  if (q == nullptr || !q->is_text() || q->as_text().empty())
    return nok("queue name missing");
  const auto& queue = q->as_text();
  if (st.opts.consumed) {
    bool changed = add ? st.opts.consumed->add(queue)
                       : st.opts.consumed->remove(queue);
    if (changed)
      spdlog::info("remote control: {} queue {}",
                   add ? "consuming from" : "no longer consuming from", queue);
  }
  return ok(add ? "add consumer " + queue
                : "no longer consuming from " + queue);
}

void handle(remote_control_state& st, caf::expected<pidbox_request> req) {
  if (!req) {
    spdlog::warn("remote control: dropped a malformed request: {}",
                 error_text(req.error()));
    return;
  }
  if (!pidbox_addressed_to(*req, st.opts.hostname))
    return;
  st.clock = std::max(st.clock, req->clock) + 1;
  bool shutdown = false;
  auto reply = answer_pidbox(st, *req, &shutdown);
  ++st.answered;
  if (reply && !req->reply_exchange.empty())
    if (auto err = st.transport->reply(*req, st.opts.hostname, *reply,
                                       ++st.clock))
      spdlog::warn("remote control: reply to {} not sent: {}", req->method,
                   error_text(err));
  if (shutdown) {
    spdlog::info("remote control: shutdown requested: draining");
    // The node waits for SIGTERM to drain; asking it the same way keeps
    // one shutdown path.
    ::kill(::getpid(), SIGTERM);
  }
}

// Publishes one worker event; a failure is logged (events are best effort,
// as Celery's are) and the connection replaced on the next poll.
void send_worker_event(remote_control_state& st, std::string_view type) {
  if (!st.transport || !st.connected)
    return;
  auto freq = std::chrono::duration<double>(st.opts.heartbeat).count();
  auto err = st.transport->publish_event(
    type, worker_event_fields(freq, 0, static_cast<int64_t>(st.processed)),
    st.opts.hostname, ++st.clock,
    static_cast<double>(now_unix_us()) / 1e6);
  if (err) {
    spdlog::warn("events: {} not sent: {}", type, error_text(err));
    st.transport->reset();
    st.connected = false;
  }
}

// Publishes the task events queued since the last poll, in one batch.
void publish_task_events(remote_control_state& st) {
  if (!st.opts.events || !st.transport || !st.connected)
    return;
  auto batch = st.opts.events->take();
  if (batch.empty())
    return;
  for (auto& ev : batch)
    if (ev.type == "task-succeeded" || ev.type == "task-failed")
      ++st.processed;
  auto n = batch.size();
  if (auto err = st.transport->publish_events(batch, st.opts.hostname,
                                              st.clock)) {
    spdlog::warn("events: {} task event(s) not sent: {}", n, error_text(err));
    st.transport->reset();
    st.connected = false;
    return;
  }
  st.events_sent += n;
}

void heartbeat(remote_control_state& st) {
  if (!st.opts.send_events || !st.connected)
    return;
  auto now = std::chrono::steady_clock::now();
  if (!st.online_sent) {
    send_worker_event(st, "worker-online");
    st.online_sent = st.connected;
    st.next_heartbeat = now;
  }
  if (now >= st.next_heartbeat) {
    send_worker_event(st, "worker-heartbeat");
    st.next_heartbeat = now + st.opts.heartbeat;
  }
}

void poll(remote_control_actor::stateful_pointer<remote_control_state> self) {
  auto& st = self->state;
  if (!st.connected) {
    if (auto err = st.transport->connect()) {
      spdlog::warn("remote control: {}: {}; retrying in 1 s",
                   st.transport->describe(), error_text(err));
      st.transport->reset();
      self->delayed_send(self, std::chrono::seconds{1}, poll_atom_v);
      return;
    }
    st.connected = true;
  }
  // With task events on, a shorter wait keeps their batches small and
  // their queue far from its bound.
  auto wait = st.opts.events && st.opts.events->enabled()
                ? std::min(st.opts.wait, std::chrono::milliseconds{20})
                : st.opts.wait;
  auto err = st.transport->poll(wait,
                                [&](caf::expected<pidbox_request> req) {
                                  handle(st, std::move(req));
                                });
  if (err) {
    spdlog::warn("remote control: pidbox lost: {}", error_text(err));
    st.transport->reset();
    st.connected = false;
  }
  publish_task_events(st);
  heartbeat(st);
  self->send(self, poll_atom_v);
}

} // namespace

std::optional<value> answer_pidbox(remote_control_state& st,
                                   const pidbox_request& req,
                                   bool* shutdown_requested) {
  const auto& m = req.method;
  if (m == "ping")
    return ok("pong");
  if (m == "clock") {
    value_map r;
    r.emplace_back("clock", st.clock);
    return value{std::move(r)};
  }
  if (m == "hello") {
    value_map r;
    r.emplace_back("revoked", revoked_ids(st));
    r.emplace_back("clock", st.clock);
    return value{std::move(r)};
  }
  if (m == "stats")
    return stats_of(st);
  if (m == "registered") {
    value_array names;
    for (auto& t : st.opts.tasks)
      names.emplace_back(t);
    return value{std::move(names)};
  }
  if (m == "revoked")
    return revoked_ids(st);
  if (m == "revoke")
    return revoke(st, req.arguments);
  if (m == "active")
    return active_of(st);
  if (m == "reserved" || m == "scheduled")
    return held_of(st, m == "scheduled");
  if (m == "active_queues")
    return active_queues_of(st.opts);
  if (m == "conf")
    return conf_of(st);
  if (m == "time_limit") {
    // Celery's shape; the workers read the limits (task_time_limits):
    // unknown tasks are refused as Celery refuses them.
    if (!registered(st, req.arguments))
      return nok("unknown task");
    auto num = [&](const char* k) {
      auto* v = req.arguments.find(k);
      return v != nullptr && v->is_number() ? v->as_double() : 0.0;
    };
    auto task = req.arguments.find("task_name")->as_text();
    if (st.opts.time_limits)
      st.opts.time_limits->set(task, {num("soft"), num("hard")});
    spdlog::info("remote control: new time limits for tasks of type {}: "
                 "soft={} hard={}", task, num("soft"), num("hard"));
    return ok("time limits set successfully");
  }
  if (m == "rate_limit")
    return set_rate_limit(st, req.arguments);
  if (m == "add_consumer" || m == "cancel_consumer")
    return change_consumer(st, m == "add_consumer", req.arguments);
  if (m == "query_task" || m == "dump_tasks")
    return value{value_map{}};
  if (m == "enable_events" || m == "disable_events") {
    bool on = m == "enable_events";
    bool changed = st.opts.events && st.opts.events->enable(on);
    // Celery sends heartbeats whatever the task events; vigil only with
    // events on, so enabling them starts the heartbeats too.
    if (on)
      st.opts.send_events = true;
    if (on)
      return ok(changed ? "task events enabled" : "task events already enabled");
    return ok(changed ? "task events disabled" : "task events already disabled");
  }
  if (m == "report")
    return ok("vigil worker " + st.opts.hostname);
  if (m == "shutdown") {
    *shutdown_requested = true;
    return std::nullopt;
  }
  return unknown_command(m);
}

remote_control_actor::behavior_type
remote_control(remote_control_actor::stateful_pointer<remote_control_state> self,
               remote_control_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.system = &self->system();
  st.started = std::chrono::steady_clock::now();
  auto transport = make_pidbox_transport(st.opts.broker_url,
                                         st.opts.hostname, st.opts.io_timeout);
  if (!transport) {
    spdlog::error("remote control: not started: {}",
                  error_text(transport.error()));
    self->quit();
    return {
      [=](poll_atom) {},
    };
  }
  st.transport = std::move(*transport);
  spdlog::info("remote control: {} on {}", st.opts.hostname,
               st.transport->describe());
  // The node stops this actor with an exit message: say goodbye first
  // (the state is gone by the time attached functors run).
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    // The node drained its workers first: their last task events go out
    // before the goodbye.
    publish_task_events(st);
    if (st.opts.send_events && st.online_sent)
      send_worker_event(st, "worker-offline");
    self->quit(msg.reason);
  });
  self->send(self, poll_atom_v);
  return {
    [=](poll_atom) { poll(self); },
  };
}

} // namespace vigil
