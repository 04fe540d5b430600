#include "actors/ingest_queue.hpp"

#include <algorithm>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "messages/type_ids.hpp"

namespace vigil {

// -- ingest_reply -------------------------------------------------------------

ingest_reply& ingest_reply::operator=(ingest_reply&& other) noexcept {
  if (this != &other) {
    if (fn_) {
      ingest_result res;
      res.status = ingest_result::outcome::unavailable;
      res.detail = "the ingest pipeline dropped the request; retry later";
      fn_(std::move(res));
    }
    fn_ = std::move(other.fn_);
    other.fn_ = nullptr;
  }
  return *this;
}

ingest_reply::~ingest_reply() {
  if (!fn_)
    return;
  ingest_result res;
  res.status = ingest_result::outcome::unavailable;
  res.detail = "the ingest pipeline restarted before answering; retry later";
  fn_(std::move(res));
}

void ingest_reply::operator()(ingest_result res) {
  if (!fn_)
    return;
  auto fn = std::move(fn_);
  fn_ = nullptr;
  fn(std::move(res));
}

// -- ingest_queue -------------------------------------------------------------

size_t job_bytes(const ingest_job& job) {
  size_t n = sizeof(ingest_job) + job.event_id.size()
             + job.quotas.size() * sizeof(quota_config);
  for (auto& item : job.items) {
    n += sizeof(ingest_item) + item.category.size() + item.encoded.size();
    if (item.event)
      n += item.event->json.size() + item.event->title.size()
           + item.event->culprit.size() + item.event->grouping_hash.size()
           + item.event->event_id.size();
  }
  return n;
}

void ingest_queue::attach(caf::actor_addr actor) {
  std::lock_guard<std::mutex> guard{mtx_};
  actor_ = std::move(actor);
}

bool ingest_queue::push(ingest_job&& job) {
  auto n = job_bytes(job);
  caf::actor_addr wake;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (jobs_.size() >= capacity_
        || (!jobs_.empty() && bytes_ + n > byte_capacity_))
      return false;
    jobs_.emplace_back(std::move(job), n);
    bytes_ += n;
    if (!signaled_) {
      signaled_ = true;
      wake = actor_;
    }
  }
  if (auto hdl = caf::actor_cast<caf::actor>(wake))
    caf::anon_send(hdl, poll_atom_v);
  return true;
}

std::vector<ingest_job> ingest_queue::take(size_t max) {
  std::vector<ingest_job> out;
  std::lock_guard<std::mutex> guard{mtx_};
  auto n = std::min(max, jobs_.size());
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(std::move(jobs_.front().first));
    bytes_ -= jobs_.front().second;
    jobs_.pop_front();
  }
  // The actor asks again after each batch; only an empty queue needs the
  // next push to wake it.
  if (jobs_.empty())
    signaled_ = false;
  return out;
}

size_t ingest_queue::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return jobs_.size();
}

size_t ingest_queue::bytes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return bytes_;
}

} // namespace vigil
