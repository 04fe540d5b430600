#pragma once

// The batching shape the quota and rate limiter actors share: requests
// found together in the mailbox wait here with their response promises, one
// backend call decides them all, and every promise gets its own answer.

#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

#include <caf/typed_response_promise.hpp>

#include "messages/type_ids.hpp"

namespace vigil {

/// Requests of type `Request` waiting for one backend call that answers
/// each with a `Result`. Single requests and vectors of requests mix; the
/// results keep arrival order. Used from inside one actor only.
template <class Request, class Result>
class mailbox_batch {
public:
  using promise = caf::typed_response_promise<Result>;
  using promise_all = caf::typed_response_promise<std::vector<Result>>;

  /// Queues one request; the next `run` answers the returned promise.
  template <class Self>
  promise add(Self* self, Request x) {
    waiter w;
    w.first = requests_.size();
    w.count = 1;
    w.one = self->template make_response_promise<Result>();
    requests_.push_back(std::move(x));
    auto rp = w.one;
    waiting_.push_back(std::move(w));
    return rp;
  }

  /// Queues several requests; the next `run` answers them in one vector.
  template <class Self>
  promise_all add_all(Self* self, std::vector<Request>& xs) {
    waiter w;
    w.first = requests_.size();
    w.count = xs.size();
    w.single = false;
    w.many = self->template make_response_promise<std::vector<Result>>();
    if (requests_.empty() && requests_.capacity() < xs.size())
      requests_ = std::move(xs);
    else
      requests_.insert(requests_.end(), std::make_move_iterator(xs.begin()),
                       std::make_move_iterator(xs.end()));
    auto rp = w.many;
    waiting_.push_back(std::move(w));
    return rp;
  }

  /// Requests waiting.
  size_t size() const {
    return requests_.size();
  }

  /// Sends `batch_atom` to `self` unless one is already on its way. It
  /// queues behind everything already in the mailbox, so those requests
  /// join this batch.
  template <class Self>
  void schedule(Self* self) {
    if (!scheduled_) {
      scheduled_ = true;
      self->send(self, batch_atom_v);
    }
  }

  /// Decides every waiting request with `decide`, which takes
  /// `const std::vector<Request>&` and returns one `Result` per request in
  /// order, and answers the promises. Returns how many were decided.
  template <class Decide>
  size_t run(Decide&& decide) {
    scheduled_ = false;
    if (requests_.empty())
      return 0;
    auto requests = std::move(requests_);
    auto waiting = std::move(waiting_);
    requests_.clear();
    waiting_.clear();
    std::vector<Result> results = decide(requests);
    for (auto& w : waiting) {
      if (w.single) {
        w.one.deliver(std::move(results[w.first]));
      } else {
        auto first = results.begin() + static_cast<ptrdiff_t>(w.first);
        w.many.deliver(std::vector<Result>(
          std::make_move_iterator(first),
          std::make_move_iterator(first + static_cast<ptrdiff_t>(w.count))));
      }
    }
    auto n = requests.size();
    // Keep the storage for the next batch.
    requests.clear();
    if (requests_.empty())
      requests_.swap(requests);
    return n;
  }

private:
  struct waiter {
    size_t first = 0; // index of its first request
    size_t count = 0;
    bool single = true;
    promise one;
    promise_all many;
  };

  std::vector<Request> requests_;
  std::vector<waiter> waiting_;
  bool scheduled_ = false;
};

} // namespace vigil
