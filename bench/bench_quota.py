#!/usr/bin/python3
"""Runs `vigil bench quota` several times per configuration and prints the
median of each figure, with the machine's conditions, for docs/BENCHMARKS.md.

Starts a private redis-server on a free loopback port (no persistence) unless
--url is given, runs the configurations interleaved (so that a burst of load
from other processes hits them all alike), and prints the machine's
conditions (load average, how busy the CPUs were just before each run) and
one JSON object per configuration: the medians and the min and max
throughput.

Run: /usr/bin/python3 bench/bench_quota.py --vigil build/vigil [--repeats 7]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, backend, extra arguments
CONFIGS = [
    ("redis, 2 clients x 16384 in flight, messages of 2048",
     "redis", ["--clients", "2", "--in-flight", "16384",
               "--client-batch", "2048"]),
    ("redis, 4 clients x 8192 in flight, messages of 1024 (defaults)",
     "redis", []),
    ("redis, 4 clients x 2048 in flight, one check per message",
     "redis", ["--in-flight", "2048", "--client-batch", "1"]),
    ("memory, defaults", "memory", []),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir):
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, "redis://127.0.0.1:%d/0" % port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def cpu_times():
    with open("/proc/stat") as f:
        xs = [int(x) for x in f.readline().split()[1:]]
    return sum(xs), xs[3] + xs[4]  # total, idle + iowait


def conditions():
    """The load average and how busy the CPUs were (by anyone) over the
    half second before a run."""
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    t0, i0 = cpu_times()
    time.sleep(0.5)
    t1, i1 = cpu_times()
    busy = 100.0 * (1 - (i1 - i0) / max(t1 - t0, 1))
    return {"loadavg": " ".join(load), "cpu_busy_pct": round(busy)}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vigil", default=os.path.join(ROOT, "build", "vigil"))
    ap.add_argument("--url", help="Redis URL (default: a private server)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--count", type=int, default=1000000)
    ap.add_argument("--baseline-count", type=int, default=5000)
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="vigil-bench-quota-")
    redis = None
    url = args.url
    if url is None:
        redis, url = start_redis(workdir)
    runs = {name: [] for name, _, _ in CONFIGS}
    samples = []
    try:
        for _ in range(args.repeats):
            for name, backend, extra in CONFIGS:
                samples.append(conditions())
                argv = [args.vigil, "bench", "quota", "--backend", backend,
                        "--count", str(args.count), "--baseline-count",
                        str(args.baseline_count), "--json"] + extra
                if backend == "redis":
                    argv += ["--url", url]
                out = subprocess.run(argv, stdout=subprocess.PIPE, text=True,
                                     timeout=600)
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
    busy = [c["cpu_busy_pct"] for c in samples]
    print(json.dumps({"cores": os.cpu_count(), "repeats": args.repeats,
                      "cpu_busy_pct_before_runs": {
                          "median": statistics.median(busy),
                          "min": min(busy), "max": max(busy)},
                      "loadavg": [c["loadavg"] for c in samples[::len(CONFIGS)]]}))
    for name, _, _ in CONFIGS:
        rs = runs[name]
        med = {k: statistics.median(r[k] for r in rs)
               for k in ("throughput_per_s", "p50_ms", "p99_ms",
                         "baseline_per_s", "cache_hits", "runs", "batches")}
        tp = [r["throughput_per_s"] for r in rs]
        med["throughput_min"] = min(tp)
        med["throughput_max"] = max(tp)
        med["speedup_of_medians"] = round(
            med["throughput_per_s"] / med["baseline_per_s"], 1) \
            if med["baseline_per_s"] else 0
        print(json.dumps({"config": name, "median": med}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
