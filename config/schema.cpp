#include "config/schema.hpp"

#include "config/text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>

#include "config/config.hpp"
#include "config/cron_schedule.hpp"
#include "config/organizations.hpp"
#include "config/service_options.hpp"
#include "config/tsdb_rollups.hpp"
#include "messages/ascii.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

std::vector<key_spec> make_schema() {
  // One row per key. Keep `help` to one line: it is printed by the CLI and
  // copied into docs/CONFIGURATION.md.
  std::vector<key_spec> rows = {
    {.key = "broker.url", .type = key_type::url, .default_yaml = "memory://",
     .help = "Broker URL: memory://[?max-messages=N] (in-process, at most N "
             "waiting, default 100000), redis://[:password@]host:port/db or "
             "amqp://user:password@host:port/vhost",
     .choices = {"memory", "redis", "amqp"}},
    {.key = "broker.visibility-timeout", .type = key_type::number,
     .default_yaml = "3600",
     .help = "Seconds a fetched message may stay unacknowledged before it is "
             "redelivered",
     .min = 1},
    {.key = "broker.prefetch", .type = key_type::integer,
     .default_yaml = "256",
     .help = "Messages a worker's consumer connection holds "
             "unacknowledged (on RabbitMQ its basic.qos prefetch)",
     .min = 1},
    {.key = "broker.restore-interval", .type = key_type::number,
     .default_yaml = "10",
     .help = "Seconds between a worker's sweeps for unacknowledged messages "
             "past the visibility timeout",
     .min = 0.1},
    {.key = "broker.poll-interval", .type = key_type::number,
     .default_yaml = "0.05",
     .help = "Longest sleep in seconds between fetches when the queues are "
             "empty",
     .min = 0.001},
    {.key = "tasks.result-backend", .type = key_type::url, .default_yaml = "",
     .help = "Result backend URL: redis://[:password@]host:port/db (unset: "
             "none)",
     .choices = {"redis"}},
    {.key = "tasks.result-serializer", .type = key_type::choice,
     .default_yaml = "auto",
     .help = "How results are serialized: auto (as the task message asked), "
             "msgpack or json (match the clients' result_serializer)",
     .choices = {"auto", "msgpack", "json"}},
    {.key = "tasks.result-expires", .type = key_type::integer,
     .default_yaml = "86400",
     .help = "Seconds a task result is kept in the result backend",
     .min = 1},
    {.key = "tasks.default-queue", .type = key_type::string,
     .default_yaml = "celery",
     .help = "Queue that tasks are sent to when no queue is given"},
    {.key = "tasks.queues", .type = key_type::list, .default_yaml = "[]",
     .help = "Queues a worker consumes from ([] = [tasks.default-queue])"},
    {.key = "tasks.max-deliveries", .type = key_type::integer,
     .default_yaml = "5",
     .help = "Deliveries of a message whose worker died each time after "
             "which it is dead-lettered instead of run again (0 = "
             "unlimited)",
     .min = 0, .max = 10000},
    {.key = "tasks.unknown-task", .type = key_type::choice,
     .default_yaml = "dead-letter",
     .help = "What a worker does with a message naming an unregistered task",
     .choices = {"dead-letter", "requeue"}},
    {.key = "worker.consumers", .type = key_type::integer,
     .default_yaml = "2",
     .help = "Broker connections taking messages in parallel; worker threads "
             "are shared out among them",
     .min = 1, .max = 64},
    {.key = "worker.concurrency", .type = key_type::integer,
     .default_yaml = "0",
     .help = "Number of tasks a worker runs in parallel (0 = number of CPU "
             "cores)",
     .min = 0},
    {.key = "worker.shutdown-timeout", .type = key_type::number,
     .default_yaml = "30",
     .help = "Seconds a worker waits for running tasks to finish on SIGTERM",
     .min = 0},
    // pidbox: remote control (Celery's inspect/control).
    {.key = "worker.hostname", .type = key_type::string, .default_yaml = "",
     .help = "This node's worker name for Celery's remote control (`celery "
             "inspect`); unset: vigil@<host>.<pid>"},
    {.key = "worker.revokes-max", .type = key_type::integer,
     .default_yaml = "50000",
     .help = "Most revoked task ids a node keeps (Celery's REVOKES_MAX); the "
             "oldest are forgotten first", .min = 1},
    {.key = "worker.revokes-expires", .type = key_type::number,
     .default_yaml = "10800",
     .help = "Seconds a revoked task id is kept (Celery's REVOKE_EXPIRES)",
     .min = 0},
    {.key = "worker.send-events", .type = key_type::boolean,
     .default_yaml = "false",
     .help = "Publish Celery's worker events (worker-online, worker-heartbeat "
             "every 2 s, worker-offline) on a redis:// broker, for `celery "
             "events` and Flower"},
    {.key = "worker.remote-control", .type = key_type::boolean,
     .default_yaml = "true",
     .help = "Answer Celery's remote-control commands (kombu's pidbox) on a "
             "redis:// broker"},
    {.key = "cron.schedule", .type = key_type::list, .default_yaml = "[]",
     .help = "Periodic tasks: entries with name, task, every (seconds) or "
             "crontab (UTC), options (queue, expires) and kwargs; see "
             "docs/CRON.md"},
    {.key = "cron.lock-url", .type = key_type::url, .default_yaml = "",
     .help = "Redis holding the cron scheduler lock and the fired ticks "
             "(unset: broker.url if it is redis://, else no lock)",
     .choices = {"redis"}},
    {.key = "cron.lock-ttl", .type = key_type::number, .default_yaml = "5",
     .help = "Seconds the cron scheduler lock lasts unless renewed (renewed "
             "every fifth of it): a standby takes over within this time",
     .min = 0.2, .max = 3600},
    // The write buffer and the time-series store; see docs/BUFFER.md.
    {.key = "buffer.backend", .type = key_type::choice,
     .default_yaml = "memory",
     .help = "Where counter increments wait before they are applied to the "
             "database: memory (this process; flushed on shutdown) or redis "
             "(Sentry's RedisBuffer layout, shared by nodes)",
     .choices = {"memory", "redis"}},
    {.key = "buffer.options", .type = key_type::map,
     .default_yaml = "{cluster: default, pending-partitions: 1, "
                     "incr-batch-size: 2, local-flush-ms: 100}",
     .help = "Write buffer options: cluster (a name in redis.clusters), "
             "pending-partitions (pending sets, 1-1024), incr-batch-size "
             "(rows per process_incr task), local-flush-ms (how long this "
             "node sums increments before it writes them, 1-60000)"},
    {.key = "buffer.flush-interval", .type = key_type::number,
     .default_yaml = "10",
     .help = "Seconds between the cron entry flush-buffers' runs of "
             "process_pending, which hands the buffered rows to process_incr "
             "tasks (0 = no such entry: flush from your own schedule)",
     .min = 0, .max = 3600},
    {.key = "buffer.ingest-counters", .type = key_type::choice,
     .default_yaml = "auto",
     .help = "How ingestion counts events in their issues (times_seen, "
             "last_seen): buffer (through the write buffer, applied by "
             "flush-buffers), transaction (in the ingest transaction, one "
             "row write per issue per batch) or auto (buffer with "
             "buffer.backend redis, transaction with memory, whose "
             "increments a SIGKILL would lose); see docs/BUFFER.md",
     .choices = {"auto", "buffer", "transaction"}},
    {.key = "tsdb.backend", .type = key_type::choice,
     .default_yaml = "memory",
     .help = "Where time-series counts live: dummy (none), memory (this "
             "process) or redis (Sentry's RedisTSDB layout)",
     .choices = {"dummy", "memory", "redis"}},
    {.key = "tsdb.options", .type = key_type::map,
     .default_yaml = "{cluster: default}",
     .help = "Time-series store options: cluster (a name in redis.clusters)"},
    {.key = "tsdb.rollups", .type = key_type::list,
     .default_yaml = "[[10, 360], [3600, 168], [86400, 90]]",
     .help = "Time-series resolutions, finest first: [seconds, samples] "
             "each (Sentry's SENTRY_TSDB_ROLLUPS); the stats API's "
             "resolutions and how long counts are kept"},
    // Notification digests (Sentry's sentry.digests); see docs/DIGESTS.md.
    {.key = "digests.rate-limit", .type = key_type::integer,
     .default_yaml = "60",
     .help = "Notification mails per project per digests.rate-limit-window "
             "at most (the notification rate limiter, ratelimiter.backend); "
             "a limited digest waits for the next window; 0 = no limit",
     .min = 0},
    {.key = "digests.rate-limit-window", .type = key_type::integer,
     .default_yaml = "3600",
     .help = "Seconds of the notification rate limit's window",
     .min = 1},
    {.key = "digests.schedule-interval", .type = key_type::number,
     .default_yaml = "30",
     .help = "Seconds between cron's schedule-digests ticks (Sentry: 30); "
             "each delivers the digests now due",
     .min = 1},
    {.key = "digests.backend", .type = key_type::choice,
     .default_yaml = "memory",
     .help = "Where digest timelines wait before delivery: dummy (none, "
             "Sentry's default), memory (this process) or redis (Sentry's "
             "RedisBackend layout, namespace d)",
     .choices = {"dummy", "memory", "redis"}},
    {.key = "digests.options", .type = key_type::map,
     .default_yaml = "{cluster: default, ttl: 3600}",
     .help = "Digests backend options: cluster (a name in redis.clusters), "
             "ttl (seconds records, timelines and digests live in Redis, "
             "60-2592000)"},
    {.key = "digests.minimum-delay", .type = key_type::integer,
     .default_yaml = "300",
     .help = "Seconds a timeline waits after a delivery before the next one "
             "(a project's own option overrides it)",
     .min = 0, .max = 86400},
    {.key = "digests.maximum-delay", .type = key_type::integer,
     .default_yaml = "1800",
     .help = "Seconds after a delivery by which the next is due however "
             "many records arrive",
     .min = 0, .max = 86400},
    {.key = "digests.increment-delay", .type = key_type::integer,
     .default_yaml = "30",
     .help = "Seconds each record added to a waiting timeline delays its "
             "delivery (up to digests.maximum-delay)",
     .min = 0, .max = 86400},
    {.key = "digests.capacity", .type = key_type::integer,
     .default_yaml = "0",
     .help = "Records a timeline keeps, newest first (0 = no limit); an add "
             "truncates with chance 1/capacity, as Sentry",
     .min = 0, .max = 1000000},
    // mail: Sentry's mail.* options; see docs/MAIL.md.
    {.key = "mail.backend", .type = key_type::choice, .default_yaml = "dummy",
     .help = "How mail leaves: smtp (mail.host), console (printed to the "
             "log) or dummy (dropped, counted)",
     .choices = {"smtp", "console", "dummy"}},
    {.key = "mail.host", .type = key_type::string,
     .default_yaml = "127.0.0.1", .help = "SMTP server's host"},
    {.key = "mail.port", .type = key_type::integer, .default_yaml = "25",
     .help = "SMTP server's port", .min = 1, .max = 65535},
    {.key = "mail.username", .type = key_type::string, .default_yaml = "",
     .help = "SMTP AUTH user (empty: no AUTH)"},
    {.key = "mail.password", .type = key_type::string, .default_yaml = "",
     .help = "SMTP AUTH password; never logged", .secret = true},
    {.key = "mail.use-tls", .type = key_type::boolean,
     .default_yaml = "false",
     .help = "STARTTLS, required (the mail is not sent in the clear); "
             "exclusive with mail.use-ssl"},
    {.key = "mail.use-ssl", .type = key_type::boolean,
     .default_yaml = "false",
     .help = "Implicit TLS from the first byte (smtps, port 465 usually); "
             "exclusive with mail.use-tls"},
    {.key = "mail.tls-ca-file", .type = key_type::string, .default_yaml = "",
     .help = "CA bundle that verifies the SMTP server's certificate (empty: "
             "the system's)"},
    {.key = "mail.timeout", .type = key_type::number, .default_yaml = "10",
     .help = "Seconds one SMTP exchange may take, connect to QUIT",
     .min = 0.1},
    {.key = "mail.from", .type = key_type::string,
     .default_yaml = "root@localhost", .help = "Sender address (From)"},
    {.key = "mail.subject-prefix", .type = key_type::string,
     .default_yaml = "\"[Sentry] \"",
     .help = "Put before every subject"},
    {.key = "mail.list-namespace", .type = key_type::string,
     .default_yaml = "localhost",
     .help = "Domain of the List-Id header (<project.org.namespace>)"},
    {.key = "mail.enable-replies", .type = key_type::boolean,
     .default_yaml = "false",
     .help = "Send Reply-To addresses that route replies back as comments"},
    {.key = "mail.reply-hostname", .type = key_type::string,
     .default_yaml = "", .help = "Domain of the reply addresses"},
    {.key = "mail.mailgun-api-key", .type = key_type::string,
     .default_yaml = "",
     .help = "Mailgun's key, verifying inbound reply webhooks; never logged",
     .secret = true},
    // filestore: attachments and rendered charts; see docs/FILESTORE.md.
    {.key = "filestore.backend", .type = key_type::choice,
     .default_yaml = "filesystem",
     .help = "Where files (attachments, charts) are kept: filesystem "
             "(filestore.options.location) or s3 (any S3-compatible store)",
     .choices = {"filesystem", "s3"}},
    {.key = "filestore.options", .type = key_type::map, .default_yaml = "{}",
     .help = "Filestore options (Sentry's names): filesystem {location} "
             "(default <node.data-dir>/files); s3 {access_key, secret_key, "
             "bucket_name, endpoint_url (path-style when set), region "
             "(us-east-1), default_acl (public-read or private)}; see "
             "docs/FILESTORE.md"},
    // chart rendering (branch charts): Chartcuterie's API; docs/CHARTS.md.
    {.key = "chart-rendering.enabled", .type = key_type::boolean,
     .default_yaml = "false",
     .help = "Run the chart renderer (Chartcuterie's API) inside `run node`; "
             "`run chartcuterie` runs it alone"},
    {.key = "chart-rendering.bind", .type = key_type::string,
     .default_yaml = "127.0.0.1:7901",
     .help = "host:port of the chart renderer's HTTP API (POST /render)"},
    {.key = "chart-rendering.config", .type = key_type::string,
     .default_yaml = "",
     .help = "Style configuration: a file path or an http(s) URL, polled "
             "every 5 s until it loads, then every config-refresh seconds "
             "(503 until then); unset: the built-in styles, at once"},
    {.key = "chart-rendering.config-refresh", .type = key_type::number,
     .default_yaml = "300",
     .help = "Seconds between polls of chart-rendering.config once a "
             "version loaded (Chartcuterie: 300)",
     .min = 0.1},
    {.key = "chart-rendering.threads", .type = key_type::integer,
     .default_yaml = "0",
     .help = "Renderer actors (each renders one chart at a time); 0 = the "
             "number of cores",
     .min = 0},
    {.key = "chart-rendering.queue-size", .type = key_type::integer,
     .default_yaml = "64",
     .help = "Renders waiting or running at most; more get 503 with "
             "Retry-After",
     .min = 1},
    // Event storage (nodestore and groups); see docs/STORAGE.md.
    {.key = "db.url", .type = key_type::url, .default_yaml = "",
     .help = "Database URL: sqlite:///abs/path, sqlite://relative/path or "
             "postgresql://user:password@host:port/db (unset: "
             "sqlite://<node.data-dir>/vigil.db)",
     .choices = {"sqlite", "postgresql", "postgres"}},
    {.key = "db.sqlite-synchronous", .type = key_type::choice,
     .default_yaml = "full",
     .help = "SQLite durability: full (an answered event survives a power "
             "cut: one WAL sync per ingest batch) or normal (faster; a "
             "process crash loses nothing, a power cut or OS crash can drop "
             "the last answered events)",
     .choices = {"normal", "full"}},
    {.key = "log.level", .type = key_type::choice, .default_yaml = "info",
     .help = "Lowest log level that is written",
     .choices = {"trace", "debug", "info", "warning", "error", "critical",
                 "off"}},
    {.key = "log.format", .type = key_type::choice, .default_yaml = "text",
     .help = "Log line format", .choices = {"text", "json"}},
    {.key = "node.name", .type = key_type::string, .default_yaml = "",
     .help = "Name of this node (unset: the host name)"},
    {.key = "node.data-dir", .type = key_type::string,
     .default_yaml = ".vigil", .help = "Directory for this node's local state"},
    {.key = "redis.clusters", .type = key_type::map, .default_yaml = "{}",
     .help = "Named Redis connection settings, taken as a whole"},
    // Quotas and rate limits (Sentry's names where Sentry has them).
    {.key = "organizations", .type = key_type::list, .default_yaml = "[]",
     .help = "Organizations: id, slug, account-rate-limit (events per hour, "
             "0 = none), project-rate-limit (percent); see docs/QUOTAS.md"},
    {.key = "projects", .type = key_type::list, .default_yaml = "[]",
     .help = "Projects: id, organization, slug, keys (id, public, enabled, "
             "rate-limit {count, window}), allowed-domains (web origins "
             "whose pages may send events, default [\"*\"]), filters "
             "(inbound filters: localhost, web-crawlers, error-messages, "
             "releases, blacklisted-ips), alert-rules (id, label, conditions, "
             "filters, frequency; default: Sentry's first-seen rule); see "
             "docs/QUOTAS.md, docs/INGEST.md and docs/ALERTS.md"},
    {.key = "quotas.backend", .type = key_type::choice,
     .default_yaml = "memory",
     .help = "Where quota counters live: memory (this process) or redis",
     .choices = {"memory", "redis"}},
    {.key = "quotas.options", .type = key_type::map,
     .default_yaml = "{cluster: default}",
     .help = "Quota backend options: cluster (a name in redis.clusters)"},
    {.key = "quotas.fail-open", .type = key_type::boolean,
     .default_yaml = "true",
     .help = "Accept events when the quota store fails (as Relay)"},
    {.key = "quotas.extra", .type = key_type::list, .default_yaml = "[]",
     .help = "Extra quotas as Relay reads them: id, categories, scope, "
             "scope-id, limit, window, reason-code"},
    {.key = "ratelimiter.backend", .type = key_type::choice,
     .default_yaml = "memory",
     .help = "Where rate-limiter counters live: memory or redis",
     .choices = {"memory", "redis"}},
    {.key = "ratelimiter.options", .type = key_type::map,
     .default_yaml = "{cluster: default}",
     .help = "Rate limiter backend options: cluster (a name in "
             "redis.clusters)"},
    {.key = "system.secret-key", .type = key_type::string,
     .default_yaml = "",
     .help = "Sentry's SECRET_KEY: signs the reply addresses of "
             "notification mails (required with mail.enable-replies); "
             "never logged",
     .secret = true},
    {.key = "system.url-prefix", .type = key_type::string,
     .default_yaml = "",
     .help = "How clients reach this node's web interface, e.g. "
             "https://sentry.example.com: the start of the links vigil "
             "hands out (generated charts); unset: http://<web.bind>"},
    {.key = "system.rate-limit", .type = key_type::integer,
     .default_yaml = "0",
     .help = "Events per minute any organization may send (0 = none)",
     .min = 0},
    {.key = "auth.user-rate-limit", .type = key_type::integer,
     .default_yaml = "0",
     .help = "HTTP API requests per minute per user (0 = none)", .min = 0},
    {.key = "auth.ip-rate-limit", .type = key_type::integer,
     .default_yaml = "0",
     .help = "HTTP API requests per minute per IP address (0 = none)",
     .min = 0},
    {.key = "web.bind", .type = key_type::string,
     .default_yaml = "127.0.0.1:9001",
     .help = "Address (host:port) the web interface listens on"},
    {.key = "web.threads", .type = key_type::integer, .default_yaml = "0",
     .help = "HTTP threads (0 = the number of cores)", .min = 0, .max = 256},
    {.key = "web.max-body-size", .type = key_type::integer,
     .default_yaml = "20971520",
     .help = "Largest request body as sent, compressed or not (bytes); "
             "larger gets 413",
     .min = 1024},
    {.key = "web.max-event-size", .type = key_type::integer,
     .default_yaml = "1048576",
     .help = "Largest event JSON after decompression (bytes), as Relay's "
             "max_event_size; larger gets 413",
     .min = 1024},
    {.key = "web.max-envelope-size", .type = key_type::integer,
     .default_yaml = "104857600",
     .help = "Largest envelope after decompression (bytes), as Relay's "
             "max_envelope_size; larger gets 413",
     .min = 1024},
    {.key = "web.max-header-size", .type = key_type::integer,
     .default_yaml = "16384",
     .help = "Largest request line plus headers (bytes); larger gets 431",
     .min = 1024},
    {.key = "web.trust-forwarded-for", .type = key_type::boolean,
     .default_yaml = "false",
     .help = "Take the client's address (what user.ip_address \"{{auto}}\" "
             "becomes) from the first X-Forwarded-For entry instead of the "
             "socket; only behind a proxy that sets it"},
    {.key = "web.read-timeout", .type = key_type::number,
     .default_yaml = "30",
     .help = "Seconds a client may take to send one request (slow clients "
             "are closed)", .min = 0.1},
    {.key = "web.idle-timeout", .type = key_type::number,
     .default_yaml = "75",
     .help = "Seconds a keep-alive connection may stay idle", .min = 0.1},
    {.key = "web.max-connections", .type = key_type::integer,
     .default_yaml = "4096",
     .help = "Open HTTP connections at most (0 = no bound); at the bound "
             "the server stops accepting until a connection closes (new "
             "clients wait in the listen backlog)", .min = 0},
    {.key = "web.max-buffered-bytes", .type = key_type::integer,
     .default_yaml = "268435456",
     .help = "Request bodies being read or held by the handler, summed over "
             "all connections (bytes, 0 = no bound); a body that does not "
             "fit gets 503 with Retry-After", .min = 0},
    {.key = "web.handler-timeout", .type = key_type::number,
     .default_yaml = "30",
     .help = "Seconds a request handed to the pipeline may wait for its "
             "answer (0 = no limit); then the server answers 503 with "
             "Retry-After and closes the connection", .min = 0},
    {.key = "ingest.queue-size", .type = key_type::integer,
     .default_yaml = "20000",
     .help = "Requests waiting for the ingest pipeline; when full, new "
             "ones get 503 with Retry-After", .min = 1},
    {.key = "ingest.queue-bytes", .type = key_type::integer,
     .default_yaml = "134217728",
     .help = "Bytes the requests waiting for the ingest pipeline may hold "
             "(events and their encoded form); beyond, 503 with Retry-After",
     .min = 1024},
    {.key = "ingest.batch-size", .type = key_type::integer,
     .default_yaml = "1000",
     .help = "Most events the pipeline quota-checks, stores and queues in "
             "one batch", .min = 1},
    {.key = "ingest.max-attachment-size", .type = key_type::integer,
     .default_yaml = "104857600",
     .help = "Largest envelope attachment kept, in bytes (Relay's "
             "max_attachment_size, 100 MiB); a larger one is dropped and "
             "counted, the rest of its envelope kept", .min = 0},
    {.key = "api.token", .type = key_type::string, .default_yaml = "",
     .help = "Bearer token of the read API under /api/0/ (empty: the API "
             "answers 401)", .secret = true},
    // Inspection and cluster membership; see docs/INSPECT.md.
    {.key = "inspect.bind", .type = key_type::string,
     .default_yaml = "127.0.0.1:9002",
     .help = "Management endpoint (GET /snapshot, GET /cluster): host:port, "
             "port 0 for any free port (the bound one is announced in the "
             "membership entry); off or empty: no endpoint"},
    {.key = "inspect.token", .type = key_type::string, .default_yaml = "",
     .help = "Bearer token of the management endpoint and of `vigil "
             "inspect`; required when inspect.bind is not a loopback "
             "address (the node refuses to start without it)",
     .secret = true},
    {.key = "inspect.timeout", .type = key_type::number,
     .default_yaml = "1",
     .help = "Seconds each actor has to answer the inspector; one that does "
             "not is listed as not answering",
     .min = 0.01, .max = 60},
    {.key = "inspect.cluster", .type = key_type::string, .default_yaml = "",
     .help = "The redis.clusters name nodes announce themselves in (a "
             "heartbeat every 5 s, a 15 s TTL) for `vigil nodes` and "
             "`vigil inspect` (empty: default, when redis.clusters has it; "
             "else no membership)"},
  };
  std::sort(rows.begin(), rows.end(),
            [](const key_spec& x, const key_spec& y) { return x.key < y.key; });
  return rows;
}

caf::error bad(std::string text) {
  return caf::make_error(errc::bad_config, std::move(text));
}

// Shortest text that reads back as `x`: "1", "0.1", "1e+20".
std::string format_number(double x) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  return std::string(buf, res.ptr);
}

std::string range_text(const key_spec& spec) {
  bool has_min = std::isfinite(spec.min);
  bool has_max = std::isfinite(spec.max);
  if (has_min && has_max)
    return " between " + format_number(spec.min) + " and "
           + format_number(spec.max);
  if (has_min)
    return " >= " + format_number(spec.min);
  if (has_max)
    return " <= " + format_number(spec.max);
  return "";
}

std::string join(const std::vector<std::string>& xs, std::string_view sep) {
  std::string out;
  for (const auto& x : xs) {
    if (!out.empty())
      out += sep;
    out += x;
  }
  return out;
}

// What the caller expected, for "expected ..., got ..." messages.
std::string expected_text(const key_spec& spec) {
  switch (spec.type) {
    case key_type::string: return "a string";
    case key_type::integer: return "an integer" + range_text(spec);
    case key_type::number: return "a number" + range_text(spec);
    case key_type::boolean: return "a boolean (true/false/yes/no)";
    case key_type::choice: return "one of " + join(spec.choices, ", ");
    case key_type::url: {
      std::vector<std::string> schemes;
      for (const auto& s : spec.choices)
        schemes.push_back(s + "://");
      return "a URL (" + join(schemes, ", ") + ")";
    }
    case key_type::map: return "a map";
    case key_type::list: return "a list of strings";
  }
  return "a value";
}

// What was found, for "expected ..., got ..." messages. Quotes scalars with
// URL passwords masked; never quotes secret values.
std::string found_text(const key_spec& spec, const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Scalar: break;
  }
  if (spec.secret)
    return "'********'";
  auto text = mask_url(node.Scalar());
  if (text.size() > 80)
    text = text.substr(0, 77) + "...";
  // A quoted "42" is a string in YAML; say so, or "got '42'" would puzzle.
  if (node.Tag() == "!")
    return "the string '" + text + "'";
  return "'" + text + "'";
}

// Checks for keys whose values have more structure than their type says
// (a list of maps, say), done by the parser of the code that reads them.
using value_check = caf::error (*)(const YAML::Node&);

caf::error check_cron_schedule(const YAML::Node& node) {
  auto entries = parse_cron_schedule(node);
  return entries ? caf::error{} : entries.error();
}

caf::error check_organizations(const YAML::Node& node) {
  auto xs = parse_organizations(node);
  return xs ? caf::error{} : xs.error();
}

caf::error check_projects(const YAML::Node& node) {
  auto xs = parse_projects(node);
  return xs ? caf::error{} : xs.error();
}

caf::error check_buffer_options(const YAML::Node& node) {
  auto xs = parse_service_options(node, "buffer.options",
                                  buffer_option_fields());
  return xs ? caf::error{} : xs.error();
}

caf::error check_tsdb_options(const YAML::Node& node) {
  auto xs = parse_service_options(node, "tsdb.options", tsdb_option_fields());
  return xs ? caf::error{} : xs.error();
}

caf::error check_filestore_options(const YAML::Node& node) {
  auto xs = parse_service_options(node, "filestore.options",
                                  filestore_option_fields());
  return xs ? caf::error{} : xs.error();
}

caf::error check_digests_options(const YAML::Node& node) {
  auto xs = parse_service_options(node, "digests.options",
                                  digests_option_fields());
  return xs ? caf::error{} : xs.error();
}

caf::error check_tsdb_rollups(const YAML::Node& node) {
  auto xs = parse_tsdb_rollups(node);
  return xs ? caf::error{} : xs.error();
}

caf::error check_extra_quotas(const YAML::Node& node) {
  auto xs = parse_extra_quotas(node);
  return xs ? caf::error{} : xs.error();
}

value_check find_value_check(std::string_view key) {
  if (key == "cron.schedule")
    return check_cron_schedule;
  if (key == "organizations")
    return check_organizations;
  if (key == "projects")
    return check_projects;
  if (key == "quotas.extra")
    return check_extra_quotas;
  if (key == "buffer.options")
    return check_buffer_options;
  if (key == "tsdb.options")
    return check_tsdb_options;
  if (key == "tsdb.rollups")
    return check_tsdb_rollups;
  if (key == "filestore.options")
    return check_filestore_options;
  if (key == "digests.options")
    return check_digests_options;
  return nullptr;
}

caf::error type_error(const key_spec& spec, const YAML::Node& node) {
  return bad("expected " + expected_text(spec) + ", got "
             + found_text(spec, node));
}

// Plain (unquoted, untagged) scalars are the only ones YAML resolves to
// ints, floats and booleans.
bool is_plain(const YAML::Node& node) {
  return node.IsScalar() && node.Tag() == "?";
}

bool in_range(const key_spec& spec, double x) {
  return x >= spec.min && x <= spec.max;
}

std::string to_flow_yaml(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << node;
  return out.c_str();
}

// The parts of "scheme://[userinfo@]host[:port][/path][?query]". The
// userinfo ends at the last '@' before any '?', so an unescaped '/' in a
// password does not hide it.
struct url_parts {
  std::string_view scheme;
  std::string_view host;
  std::string_view port; // without ':'
  bool has_port = false;
  std::string_view path; // from the first '/' after the host, without query
};

bool split_url(std::string_view url, url_parts& out) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0)
    return false;
  out.scheme = url.substr(0, sep);
  auto rest = url.substr(sep + 3);
  auto query = rest.find_first_of("?#");
  auto before_query = rest.substr(0, query);
  auto at = before_query.rfind('@');
  auto hostport_begin = at == std::string_view::npos ? 0 : at + 1;
  auto after_user = before_query.substr(hostport_begin);
  auto slash = after_user.find('/');
  auto hostport = after_user.substr(0, slash);
  out.path = slash == std::string_view::npos ? std::string_view{}
                                             : after_user.substr(slash);
  std::string_view::size_type colon;
  if (!hostport.empty() && hostport.front() == '[') {
    // IPv6 literal: "[::1]:6379".
    auto close = hostport.find(']');
    if (close == std::string_view::npos)
      return false;
    out.host = hostport.substr(0, close + 1);
    colon = close + 1 < hostport.size() && hostport[close + 1] == ':'
              ? close + 1
              : std::string_view::npos;
    if (colon == std::string_view::npos && close + 1 != hostport.size())
      return false;
  } else {
    colon = hostport.rfind(':');
    out.host = hostport.substr(0, colon);
  }
  if (colon != std::string_view::npos) {
    out.has_port = true;
    out.port = hostport.substr(colon + 1);
  }
  return true;
}

bool all_digits(std::string_view s) {
  return !s.empty()
         && std::all_of(s.begin(), s.end(),
                        [](char c) { return c >= '0' && c <= '9'; });
}

caf::error check_url(const key_spec& spec, const YAML::Node& node) {
  const auto& text = node.Scalar();
  url_parts parts;
  if (!split_url(text, parts))
    return type_error(spec, node);
  auto quoted = "'" + mask_url(text) + "'";
  auto scheme = ascii_lower(parts.scheme);
  if (std::find(spec.choices.begin(), spec.choices.end(), scheme)
      == spec.choices.end())
    return bad("unsupported URL scheme '" + std::string{parts.scheme}
               + "' in " + quoted + " (expected " + expected_text(spec)
               + ")");
  if (scheme == "memory") {
    // Only whether it parses matters here, not the value it yields.
    std::string why;
    if (!memory_url_max_messages(text, 1, why))
      return bad("URL " + quoted + ": " + why);
    return {};
  }
  // An SQLite URL names a file, not a host: sqlite:///abs or sqlite://rel.
  if (scheme == "sqlite") {
    if (text.size() <= parts.scheme.size() + 3)
      return bad("URL " + quoted + " names no file (expected "
                 "sqlite:///absolute/path or sqlite://relative/path)");
    return {};
  }
  if (parts.host.empty() || parts.host == "[]")
    return bad("URL " + quoted + " has no host");
  if (parts.has_port) {
    int64_t port = 0;
    if (!all_digits(parts.port) || !parse_int(parts.port, port) || port < 1
        || port > 65535)
      return bad("URL " + quoted + " has an invalid port '"
                 + std::string{parts.port} + "'");
  }
  if (scheme == "redis" && parts.path.size() > 1
      && !all_digits(parts.path.substr(1)))
    return bad("URL " + quoted + " has an invalid database number '"
               + std::string{parts.path.substr(1)}
               + "' (expected /0, /1, ...)");
  return {};
}

// Masks URL passwords in every string of a (cloned) node, and the whole
// value of any map entry whose key is "password" (or "secret_key", the
// filestore's S3 secret).
void mask_node(YAML::Node node) {
  if (node.IsScalar()) {
    auto masked = mask_url(node.Scalar());
    if (masked != node.Scalar())
      node = masked;
  } else if (node.IsSequence()) {
    for (auto item : node)
      mask_node(item);
  } else if (node.IsMap()) {
    for (auto kv : node) {
      if (kv.first.IsScalar()
          && (ascii_lower(kv.first.Scalar()) == "password"
              || ascii_lower(kv.first.Scalar()) == "secret_key")
          && !kv.second.IsNull())
        kv.second = "********";
      else
        mask_node(kv.second);
    }
  }
}

} // namespace

const char* to_string(key_type t) {
  switch (t) {
    case key_type::string: return "string";
    case key_type::integer: return "integer";
    case key_type::number: return "number";
    case key_type::boolean: return "boolean";
    case key_type::choice: return "choice";
    case key_type::url: return "url";
    case key_type::map: return "map";
    case key_type::list: return "list";
  }
  return "unknown";
}

const std::vector<key_spec>& config_schema() {
  static const std::vector<key_spec> schema = make_schema();
  return schema;
}

const key_spec* find_key_spec(std::string_view key) {
  const auto& schema = config_schema();
  auto i = std::lower_bound(
    schema.begin(), schema.end(), key,
    [](const key_spec& x, std::string_view k) { return x.key < k; });
  if (i == schema.end() || i->key != key)
    return nullptr;
  return &*i;
}

caf::expected<typed_value> parse_value(const key_spec& spec,
                                       const YAML::Node& value) try {
  if (!value.IsDefined() || value.IsNull())
    return type_error(spec, value);
  auto check = find_value_check(spec.key);
  if (check != nullptr)
    if (auto err = check(value))
      return err;
  typed_value out;
  out.set = true;
  switch (spec.type) {
    case key_type::string: {
      if (!value.IsScalar())
        return type_error(spec, value);
      out.text = value.Scalar();
      break;
    }
    case key_type::integer: {
      if (!is_plain(value) || !parse_int(value.Scalar(), out.integer)
          || !in_range(spec, static_cast<double>(out.integer)))
        return type_error(spec, value);
      out.number = static_cast<double>(out.integer);
      out.text = std::to_string(out.integer);
      break;
    }
    case key_type::number: {
      if (!is_plain(value) || !parse_double(value.Scalar(), out.number)
          || !in_range(spec, out.number))
        return type_error(spec, value);
      // Clamp before the cast: converting an out-of-range double is UB.
      constexpr double lim = 9.2e18;
      out.integer = static_cast<int64_t>(std::clamp(out.number, -lim, lim));
      out.text = value.Scalar();
      break;
    }
    case key_type::boolean: {
      if (!is_plain(value))
        return type_error(spec, value);
      auto text = ascii_lower(value.Scalar());
      if (text == "true" || text == "yes")
        out.boolean = true;
      else if (text == "false" || text == "no")
        out.boolean = false;
      else
        return type_error(spec, value);
      out.integer = out.boolean ? 1 : 0;
      out.number = out.boolean ? 1 : 0;
      out.text = out.boolean ? "true" : "false";
      break;
    }
    case key_type::choice: {
      if (!value.IsScalar())
        return type_error(spec, value);
      auto text = ascii_lower(value.Scalar());
      auto i = std::find(spec.choices.begin(), spec.choices.end(), text);
      if (i == spec.choices.end())
        return type_error(spec, value);
      out.text = *i;
      break;
    }
    case key_type::url: {
      if (!value.IsScalar())
        return type_error(spec, value);
      if (auto err = check_url(spec, value))
        return err;
      out.text = value.Scalar();
      break;
    }
    case key_type::map: {
      if (!value.IsMap())
        return type_error(spec, value);
      out.text = to_flow_yaml(value);
      break;
    }
    case key_type::list: {
      if (!value.IsSequence())
        return type_error(spec, value);
      size_t index = 0;
      for (const auto& item : value) {
        ++index;
        if (check != nullptr)
          continue; // items are not strings; `check` took them
        if (!item.IsScalar() || item.Scalar().empty())
          return bad("expected " + expected_text(spec) + ", got "
                     + found_text(spec, item) + " as item "
                     + std::to_string(index));
        out.items.push_back(item.Scalar());
      }
      out.text = to_flow_yaml(value);
      break;
    }
  }
  // Clone so that no two configs share mutable yaml-cpp state.
  out.node = YAML::Clone(value);
  return out;
} catch (const std::exception& e) {
  return bad(std::string{"cannot read the value: "} + e.what());
} catch (...) {
  return bad("cannot read the value");
}

typed_value default_value(const key_spec& spec) {
  if (spec.default_yaml.empty())
    return {};
  try {
    auto parsed = parse_value(spec, YAML::Load(spec.default_yaml));
    if (parsed)
      return std::move(*parsed);
  } catch (...) {
    // Only reachable with a broken table row; the unit tests catch those.
  }
  return {};
}

std::string display_value(const key_spec& spec, const typed_value& value) {
  if (!value.set)
    return "";
  if (spec.secret)
    return "********";
  if (spec.type != key_type::list && spec.type != key_type::map)
    return mask_url(value.text);
  try {
    auto copy = YAML::Clone(value.node);
    mask_node(copy);
    return to_flow_yaml(copy);
  } catch (...) {
    // Cannot show the value safely: show nothing rather than a secret.
    return "********";
  }
}

} // namespace vigil
