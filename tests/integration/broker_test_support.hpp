#pragma once

// Helpers the broker integration tests share: a numbered test task, and
// the number back from a delivery.

#include <catch2/catch.hpp>

#include <string>

#include "actors/backends/broker.hpp"
#include "messages/clock.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/task_body.hpp"

namespace vigil::test {

/// A vigil.echo task for `queue` whose one argument is `n`.
inline outgoing_task make_task(std::string queue, int64_t n,
                               int priority = 0) {
  outgoing_task out;
  out.queue = std::move(queue);
  out.msg.task = "vigil.echo";
  out.msg.id = new_uuid4();
  out.msg.priority = priority;
  out.msg.body = encode_task_body({value{n}}, {}, content_type_msgpack);
  return out;
}

/// The argument of a delivery made by make_task.
inline int64_t arg_of(const raw_delivery& raw) {
  auto d = decode_kombu_envelope(raw.envelope);
  REQUIRE(d);
  auto body = decode_task_body(d->msg.body, d->msg.content_type);
  REQUIRE(body);
  return body->args.at(0).as_int();
}

} // namespace vigil::test
