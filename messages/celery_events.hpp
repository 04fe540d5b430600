#pragma once

// Celery's events (celery.events.Event): on Redis a kombu envelope
// PUBLISHed on the `celeryev` fanout channel with the event type as routing
// key (`/{db}.celeryev/worker.heartbeat`); on AMQP the bare JSON body
// published to the `celeryev` topic exchange with that routing key.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "messages/task_events.hpp"
#include "messages/value.hpp"

namespace vigil {

/// The channel an event of `type` ("worker-heartbeat") is published on.
std::string celery_event_channel(int db, std::string_view type);

/// The routing key of an event of `type`: "worker-heartbeat" is
/// "worker.heartbeat", as Celery's EventDispatcher.publish makes it.
std::string celery_event_routing_key(std::string_view type);

/// The JSON body of one event: `fields` plus type, timestamp (seconds),
/// hostname, utcoffset, pid and clock, as Celery's EventDispatcher.publish
/// adds them.
std::string celery_event_body(std::string_view type, value_map fields,
                              std::string_view hostname, int64_t clock,
                              double timestamp);

/// The Redis envelope of one event: `fields` plus type, timestamp (seconds),
/// hostname, utcoffset, pid and clock, as Celery's EventDispatcher.publish
/// adds them; JSON body (Celery's default event_serializer).
std::string encode_celery_event(std::string_view type, value_map fields,
                                std::string_view hostname, int64_t clock,
                                double timestamp);

/// The routing key a batch of task events goes with, as a Celery worker's
/// EventDispatcher sends its buffered 'task' group.
inline constexpr std::string_view task_event_batch_key = "task.multi";

/// The JSON bodies of `events` as a Celery worker batches them: lists of
/// at most `limit` events (Celery's buffer_limit, 24), each event complete
/// (the fields celery_event_body adds, the next `clock` each). A Receiver
/// reads a list body as that many events.
std::vector<std::string> celery_event_lists(std::vector<task_event>& events,
                                            std::string_view hostname,
                                            int64_t& clock, size_t limit = 24);

/// The Redis envelope of an event body (one event or a list) published
/// with `routing_key`.
std::string encode_celery_event_envelope(std::string_view routing_key,
                                         std::string_view body_json,
                                         std::string_view hostname);

/// The fields of worker-online/-heartbeat/-offline: freq, active,
/// processed, loadavg and the sw_* identity.
value_map worker_event_fields(double freq, int64_t active, int64_t processed);

} // namespace vigil
