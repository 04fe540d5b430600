// The `vigil` command: parses the command line and the configuration, then
// hands over to the command's implementation (cli/commands.cpp, node/ or
// bench/).

#include <iostream>

#include <CLI/CLI.hpp>

#include "bench/bench_amqp_ceiling.hpp"
#include "bench/bench_buffer.hpp"
#include "bench/bench_digests.hpp"
#include "bench/bench_charts.hpp"
#include "bench/bench_ingest.hpp"
#include "bench/bench_quota.hpp"
#include "bench/bench_tasks.hpp"
#include "cli/buffer_commands.hpp"
#include "cli/cleanup_command.hpp"
#include "cli/filestore_commands.hpp"
#include "cli/mail_command.hpp"
#include "cli/commands.hpp"
#include "cli/inspect_commands.hpp"
#include "config/config.hpp"
#include "messages/errors.hpp"
#include "node/chartcuterie_mode.hpp"
#include "node/logging.hpp"
#include "node/node.hpp"

namespace {

std::vector<std::string> split_csv(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(',', start);
    if (end == std::string::npos)
      end = text.size();
    if (end > start)
      out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

constexpr const char* config_help
  = "configuration file (default: ./config.yml if present, else built-in "
    "defaults; VIGIL_<KEY> variables override keys)";

/// Adds `--config` to every subcommand below `app`, bound to the same
/// variable, so that `vigil run node --config x.yml` works as well as
/// `vigil --config x.yml run node` (and each --help shows it).
void add_config_option_everywhere(CLI::App& app, std::string& path) {
  for (auto* sub : app.get_subcommands({})) {
    sub->add_option("--config", path, config_help);
    add_config_option_everywhere(*sub, path);
  }
}

} // namespace

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{"vigil: an actor-model event processing engine for an "
               "error-tracking platform (Sentry's backend services, with "
               "Celery-compatible task workers)."};
  app.require_subcommand(1);
  // --help shows each option's default ("[64]"); subcommands inherit this.
  app.option_defaults()->always_capture_default();
  std::string config_path;
  app.add_option("--config", config_path, config_help);

  // run ----------------------------------------------------------------------
  auto* run = app.add_subcommand("run", "run a vigil process until SIGINT/SIGTERM");
  run->require_subcommand(1);
  node_options node_opts;
  std::string queues_csv;
  auto* run_node_cmd = run->add_subcommand(
    "node", "run every service in one process (the main job; embedded "
            "defaults need no Redis, RabbitMQ or PostgreSQL)");
  auto* run_worker_cmd = run->add_subcommand(
    "worker", "run task workers only, consuming the given queues");
  auto* run_web_cmd = run->add_subcommand(
    "web", "run the HTTP interface only (web.bind): Sentry ingestion "
           "endpoints, the read API and /_health/");
  auto* run_charts_cmd = run->add_subcommand(
    "chartcuterie",
    "run the chart renderer with Chartcuterie's HTTP API on "
    "chart-rendering.bind (default 127.0.0.1:7901): POST /render "
    "{requestId, style, data, width?, height?} answers a PNG; styles from "
    "chart-rendering.config (a file or an http URL, polled), else the "
    "built-in ones; GET /api/chartcuterie/healthcheck/live and /ready; "
    "see docs/CHARTS.md");
  bool cron_dry_run = false;
  size_t cron_count = 5;
  auto* run_cron_cmd = run->add_subcommand(
    "cron", "run the cron scheduler: send cron.schedule's tasks when due "
            "(one scheduler acts across the cluster, by a Redis lock)");
  run_cron_cmd->add_flag("--dry-run", cron_dry_run,
                         "print each entry's schedule and next fire times "
                         "(UTC), then exit; needs no server");
  run_cron_cmd->add_option("-n,--count", cron_count,
                           "fire times to print per entry with --dry-run "
                           "(default 5)")
    ->check(CLI::Range(1, 1000));
  for (auto* cmd : {run_node_cmd, run_worker_cmd}) {
    cmd->add_option("-Q,--queues", queues_csv,
                    "comma-separated queues to consume (default: tasks.queues, "
                    "else tasks.default-queue)");
    cmd->add_option("-c,--concurrency", node_opts.concurrency,
                    "worker threads (default: worker.concurrency, else the "
                    "number of cores)")
      ->default_str("");
  }

  // send-task ----------------------------------------------------------------
  send_task_options send_opts;
  auto* send = app.add_subcommand(
    "send-task", "publish one task (Celery protocol v2) and print its id");
  send->add_option("name", send_opts.name, "task name, e.g. vigil.echo")
    ->required();
  send->add_option("--args", send_opts.args_json,
                   "positional arguments as a JSON array");
  send->add_option("--kwargs", send_opts.kwargs_json,
                   "keyword arguments as a JSON object");
  send->add_option("--queue", send_opts.queue,
                   "queue (default: tasks.default-queue)");
  send->add_option("--countdown", send_opts.countdown,
                   "seconds to wait before the task may run")
    ->check(CLI::NonNegativeNumber);
  send->add_option("--expires", send_opts.expires,
                   "seconds after which the task is dropped unrun "
                   "(default: never)")
    ->default_str("")
    ->check(CLI::NonNegativeNumber);
  send->add_option("--priority", send_opts.priority, "priority 0..9")
    ->check(CLI::Range(0, 9));
  send->add_option("--serializer", send_opts.serializer,
                   "body serializer: msgpack (default) or json")
    ->check(CLI::IsMember({"msgpack", "json"}));
  send->add_option("--link", send_opts.link,
                   "task to run with the result when this one succeeds "
                   "(Celery's link=; repeatable)");
  send->add_option("--chain", send_opts.chain,
                   "tasks to chain after this one, comma-separated, each "
                   "given the previous result; prints every id, the last "
                   "line being the chain's result")
    ->delimiter(',');

  // dead-letters -------------------------------------------------------------
  auto* dead = app.add_subcommand(
    "dead-letters", "inspect and replay messages that could not be run");
  dead->require_subcommand(1);
  std::string dead_queue;
  bool dead_json = false;
  auto* dead_list = dead->add_subcommand("list", "list dead letters, newest first");
  dead_list->add_option("--queue", dead_queue, "only this queue");
  dead_list->add_flag("--json", dead_json, "print one JSON array");
  std::string replay_id;
  bool replay_all = false;
  auto* dead_replay = dead->add_subcommand(
    "replay", "requeue a dead letter by id, or all of them");
  dead_replay->add_option("id", replay_id, "dead letter id (see list)");
  dead_replay->add_flag("--all", replay_all, "requeue every dead letter");

  // config -------------------------------------------------------------------
  auto* cfg_cmd = app.add_subcommand("config", "show or check the configuration");
  cfg_cmd->require_subcommand(1);
  std::string get_key;
  auto* cfg_get = cfg_cmd->add_subcommand(
    "get", "print a key's effective value (secrets masked)");
  cfg_get->add_option("key", get_key, "dotted key, e.g. broker.url")->required();
  auto* cfg_keys = cfg_cmd->add_subcommand(
    "keys", "print every known key, its type, default and meaning (Markdown)");
  auto* cfg_validate = cfg_cmd->add_subcommand(
    "validate", "check the file and VIGIL_* overrides; list every problem");

  // filestore ----------------------------------------------------------------
  auto* fstore = app.add_subcommand(
    "filestore", "the configured filestore (filestore.backend): store, read, "
                 "remove, test and list files by key");
  fstore->require_subcommand(1);
  filestore_command_options fs_opts;
  auto* fs_put = fstore->add_subcommand("put", "store FILE (- = stdin) as KEY");
  fs_put->add_option("key", fs_opts.key, "key, e.g. attachments/1/a.bin")
    ->required();
  fs_put->add_option("file", fs_opts.file, "file to store (default: stdin)");
  fs_put->add_option("--content-type", fs_opts.content_type,
                     "content type (default application/octet-stream)");
  auto* fs_get = fstore->add_subcommand("get", "write KEY's bytes to FILE");
  fs_get->add_option("key", fs_opts.key, "key")->required();
  fs_get->add_option("-o,--output", fs_opts.file,
                     "file to write (default: stdout)");
  auto* fs_rm = fstore->add_subcommand("rm", "remove KEY");
  fs_rm->add_option("key", fs_opts.key, "key")->required();
  auto* fs_exists = fstore->add_subcommand(
    "exists", "print yes (exit 0) or no (exit 1)");
  fs_exists->add_option("key", fs_opts.key, "key")->required();
  auto* fs_ls = fstore->add_subcommand(
    "ls", "list the files under PREFIX (default: all): size and key, one a "
          "line, in key order");
  fs_ls->add_option("prefix", fs_opts.key, "key prefix, e.g. attachments/1/");
  fs_ls->add_flag("--json", fs_opts.json,
                  "print one JSON array of {key, size}");

  // cleanup ------------------------------------------------------------------
  auto* cleanup = app.add_subcommand(
    "cleanup", "retention: remove events and attachments (their files too) "
               "stored more than --days days ago, as Sentry's cleanup");
  double cleanup_days = 30;
  cleanup->add_option("--days", cleanup_days,
                      "keep what was stored in the last DAYS days "
                      "(default 30; 0 removes everything)")
    ->check(CLI::NonNegativeNumber);

  // mail ---------------------------------------------------------------------
  auto* mail = app.add_subcommand(
    "mail", "the configured mail backend (mail.backend, mail.host, ...)");
  mail->require_subcommand(1);
  mail_command_options mail_opts;
  auto* mail_send = mail->add_subcommand(
    "send", "send one mail now, one try (to check the mail.* settings)");
  mail_send->add_option("--to", mail_opts.to, "recipient (repeatable)")
    ->required();
  mail_send->add_option("--subject", mail_opts.subject,
                        "subject, after mail.subject-prefix");
  mail_send->add_option("--text", mail_opts.text, "the text part");
  mail_send->add_option("--text-file", mail_opts.text_file,
                        "the text part, from a file");
  mail_send->add_option("--html-file", mail_opts.html_file,
                        "an HTML part, from a file");
  mail_send->add_option("--image", mail_opts.images,
                        "CID=FILE: an image the HTML shows as cid:CID "
                        "(repeatable)");

  // buffer -------------------------------------------------------------------
  auto* buf = app.add_subcommand(
    "buffer", "the write buffer's shared store (buffer.backend: redis): "
              "apply what is pending to SQL, show it, add increments");
  buf->require_subcommand(1);
  buffer_flush_command_options buf_flush_opts;
  auto* buf_flush = buf->add_subcommand(
    "flush", "apply every pending row to db.url now, as the cron's "
             "process_pending + process_incr do, under the same locks; "
             "prints the rows and increments applied");
  buf_flush->add_option("--batch-size", buf_flush_opts.batch_size,
                        "rows per SQL transaction")
    ->check(CLI::PositiveNumber);
  buf_flush->add_option("--lock-wait", buf_flush_opts.lock_wait,
                        "seconds to wait for another process_pending to "
                        "release the pending set's lock")
    ->check(CLI::NonNegativeNumber);
  buf_flush->add_flag("--json", buf_flush_opts.json, "print one JSON object");
  bool buf_stats_json = false;
  auto* buf_stats = buf->add_subcommand(
    "stats", "pending rows per partition and takes in flight");
  buf_stats->add_flag("--json", buf_stats_json, "print one JSON object");
  buffer_incr_command_options buf_incr_opts;
  auto* buf_incr = buf->add_subcommand(
    "incr", "send one row's increment COUNT times through a buffer actor "
            "to the store, as ingestion does (e.g. --filter id=42 "
            "--column times_seen --extra last_seen=now)");
  buf_incr->add_option("--model", buf_incr_opts.model,
                       "Django model name of the row");
  buf_incr->add_option("--filter", buf_incr_opts.filters,
                       "column=value finding the row (repeatable; an "
                       "integer value is typed as one)")
    ->required();
  buf_incr->add_option("--column", buf_incr_opts.columns,
                       "counter[=amount] to add (repeatable; default "
                       "times_seen=1)");
  buf_incr->add_option("--extra", buf_incr_opts.extra,
                       "column=value set rather than added (repeatable; "
                       "'now' = the current time)");
  buf_incr->add_option("-n,--count", buf_incr_opts.count,
                       "times the increment is sent")
    ->check(CLI::PositiveNumber);
  buf_incr->add_option("--batch", buf_incr_opts.batch,
                       "increments per request to the buffer actor")
    ->check(CLI::PositiveNumber);
  buf_incr->add_option("--clients", buf_incr_opts.clients,
                       "client threads sending requests")
    ->check(CLI::PositiveNumber);
  buf_incr->add_flag("--json", buf_incr_opts.json, "print one JSON object");

  // bench --------------------------------------------------------------------
  auto* bench = app.add_subcommand("bench", "measure throughput and latency");
  bench->require_subcommand(1);
  bench_tasks_options bench_opts;
  auto* bench_tasks = bench->add_subcommand(
    "tasks", "produce and consume no-op tasks end to end, with acks");
  bench_tasks->add_option("--broker", bench_opts.broker_url,
                          "broker URL (default: broker.url)");
  bench_tasks->add_option("--count", bench_opts.count, "tasks to run")
    ->check(CLI::PositiveNumber);
  bench_tasks->add_option("-c,--concurrency", bench_opts.concurrency,
                          "worker threads")
    ->check(CLI::PositiveNumber);
  bench_tasks->add_option("--consumers", bench_opts.consumers,
                          "broker connections consuming in parallel")
    ->check(CLI::PositiveNumber);
  bench_tasks->add_option("--prefetch", bench_opts.prefetch,
                          "deliveries held unacknowledged at once")
    ->check(CLI::PositiveNumber);
  bench_tasks->add_option("--publish-batch", bench_opts.publish_batch,
                          "messages per publish round trip")
    ->check(CLI::PositiveNumber);
  bench_tasks->add_flag("--json", bench_opts.json, "print one JSON object");
  bench_amqp_ceiling_options ceiling_opts;
  auto* bench_ceiling = bench->add_subcommand(
    "amqp-ceiling", "RabbitMQ's own ceiling: publish with confirms and "
                    "consume with acks, no task work");
  bench_ceiling->add_option("--broker", ceiling_opts.broker_url,
                            "amqp:// URL (default: broker.url)");
  bench_ceiling->add_option("--messages", ceiling_opts.messages,
                            "messages to send")
    ->check(CLI::PositiveNumber);
  bench_ceiling->add_option("--size", ceiling_opts.size,
                            "bytes per message, properties included "
                            "(default: one bench tasks message)")
    ->default_str("");
  bench_ceiling->add_option("--confirm-batch", ceiling_opts.confirm_batch,
                            "messages published between confirm waits")
    ->check(CLI::PositiveNumber);
  bench_ceiling->add_option("--confirm-window", ceiling_opts.confirm_window,
                            "confirms a wait may leave outstanding");
  bench_ceiling->add_option("--prefetch", ceiling_opts.prefetch,
                            "consumer basic.qos prefetch")
    ->check(CLI::Range(1, 65535));
  bench_ceiling->add_option("--ack-batch", ceiling_opts.ack_batch,
                            "deliveries per multiple ack at most")
    ->check(CLI::PositiveNumber);
  bench_ceiling->add_flag("--task-headers", ceiling_opts.task_headers,
                          "send vigil's task properties and headers");
  bench_ceiling->add_flag("!--no-cork", ceiling_opts.cork,
                          "publish without TCP_CORK (one segment per "
                          "message)");
  bench_ceiling->add_flag("--json", ceiling_opts.json, "print one JSON object");
  bench_quota_options bench_quota_opts;
  auto* bench_quota = bench->add_subcommand(
    "quota", "decide quota checks through the batching quota actor, beside "
             "a one-EVALSHA-per-check baseline");
  bench_quota->add_option("--backend", bench_quota_opts.backend,
                          "memory or redis (default: quotas.backend)")
    ->check(CLI::IsMember({"memory", "redis"}));
  bench_quota->add_option("--url", bench_quota_opts.url,
                          "Redis URL (default: quotas.options.cluster)");
  bench_quota->add_option("--count", bench_quota_opts.count, "checks to decide")
    ->check(CLI::PositiveNumber);
  bench_quota->add_option("--clients", bench_quota_opts.clients,
                          "client threads")
    ->check(CLI::PositiveNumber);
  bench_quota->add_option("--in-flight", bench_quota_opts.in_flight,
                          "checks each client keeps in flight")
    ->check(CLI::PositiveNumber);
  bench_quota->add_option("--limit", bench_quota_opts.limit,
                          "exactness mode: one key quota with this limit; "
                          "prints the accepted count (default: off)")
    ->default_str("")
    ->check(CLI::NonNegativeNumber);
  bench_quota->add_option("--window", bench_quota_opts.window,
                          "quota window in seconds")
    ->check(CLI::PositiveNumber);
  bench_quota->add_option("--baseline-count", bench_quota_opts.baseline_count,
                          "checks for the one-EVALSHA-per-check baseline "
                          "(0 = skip)");
  bench_quota->add_option("--client-batch", bench_quota_opts.client_batch,
                          "checks per client message (1 = one check per "
                          "message)")
    ->check(CLI::PositiveNumber);
  bench_quota->add_option("--exhausted-share", bench_quota_opts.exhausted_share,
                          "percent of checks sent to small, soon exhausted "
                          "quotas (rejected from the local cache)")
    ->check(CLI::Range(0, 100));
  bench_quota->add_flag("--json", bench_quota_opts.json,
                        "print one JSON object");
  bench_buffer_options bench_buffer_opts;
  auto* bench_buffer = bench->add_subcommand(
    "buffer", "send counter increments through the write buffer, flush them "
              "into SQLite, beside a one-UPDATE-per-event baseline");
  bench_buffer->add_option("--backend", bench_buffer_opts.backend,
                           "memory or redis (default: buffer.backend)")
    ->check(CLI::IsMember({"memory", "redis"}));
  bench_buffer->add_option("--url", bench_buffer_opts.url,
                           "Redis URL (default: buffer.options.cluster)");
  bench_buffer->add_option("--count", bench_buffer_opts.count,
                           "increments to send")
    ->check(CLI::PositiveNumber);
  bench_buffer->add_option("--clients", bench_buffer_opts.clients,
                           "client threads")
    ->check(CLI::PositiveNumber);
  bench_buffer->add_option("--client-batch", bench_buffer_opts.client_batch,
                           "increments per client request")
    ->check(CLI::PositiveNumber);
  bench_buffer->add_option("--rows", bench_buffer_opts.rows,
                           "distinct rows (groups) counted into")
    ->check(CLI::PositiveNumber);
  bench_buffer->add_flag("--summed", bench_buffer_opts.summed,
                         "clients sum their increments per row before "
                         "sending (one buffer_batch per request), as an "
                         "ingest batch can");
  bench_buffer->add_option("--baseline-count", bench_buffer_opts.baseline_count,
                           "events for the one-UPDATE-per-event baseline "
                           "(0 = skip)");
  bench_buffer->add_flag("--json", bench_buffer_opts.json,
                         "print one JSON object");
  bench_digests_options bench_digests_opts;
  auto* bench_digests = bench->add_subcommand(
    "digests", "add digest records in pipelined batches beside one script "
               "call per record, then schedule, open and close the digests "
               "of 10,000 projects");
  bench_digests->add_option("--backend", bench_digests_opts.backend,
                            "memory or redis (default: digests.backend)")
    ->check(CLI::IsMember({"memory", "redis"}));
  bench_digests->add_option("--redis", bench_digests_opts.redis_url,
                            "Redis URL (default: digests.options.cluster)");
  bench_digests->add_option("--records", bench_digests_opts.records,
                            "records added in batches")
    ->check(CLI::PositiveNumber);
  bench_digests->add_option("--batch", bench_digests_opts.batch,
                            "records per add_many call")
    ->check(CLI::PositiveNumber);
  bench_digests->add_option("--clients", bench_digests_opts.clients,
                            "client threads, each with its own connection")
    ->check(CLI::PositiveNumber);
  bench_digests->add_option("--baseline-records",
                            bench_digests_opts.baseline_records,
                            "records added with one script call each "
                            "(0 = skip)");
  bench_digests->add_option("--projects", bench_digests_opts.projects,
                            "timelines the records spread over")
    ->check(CLI::PositiveNumber);
  bench_digests->add_option("--value-size", bench_digests_opts.value_size,
                            "bytes of each record's value");
  bench_digests->add_flag("--uniform", bench_digests_opts.uniform,
                          "spread records round-robin over the projects "
                          "(the worst case) instead of Zipf-distributed");
  bench_digests->add_flag("--json", bench_digests_opts.json,
                          "print one JSON object");
  bench_ingest_options bench_ingest_opts;
  auto* bench_ingest = bench->add_subcommand(
    "ingest", "post a ~2 KiB Sentry event to a node's store endpoint with "
              "wrk (bench/ingest_post.lua), beside nginx answering a static "
              "200");
  bench_ingest->add_option("--duration", bench_ingest_opts.duration,
                           "seconds of each measured run")
    ->check(CLI::PositiveNumber);
  bench_ingest->add_option("--connections", bench_ingest_opts.connections,
                           "keep-alive connections")
    ->check(CLI::PositiveNumber);
  bench_ingest->add_option("--rounds", bench_ingest_opts.rounds,
                           "measured rounds (nginx, then the node)")
    ->check(CLI::PositiveNumber);
  bench_ingest->add_option("--event", bench_ingest_opts.event_path,
                           "event JSON to post (default: a built-in Python "
                           "SDK exception)");
  bench_ingest->add_option("--script", bench_ingest_opts.script,
                           "the wrk script (default: bench/ingest_post.lua)");
  bench_ingest->add_option("--threads", bench_ingest_opts.threads,
                           "node web.threads and nginx worker processes")
    ->check(CLI::PositiveNumber);
  bench_ingest->add_flag("--keep", bench_ingest_opts.keep,
                         "keep the temporary directory");
  bench_ingest->add_flag("--json", bench_ingest_opts.json,
                         "print one JSON object");
  bench_ingest->add_option("--services", bench_ingest_opts.services,
                           "how the node counts events: default (its "
                           "configuration's defaults), off (issue counts in "
                           "the ingest transaction, no TSDB), memory or "
                           "redis (write buffer and TSDB on that backend)")
    ->capture_default_str()
    ->check(CLI::IsMember({"default", "off", "memory", "redis"}));
  bench_ingest->add_flag("--against-off", bench_ingest_opts.against_off,
                         "also run a node with the counters off beside it "
                         "in every round and report the rate as a share of "
                         "that node's");
  bench_ingest->add_option("--redis-url", bench_ingest_opts.redis_url,
                           "an empty Redis database for --services redis "
                           "(redis://host:port/N)");

  bench_charts_options bench_charts_opts;
  auto* bench_charts = bench->add_subcommand(
    "charts", "render the built-in chart styles (450x150, generated data) "
              "natively on N threads, beside Node with echarts and resvg "
              "(bench/charts_node.mjs) in N processes");
  bench_charts->add_option("--threads", bench_charts_opts.threads,
                           "rendering threads and Node processes (default: "
                           "the cores)");
  bench_charts->add_option("--seconds", bench_charts_opts.seconds,
                           "measured seconds of each renderer, split over "
                           "the styles")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  bench_charts->add_option("--count", bench_charts_opts.count,
                           "renders per style and thread instead of a time");
  bench_charts->add_option("--variants", bench_charts_opts.variants,
                           "distinct request bodies per style")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  bench_charts->add_option("--seed", bench_charts_opts.seed,
                           "seed of the generated data");
  bench_charts->add_flag("!--no-node", bench_charts_opts.node,
                         "skip the Node peer");
  bench_charts->add_option("--node-script", bench_charts_opts.node_script,
                           "the peer (default: bench/charts_node.mjs)");
  bench_charts->add_option("--node-modules", bench_charts_opts.node_modules,
                           "where echarts and @resvg/resvg-js are installed "
                           "(default: tests/js/node_modules)");
  bench_charts->add_option("--save", bench_charts_opts.save_dir,
                           "write each style's first chart there as PNG "
                           "(vigil's charts-NAME.png, Node's node-NAME.png)");
  bench_charts->add_flag("--steps", bench_charts_opts.steps,
                         "first measure the renderer's optimisations one "
                         "at a time, each added to the previous");
  bench_charts->add_option("--tuning", bench_charts_opts.tuning,
                           "optimisations on in the main run: all, none, or "
                           "a comma list of own-png, reuse-canvas, "
                           "cache-text (to profile one)")
    ->capture_default_str();
  bench_charts->add_flag("--http", bench_charts_opts.http,
                         "also render through vigil run chartcuterie "
                         "(POST /render, keep-alive clients)");
  bench_charts->add_flag("--json", bench_charts_opts.json,
                         "print one JSON object");

  // nodes, inspect -----------------------------------------------------------
  bool nodes_json = false;
  auto* nodes_cmd = app.add_subcommand(
    "nodes", "list the cluster's nodes announced in Redis "
             "(redis.clusters.default): id, mode, host, pid, version, "
             "started, queues, management endpoint");
  nodes_cmd->add_flag("--json", nodes_json, "print one JSON array");
  inspect_options inspect_opts;
  auto* inspect_cmd = app.add_subcommand(
    "inspect", "watch every node's actors live, like top (keys: m/r/e sort "
               "by mailbox, rate, errors; n or 1-9 pick a node; Enter an "
               "actor's detail; q quit), or print one snapshot with --json; "
               "see docs/INSPECT.md");
  inspect_cmd->add_flag("--json", inspect_opts.json,
                        "print one snapshot of every node as JSON and exit");
  inspect_cmd->add_option("--node", inspect_opts.node,
                          "HOST:PORT of one node's management endpoint "
                          "(its inspect.bind)");
  inspect_cmd->add_option("--token", inspect_opts.token,
                          "bearer token of the endpoints (default: "
                          "inspect.token)");
  inspect_cmd->add_option("--interval", inspect_opts.interval,
                          "seconds between refreshes of the live view")
    ->check(CLI::Range(0.2, 3600.0));

  // --config is accepted before or after the subcommand, on every level.
  add_config_option_everywhere(app, config_path);
  CLI11_PARSE(app, argc, argv);

  if (cfg_keys->parsed())
    return config_keys_command();
  // config validate reads the file itself, so it can list every problem.
  if (cfg_validate->parsed())
    return config_validate_command(config_path);
  auto cfg = config::load(config_path, vigil_environment());
  if (!cfg) {
    std::cerr << "vigil: invalid configuration:\n"
              << error_text(cfg.error()) << "\n";
    return 2;
  }
  if (auto err = setup_logging(cfg->get_string("log.level"),
                               cfg->get_string("log.format"))) {
    std::cerr << "vigil: " << error_text(err) << "\n";
    return 2;
  }
  if (run_node_cmd->parsed() || run_worker_cmd->parsed()
      || run_web_cmd->parsed()) {
    node_opts.mode = run_node_cmd->parsed()  ? "node"
                     : run_web_cmd->parsed() ? "web"
                                             : "worker";
    node_opts.queues = split_csv(queues_csv);
    return run_node(*cfg, node_opts);
  }
  if (run_charts_cmd->parsed())
    return run_chartcuterie(*cfg);
  if (run_cron_cmd->parsed())
    return run_cron(*cfg, cron_dry_run, cron_count);
  if (nodes_cmd->parsed())
    return nodes_command(*cfg, nodes_json);
  if (inspect_cmd->parsed())
    return inspect_command(*cfg, inspect_opts);
  if (send->parsed())
    return send_task_command(*cfg, send_opts);
  if (dead_list->parsed())
    return dead_letters_list_command(*cfg, dead_queue, dead_json);
  if (dead_replay->parsed())
    return dead_letters_replay_command(*cfg, replay_id, replay_all);
  if (cfg_get->parsed())
    return config_get_command(*cfg, get_key);
  if (mail_send->parsed())
    return mail_send_command(*cfg, mail_opts);
  if (cleanup->parsed())
    return cleanup_command(*cfg, cleanup_days);
  if (fs_put->parsed())
    return filestore_put_command(*cfg, fs_opts);
  if (fs_get->parsed())
    return filestore_get_command(*cfg, fs_opts);
  if (fs_rm->parsed())
    return filestore_rm_command(*cfg, fs_opts);
  if (fs_exists->parsed())
    return filestore_exists_command(*cfg, fs_opts);
  if (fs_ls->parsed())
    return filestore_ls_command(*cfg, fs_opts);
  if (buf_flush->parsed())
    return buffer_flush_command(*cfg, buf_flush_opts);
  if (buf_stats->parsed())
    return buffer_stats_command(*cfg, buf_stats_json);
  if (buf_incr->parsed())
    return buffer_incr_command(*cfg, buf_incr_opts);
  if (bench_tasks->parsed())
    return bench_tasks_command(*cfg, bench_opts);
  if (bench_quota->parsed())
    return bench_quota_command(*cfg, bench_quota_opts);
  if (bench_buffer->parsed())
    return bench_buffer_command(*cfg, bench_buffer_opts);
  if (bench_digests->parsed())
    return bench_digests_command(*cfg, bench_digests_opts);
  if (bench_ingest->parsed())
    return bench_ingest_command(*cfg, bench_ingest_opts);
  if (bench_ceiling->parsed())
    return bench_amqp_ceiling_command(*cfg, ceiling_opts);
  if (bench_charts->parsed())
    return bench_charts_command(*cfg, bench_charts_opts);
  std::cerr << app.help();
  return 2;
}
