#include "actors/task_consumer_steps.hpp"

#include <spdlog/spdlog.h>

#include "messages/errors.hpp"
#include "messages/result_doc.hpp"
#include "messages/task_body.hpp"

namespace vigil::consumer_steps {

// Connects the result backend if needed; false if it is unreachable.
bool ensure_results(self_ptr self) {
  auto& st = self->state;
  if (st.results)
    return true;
  auto rb = connect_result_backend(st.opts.result_backend_url,
                                   std::chrono::seconds{st.opts.result_expires},
                                   st.opts.io_timeout);
  if (!rb) {
    st.counters.fail(error_text(rb.error()));
    return false;
  }
  st.results = std::move(*rb);
  return true;
}

// Stores pending results; a failing result backend never holds up acks.
void store_results(self_ptr self) {
  auto& st = self->state;
  if (st.to_store.empty() || st.opts.result_backend_url.empty())
    return;
  if (!ensure_results(self))
    return;
  if (auto err = st.results->store(st.to_store)) {
    st.counters.fail(error_text(err));
    spdlog::warn("result backend failed: {}", error_text(err));
    st.results.reset();
    // Keep a bounded backlog for the next attempt.
    if (st.to_store.size() > 100000)
      st.to_store.erase(st.to_store.begin(),
                        st.to_store.begin()
                          + static_cast<ptrdiff_t>(st.to_store.size() - 100000));
    return;
  }
  st.to_store.clear();
}

// Returns pending chord parts (Celery's on_chord_part_return); the part
// that completes its chord queues the body. Held (with the acks behind
// it) while the result backend fails: acking first would lose the chord.
bool return_chord_parts(self_ptr self) {
  auto& st = self->state;
  if (st.to_chord.empty())
    return true;
  if (!ensure_results(self))
    return false;
  auto done = st.results->return_chord_parts(st.to_chord);
  if (!done) {
    st.counters.fail(error_text(done.error()));
    spdlog::warn("result backend failed returning chord parts: {}",
                 error_text(done.error()));
    st.results.reset();
    return false;
  }
  std::string_view rct = st.opts.result_serializer == "json"
                           ? content_type_json
                           : content_type_msgpack;
  for (size_t i = 0; i < st.to_chord.size(); ++i) {
    auto& entries = (*done)[i];
    if (entries.empty())
      continue;
    auto& part = st.to_chord[i];
    auto ct = st.opts.result_serializer == "auto"
                ? std::string_view{part.content_type}
                : rct;
    auto fin = complete_chord(part, entries, ct);
    ++st.chords_completed;
    st.chords_done.push_back(part.group_id);
    if (!fin) {
      spdlog::error("chord {}: body not sent: {}", part.group_id,
                    error_text(fin.error()));
      continue;
    }
    for (auto& r : fin->results)
      st.to_store.push_back(stored_result{r.task_id, std::move(r.doc)});
    for (auto& m : fin->messages) {
      if (m.queue.empty())
        m.queue = st.opts.default_queue;
      ++st.canvas_sent;
      st.to_publish.push_back(std::move(m));
    }
  }
  st.to_chord.clear();
  return true;
}

// Sets the size of chords the follow-ups start (a chord nested in a chain,
// group or callback) before their header is published: a part that
// finished before its chord's size was known would never complete it.
bool set_chord_sizes(self_ptr self) {
  auto& st = self->state;
  std::vector<std::pair<std::string, int64_t>> sizes;
  for (auto& t : st.to_publish)
    if (t.chord_size > 0)
      sizes.emplace_back(t.msg.group, t.chord_size);
  if (sizes.empty())
    return true;
  if (st.opts.result_backend_url.empty()) {
    // Only an errback can get here (the runner fails a task whose success
    // would start a chord): sent, but its chord can never complete.
    spdlog::error("a follow-up starts chord {} but no result backend is "
                  "configured (tasks.result-backend): it will not complete",
                  sizes.front().first);
  } else if (!ensure_results(self)) {
    return false;
  } else if (auto err = st.results->set_chord_sizes(sizes)) {
    st.counters.fail(error_text(err));
    spdlog::warn("result backend failed setting chord sizes: {}",
                 error_text(err));
    st.results.reset();
    return false;
  }
  for (auto& t : st.to_publish)
    t.chord_size = 0;
  return true;
}

} // namespace vigil::consumer_steps
