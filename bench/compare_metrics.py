#!/usr/bin/python3
"""What vigil's internal metrics cost: the ingest and tasks benchmarks with
metrics off, statsd (to a local UDP sink) and prometheus, in one run,
interleaved.

1. ingest: `vigil bench ingest --metrics off,statsd,prometheus
   --metrics-port SINK`: three nodes (one per backend, same config
   otherwise) and nginx take turns in every round; each node's median rate
   is reported as a share of the metrics-off node's.
2. tasks: --repeat rounds of `vigil bench tasks --metrics B --count N
   --json` on the memory:// broker (or --broker) for B in (off, statsd, prometheus),
   the order rotating from round to round; medians, and each as a share of
   off.

The UDP sink (a thread of this script) receives the statsd datagrams and
counts them, so that "statsd" is shown to have sent. Prometheus is not
scraped (a scrape every 15 s costs nothing measurable next to the load).

Output: progress on stderr, one JSON object on stdout.
Run: /usr/bin/python3 bench/compare_metrics.py --vigil build/vigil
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading

BACKENDS = ["off", "statsd", "prometheus"]


class Sink:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.port = self.sock.getsockname()[1]
        self.datagrams = 0
        self.bytes = 0
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            data = self.sock.recv(65535)
            self.datagrams += 1
            self.bytes += len(data)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def tasks_round(vigil, config, backend, count, concurrency, broker):
    extra = ["--broker", broker] if broker else []
    if broker.startswith("redis://"):
        # A fresh database per run, as bench/compare_tasks.py does.
        subprocess.run(["redis-cli", "-u", broker, "flushdb"], check=True,
                       capture_output=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [vigil, "--config", config, "bench", "tasks", "--metrics", backend,
         *extra,
         "--count", str(count), "-c", str(concurrency), "--consumers", "2",
         "--json"], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"bench tasks ({backend}): {out.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    # The bench process's CPU (user + system) per task: steadier than the
    # rate on a machine others load.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    r["cpu_us_per_task"] = cpu * 1e6 / max(1, r["completed"])
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigil", default="build/vigil")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--count", type=int, default=200000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--ingest-rounds", type=int, default=3)
    ap.add_argument("--ingest-duration", type=float, default=8)
    ap.add_argument("--broker", default="",
                    help="bench tasks' broker (default memory://); a "
                    "redis:// database is flushed before every run")
    ap.add_argument("--backends", default=",".join(BACKENDS),
                    help="the order of the backends (off first or not: the "
                    "ingest nodes take turns from it)")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-tasks", action="store_true")
    args = ap.parse_args()
    BACKENDS[:] = args.backends.split(",")
    sink = Sink()
    result = {"sink_port": sink.port}
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "bench.yml")
        with open(config, "w") as f:
            f.write(f"metrics.options: {{port: {sink.port}}}\n"
                    "log.level: warning\n")
        if not args.skip_tasks:
            runs = {b: [] for b in BACKENDS}
            for i in range(args.repeat):
                order = BACKENDS[i % 3:] + BACKENDS[:i % 3]
                for b in order:
                    r = tasks_round(args.vigil, config, b, args.count,
                                    args.concurrency, args.broker)
                    runs[b].append(r)
                    log(f"tasks round {i + 1} {b}: "
                        f"{r['throughput_per_s']:.0f}/s, "
                        f"{r['cpu_us_per_task']:.2f} us CPU/task")
            med = {b: statistics.median(r["throughput_per_s"] for r in runs[b])
                   for b in BACKENDS}
            cpu = {b: statistics.median(r["cpu_us_per_task"] for r in runs[b])
                   for b in BACKENDS}
            result["tasks"] = {
                "median_cpu_us_per_task": cpu,
                "cpu_ratio_to_off": {b: cpu[b] / cpu["off"] for b in BACKENDS},
                "cpu_runs": {b: [round(r["cpu_us_per_task"], 2)
                                 for r in runs[b]] for b in BACKENDS},
                "broker": args.broker or "memory://",
                "count": args.count, "concurrency": args.concurrency,
                "rounds": args.repeat,
                "median_per_s": med,
                "ratio_to_off": {b: med[b] / med["off"] for b in BACKENDS},
                "runs": {b: [r["throughput_per_s"] for r in runs[b]]
                         for b in BACKENDS}}
            log("tasks:", json.dumps(result["tasks"]["ratio_to_off"]),
                json.dumps(result["tasks"]["cpu_ratio_to_off"]))
        if not args.skip_ingest:
            out = subprocess.run(
                [args.vigil, "--config", config, "bench", "ingest",
                 "--metrics", ",".join(BACKENDS), "--metrics-port",
                 str(sink.port), "--rounds", str(args.ingest_rounds),
                 "--duration", str(args.ingest_duration), "--json"],
                capture_output=True, text=True, timeout=1800)
            if out.returncode != 0:
                log(out.stderr[-3000:])
                raise RuntimeError("bench ingest failed")
            log(out.stderr.strip())
            doc = json.loads(out.stdout.strip().splitlines()[-1])
            result["ingest"] = {
                "nginx_per_s": doc["nginx_throughput_per_s"],
                "other_load_cores": doc["other_load_cores"],
                "nodes": [{k: n[k] for k in (
                    "metrics", "throughput_per_s", "p50_ms", "p99_ms",
                    "cpu_us_per_event", "stored_ok", "ratio_to_metrics_off")}
                    | {"rounds": [r["per_s"] for r in n["rounds"]]}
                    for n in doc["metrics_nodes"]]}
            log("ingest:", json.dumps(result["ingest"]))
    result["sink_datagrams"] = sink.datagrams
    result["sink_bytes"] = sink.bytes
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
