#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace vigil {

/// A task message in Celery's protocol v2: the headers and properties vigil
/// reads or writes, and the serialized body `[args, kwargs, embed]`.
/// Transport envelopes (kombu's Redis JSON, AMQP frames) convert to and from
/// this struct at the broker boundary.
struct task_message {
  // -- headers ---------------------------------------------------------------
  /// Registered task name ("vigil.echo").
  std::string task;
  /// Task id (UUID text); stays the same across retries.
  std::string id;
  std::string root_id;
  std::string parent_id;
  std::string group;
  /// Position in its group (chord header parts: 0..n-1); -1 = none.
  int32_t group_index = -1;
  std::string shadow;
  /// How many times this task was retried before this message.
  int32_t retries = 0;
  /// Earliest run time in Unix microseconds; 0 = run now.
  int64_t eta_us = 0;
  /// Expiry time in Unix microseconds; 0 = never.
  int64_t expires_us = 0;
  /// Celery's timelimit header, [hard, soft] in seconds; 0 = none.
  double time_limit = 0;
  double soft_time_limit = 0;
  /// True if the producer wants no SUCCESS result stored.
  bool ignore_result = false;
  std::string argsrepr;
  std::string kwargsrepr;
  std::string origin;
  /// The producer's schema version of this task's parameters ("vigil_schema"
  /// header); 0 = not stamped (e.g. sent by Python Celery).
  int32_t schema_version = 0;
  /// Other headers, as a compact JSON object or empty; carried over on retry.
  std::string extra_headers;

  // -- properties ------------------------------------------------------------
  std::string correlation_id;
  std::string reply_to;
  std::string content_type = "application/x-msgpack";
  std::string content_encoding = "binary";
  /// Message priority 0..9 (on Redis lower is served first, as in kombu).
  int32_t priority = 0;

  // -- body ------------------------------------------------------------------
  /// `[args, kwargs, embed]` serialized as content_type says.
  std::string body;
};

/// @relates task_message
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_message& x) {
  return f(caf::meta::type_name("vigil.task_message"), x.task, x.id, x.root_id,
           x.parent_id, x.group, x.group_index, x.shadow, x.retries, x.eta_us, x.expires_us,
           x.time_limit, x.soft_time_limit, x.ignore_result, x.argsrepr,
           x.kwargsrepr, x.origin, x.schema_version, x.extra_headers,
           x.correlation_id, x.reply_to, x.content_type, x.content_encoding,
           x.priority, x.body);
}

/// A task message taken from a broker queue and not yet acknowledged.
struct delivery {
  task_message msg;
  /// The queue it came from (the routing key; no priority suffix).
  std::string queue;
  /// The broker's handle for acknowledging it (kombu's delivery_tag).
  std::string tag;
  /// True if the broker delivered it before (restored after a crash).
  bool redelivered = false;
  /// When this node received it, Unix microseconds.
  int64_t received_us = 0;
};

/// @relates delivery
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery& x) {
  return f(caf::meta::type_name("vigil.delivery"), x.msg, x.queue, x.tag,
           x.redelivered, x.received_us);
}

/// A message to publish on a queue.
struct outgoing_task {
  std::string queue;
  task_message msg;
  /// Non-zero on the first header part of a chord applied by a worker (a
  /// chord nested in a chain, group or callback): the sender sets the
  /// chord size of group `msg.group` in the result backend (`.s`) to this
  /// before it publishes the message, as Celery's group does before it
  /// sends the header.
  int64_t chord_size = 0;
};

/// @relates outgoing_task
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outgoing_task& x) {
  return f(caf::meta::type_name("vigil.outgoing_task"), x.queue, x.msg,
           x.chord_size);
}

} // namespace vigil
