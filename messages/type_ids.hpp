#pragma once

// The one CAF type-ID block of the project: every type and atom that travels
// in a CAF message is listed here, so that nodes agree on names when the
// inspector talks across processes.

#include <vector>

#include <caf/type_id.hpp>

#include "messages/actor_status.hpp"
#include "messages/buffer_messages.hpp"
#include "messages/chart_messages.hpp"
#include "messages/filestore_messages.hpp"
#include "messages/mail_message.hpp"
#include "messages/quota_messages.hpp"
#include "messages/task_message.hpp"
#include "messages/task_outcome.hpp"
#include "messages/tsdb_messages.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(vigil, caf::first_custom_type_id)

  CAF_ADD_TYPE_ID(vigil, (vigil::task_message))
  CAF_ADD_TYPE_ID(vigil, (vigil::delivery))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::delivery>))
  CAF_ADD_TYPE_ID(vigil, (vigil::outgoing_task))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::outgoing_task>))
  CAF_ADD_TYPE_ID(vigil, (vigil::task_outcome))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::task_outcome>))
  CAF_ADD_TYPE_ID(vigil, (vigil::actor_status))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::actor_status>))
  CAF_ADD_TYPE_ID(vigil, (vigil::quota_config))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::quota_config>))
  CAF_ADD_TYPE_ID(vigil, (vigil::quota_scoping))
  CAF_ADD_TYPE_ID(vigil, (vigil::quota_check))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::quota_check>))
  CAF_ADD_TYPE_ID(vigil, (vigil::quota_decision))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::quota_decision>))
  CAF_ADD_TYPE_ID(vigil, (vigil::quota_usage))
  CAF_ADD_TYPE_ID(vigil, (vigil::rate_limit_check))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::rate_limit_check>))
  CAF_ADD_TYPE_ID(vigil, (vigil::rate_limit_result))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::rate_limit_result>))
  CAF_ADD_TYPE_ID(vigil, (vigil::buffer_incr))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::buffer_incr>))
  CAF_ADD_TYPE_ID(vigil, (vigil::buffer_batch))
  CAF_ADD_TYPE_ID(vigil, (vigil::tsdb_incr))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::tsdb_incr>))
  CAF_ADD_TYPE_ID(vigil, (vigil::tsdb_record))
  CAF_ADD_TYPE_ID(vigil, (std::vector<vigil::tsdb_record>))
  CAF_ADD_TYPE_ID(vigil, (vigil::tsdb_query))
  CAF_ADD_TYPE_ID(vigil, (vigil::tsdb_answer))

  /// Asks an actor for its `actor_status`.
  CAF_ADD_ATOM(vigil, vigil, status_atom, "status")
  /// A detached actor's self-sent "look for work" tick.
  CAF_ADD_ATOM(vigil, vigil, poll_atom, "poll")
  /// Hands a batch of deliveries to a worker.
  CAF_ADD_ATOM(vigil, vigil, run_atom, "run")
  /// Wakes a consumer when held ETA messages come due.
  CAF_ADD_ATOM(vigil, vigil, eta_atom, "eta")
  /// Periodic sweep for messages past the visibility timeout.
  CAF_ADD_ATOM(vigil, vigil, sweep_atom, "sweep")
  /// Stop taking work, finish or give back what is held, then quit.
  CAF_ADD_ATOM(vigil, vigil, drain_atom, "drain")
  /// Publishes a batch of task messages.
  CAF_ADD_ATOM(vigil, vigil, publish_atom, "publish")
  /// Marks the end of a drain's grace period.
  CAF_ADD_ATOM(vigil, vigil, deadline_atom, "deadline")
  /// Restarts a supervised child after its backoff.
  CAF_ADD_ATOM(vigil, vigil, restart_atom, "restart")

  /// Gives consumed quota back (quota actor).
  CAF_ADD_ATOM(vigil, vigil, refund_atom, "refund")
  /// Asks for a quota's usage in its current window (quota actor).
  CAF_ADD_ATOM(vigil, vigil, usage_atom, "usage")
  /// Self-sent by batching actors: decide everything queued so far.
  CAF_ADD_ATOM(vigil, vigil, batch_atom, "batch")
  /// Adds counter increments (write buffer).
  CAF_ADD_ATOM(vigil, vigil, incr_atom, "incr")
  /// Writes what an actor holds to its store now (write buffer).
  CAF_ADD_ATOM(vigil, vigil, flush_atom, "flush")
  /// Records counts and distinct values (TSDB).
  CAF_ADD_ATOM(vigil, vigil, record_atom, "record")

  // mailer
  CAF_ADD_TYPE_ID(vigil, (vigil::mail_message))
  /// Tries a waiting mail again (mailer actor).
  CAF_ADD_ATOM(vigil, vigil, retry_atom, "retry")

  // filestore (branch filestore)
  CAF_ADD_TYPE_ID(vigil, (vigil::filestore_put))
  /// Asks whether a key has bytes (filestore actor).
  CAF_ADD_ATOM(vigil, vigil, exists_atom, "exists")

  // chart rendering (branch charts)
  CAF_ADD_TYPE_ID(vigil, (vigil::chart_reply))
  /// Renders a chart from a `POST /render` body (chart renderer).
  CAF_ADD_ATOM(vigil, vigil, render_atom, "render")
  /// The inspector: this node's snapshot, and the cluster's.
  CAF_ADD_ATOM(vigil, vigil, snapshot_atom, "snapshot")
  CAF_ADD_ATOM(vigil, vigil, cluster_atom, "cluster")
  /// Metrics: a flush tick, and the Prometheus page.
  CAF_ADD_ATOM(vigil, vigil, metrics_atom, "metrics")

CAF_END_TYPE_ID_BLOCK(vigil)
