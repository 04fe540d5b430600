#include "actors/task_consumer_steps.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "messages/clock.hpp"
#include "tasks/task_runner.hpp"

namespace vigil::consumer_steps {

void revoke_delivery(task_consumer_state& st, delivery d) {
  ++st.revoked;
  spdlog::info("task {} [{}] revoked: not run", d.msg.task, d.msg.id);
  if (st.opts.events && st.opts.events->enabled())
    st.opts.events->push(task_revoked_event(d.msg, false));
  auto results = st.opts.result_backend_url.empty() ? std::string{}
                                                     : st.opts.result_serializer;
  auto out = revoked_outcome(std::move(d), "revoked", results);
  if (!out.result_doc.empty())
    st.to_store.push_back(
      stored_result{out.d.msg.id, std::move(out.result_doc)});
  if (!out.canvas.chord.group_id.empty())
    st.to_chord.push_back(std::move(out.canvas.chord));
  st.to_ack.push_back(std::move(out.d.tag));
  st.held -= std::min<size_t>(st.held, 1);
}

// Over its task's rate limit, a due delivery waits for its token, held as
// an ETA message is (once: at its time it is due).
bool hold_for_rate_limit(task_consumer_state& st, delivery& d, bool suspect) {
  if (!st.opts.rate_limits || st.rate_cleared.erase(d.tag) > 0)
    return false;
  auto now = now_unix_us();
  auto wait = st.opts.rate_limits->reserve(d.msg.task, now);
  if (wait <= 0)
    return false;
  ++st.rate_limited;
  st.rate_cleared.insert(d.tag);
  if (suspect)
    st.eta_suspects.insert(d.tag);
  st.eta_held.emplace(now + wait, std::move(d));
  return true;
}

// A due delivery goes to the suspects or the ready ones, unless it was
// revoked: then REVOKED is stored (as Celery's worker does) and it is acked.
void make_due(task_consumer_state& st, delivery d, bool suspect) {
  if (st.opts.revoked && st.opts.revoked->contains(d.msg.id)) {
    revoke_delivery(st, std::move(d));
    return;
  }
  if (hold_for_rate_limit(st, d, suspect))
    return;
  if (suspect)
    st.suspects.push_back(std::move(d));
  else
    st.ready.push_back(std::move(d));
}

} // namespace vigil::consumer_steps
