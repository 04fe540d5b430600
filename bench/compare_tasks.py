#!/usr/bin/python3
"""Compare vigil's task throughput with a Celery 5 worker and with Redis.

One run, one private redis-server (started here on a free loopback port with
--save "" --appendonly no, stopped at the end). After one vigil warm-up run
of min(N, 50000) tasks (not counted), --repeat rounds each measure, in this
order (so that drift in the shared machine's load touches every figure):

1. vigil: `vigil bench tasks --broker redis://127.0.0.1:PORT/1 --count N
   -c C --consumers K --json` for (C, K) = (2, 2) and (4, 4), FLUSHDB before
   every run. One process publishes N no-op tasks from a producer thread
   while K consumer connections and C worker threads run and acknowledge
   them (kombu layout). The clock runs from the start of publishing until
   every task ran and the `unacked` hash is empty, so publishing is inside
   the measured time.
2. Celery: Celery 5 solo worker (-P solo --without-mingle --without-gossip
   --without-heartbeat -c 1 --loglevel WARNING), msgpack serializer and
   accept_content ['msgpack'], task bench.noop(i) with ignore_result=True,
   on db 2 of the same Redis (FLUSHDB first). A separate client process
   pre-loads --celery-count tasks with noop.apply_async in a loop over one
   producer (its rate is the publisher rate); then the worker starts, and
   this script polls Redis every 10 ms: the clock starts when the queue
   length first drops below the pre-loaded count and stops when the queue
   is empty and the `unacked` hash is empty. Throughput = tasks / that time.
3. The Redis ceiling: redis-benchmark -P 64 -n 2000000 -t lpush,rpop -q
   (on db 3), with the default 3-byte payload and with -d 770 (about the size
   of one vigil envelope). Ceiling = min(median LPUSH, median RPOP).

Reported: the median of each figure over the rounds; the vigil configuration
with the higher median; vigil / Celery; vigil tasks/s as a fraction of each
ceiling, and 6 x vigil tasks/s (Redis operations per task) against it.

For every measurement the script also records how much CPU the rest of the
machine used meanwhile (from /proc/stat, minus this script, its children and
its redis-server): the machine is shared, and a compiler running next to a
benchmark halves it.

Output: progress on stderr; a human summary on stdout, or with --json the
summary on stderr and one JSON object (every raw run and the derived figures)
on stdout. Exit status 0 when every measurement worked, 1 otherwise.

Run it with /usr/bin/python3 (Debian's python3-celery, python3-redis).

With --broker amqp the same comparison runs on a private rabbitmq-server
instead: vigil on AMQP, a Celery prefork worker (-c 2, acks_late) and the
broker's own ceiling (`vigil bench amqp-ceiling`); see
bench/compare_tasks_amqp.py for what each measures.
"""

import argparse
import importlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = "/usr/bin/python3"

VIGIL_CONFIGS = [(2, 2), (4, 4)]      # (-c workers, --consumers)
VIGIL_DB = 1
CELERY_DB = 2
REDIS_BENCH_DB = 3
REDIS_BENCH_N = 2_000_000
REDIS_BENCH_PIPELINE = 64
VIGIL_ENVELOPE_BYTES = 770            # approximate size of one vigil message
REDIS_OPS_PER_VIGIL_TASK = 6          # LPUSH, take, HSET, ZADD, ZREM, HDEL
REDIS_OPS_NOTE = (
    "each vigil task costs 6 Redis operations (LPUSH by the producer; take, "
    "HSET, ZADD when a consumer takes it; ZREM, HDEL when it is acked), so "
    "fraction_of_ceiling is tasks/s against one command's ops/s (per task, "
    "not per op); redis_ops_per_s_implied = 6 x tasks/s is the per-op view")
CELERY_POLL_S = 0.01
OTHER_CPU_WARN = 0.10                 # share of all cores used by others

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def log(msg):
    try:
        print(f"[compare_tasks] {msg}", file=sys.stderr, flush=True)
    except (OSError, ValueError):      # stderr closed (e.g. `| head`)
        pass


# --------------------------------------------------------------------------
# child processes: own session, killed (whole group) in finally

_CHILDREN = []


def spawn(argv, log_path, env=None, cwd=None):
    f = open(log_path, "ab")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, env=env, cwd=cwd,
                             start_new_session=True)
    finally:
        f.close()
    _CHILDREN.append(p)
    return p


def run_capture(argv, timeout, env=None, cwd=None, stderr_path=None):
    """Runs argv to completion (bounded); returns (rc, stdout, stderr)."""
    err = open(stderr_path, "wb") if stderr_path else subprocess.PIPE
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=err, env=env,
                             cwd=cwd, start_new_session=True)
        _CHILDREN.append(p)
        try:
            out, errb = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p)
            p.communicate(timeout=10)
            return None, "", f"timed out after {timeout:g} s"
    finally:
        if stderr_path:
            err.close()
    if stderr_path:
        errb = Path(stderr_path).read_bytes()[-4000:]
    return p.returncode, out.decode(errors="replace"), \
        (errb or b"").decode(errors="replace")


def kill_group(p, sig=signal.SIGKILL):
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            p.kill()


def stop(p, timeout=10.0):
    """SIGTERM to p's group, then SIGKILL after `timeout` s; reaps it."""
    if p.poll() is None:
        kill_group(p, signal.SIGTERM)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    kill_group(p)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def kill_all_children():
    for p in _CHILDREN:
        kill_group(p)
    for p in _CHILDREN:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------
# CPU used by the rest of the machine during a measurement


def _proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])      # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


class CpuWindow:
    """Busy CPU of the whole machine minus ours (this script, its reaped
    children, its live redis-server), between start() and stop(). Take
    stop() after the measured child has been reaped."""

    def __init__(self, redis_pid):
        self.redis_pid = redis_pid

    @staticmethod
    def _machine():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        busy = v[0] + v[1] + v[2] + v[5] + v[6]
        steal = v[7] if len(v) > 7 else 0
        return busy / CLK_TCK, steal / CLK_TCK

    def _ours(self):
        s = resource.getrusage(resource.RUSAGE_SELF)
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime,
                _proc_ticks(self.redis_pid) / CLK_TCK)

    def start(self):
        self.t0 = time.monotonic()
        self.busy0, self.steal0 = self._machine()
        self.ours0 = self._ours()
        return self

    def stop(self):
        wall = time.monotonic() - self.t0
        busy, steal = self._machine()
        me, kids, red = (b - a for a, b in zip(self.ours0, self._ours()))
        ours = me + kids + red
        other = max(0.0, busy - self.busy0 - ours)
        share = other / (wall * NCPU) if wall > 0 else 0.0
        res = {"wall_s": round(wall, 3), "our_cpu_s": round(ours, 3),
               "script_cpu_s": round(me, 3),
               "children_cpu_s": round(kids, 3),
               "redis_server_cpu_s": round(red, 3),
               "other_cpu_s": round(other, 3),
               "other_cpu_share": round(share, 3),
               "steal_s": round(steal - self.steal0, 3)}
        if share > OTHER_CPU_WARN:
            res["top_processes"] = top_processes()
        return res


def top_processes(n=6):
    """The busiest processes not started by this script (lifetime %CPU)."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,ppid,pcpu,etimes,comm", "--sort=-pcpu",
             "--no-headers"], capture_output=True, text=True,
            timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    me = os.getpid()
    ours = {me} | {p.pid for p in _CHILDREN}
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 4)
        if len(parts) < 5:
            continue
        pid, ppid = int(parts[0]), int(parts[1])
        if pid in ours or ppid in ours:
            continue
        rows.append(f"pid {pid} {parts[4]} {parts[2]}% cpu "
                    f"(up {parts[3]} s)")
        if len(rows) >= n:
            break
    return rows


# --------------------------------------------------------------------------
# redis-server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir):
    last_err = None
    for attempt in range(5):
        port = free_port()
        p = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", str(workdir),
                   "--daemonize", "no"], workdir / "redis-server.log")
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5,
                             socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            try:
                if client.ping():
                    return p, port
            except redis.RedisError as e:
                last_err = e
            time.sleep(0.05)
        stop(p)
        last_err = last_err or f"redis-server exited ({p.returncode})"
        log(f"redis-server on port {port} did not come up ({last_err}); "
            f"retrying")
    raise RuntimeError(f"could not start redis-server: {last_err}")


def redis_version(port):
    try:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) \
            .info("server").get("redis_version")
    except redis.RedisError:
        return None


def flushdb(port, db):
    redis.Redis(host="127.0.0.1", port=port, db=db, socket_timeout=10) \
        .flushdb()


# --------------------------------------------------------------------------
# vigil


def stable_copy(path, dest, timeout=90):
    """Others rebuild build/vigil while we run: wait (bounded) until it
    exists and has not changed for 1 s, then use a private copy."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            st = os.stat(path)
            now = (st.st_size, st.st_mtime_ns)
        except OSError:
            now = st = None
        if now is not None and now == last and os.access(path, os.X_OK) \
                and time.time() - st.st_mtime > 1:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"vigil binary missing, not executable or "
                               f"still changing after {timeout} s: {path}")
        last = now
        time.sleep(0.5)
    shutil.copy2(path, dest)
    return {"path": str(path),
            "mtime": time.strftime("%Y-%m-%dT%H:%M:%S",
                                   time.localtime(st.st_mtime)),
            "size": st.st_size}


def git_head():
    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_vigil(vigil, port, count, workers, consumers, workdir, redis_pid,
              tag):
    flushdb(port, VIGIL_DB)
    argv = [vigil, "bench", "tasks", "--broker",
            f"redis://127.0.0.1:{port}/{VIGIL_DB}", "--count", str(count),
            "-c", str(workers), "--consumers", str(consumers), "--json"]
    timeout = 60 + count / 1000
    cpu = CpuWindow(redis_pid).start()
    rc, out, err = run_capture(argv, timeout,
                               stderr_path=workdir / f"vigil-{tag}.log")
    run = {"workers": workers, "consumers": consumers,
           "argv": " ".join(argv[1:]), "exit": rc, "machine": cpu.stop()}
    return finish_run(run, rc, out, err, count,
                      {"vigil": "children_cpu_s",
                       "redis_server": "redis_server_cpu_s"})


def parse_json_line(out):
    """The last JSON object line of a `--json` run's output, or None."""
    doc = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                pass
    return doc


def finish_run(run, rc, out, err, count, cpu_names):
    """Completes the record of one `vigil bench tasks --json` run: ok when
    it exited 0 and completed `count` tasks, with the CPU per task of each
    process group (cpu_names: report name -> run["machine"] field)."""
    doc = parse_json_line(out)
    if doc is None or rc != 0 or doc.get("completed") != count:
        run["ok"] = False
        run["error"] = (f"exit {rc}; stdout {out.strip()[-300:]!r}; "
                        f"stderr tail {err.strip()[-600:]!r}")
    else:
        run["ok"] = True
        m = run["machine"]
        run["cpu_us_per_task"] = {
            name: round(1e6 * m[field] / count, 2)
            for name, field in cpu_names.items()}
    run["result"] = doc
    return run


# --------------------------------------------------------------------------
# Celery

# The Celery side of both modes. The Redis mode leaves every BENCH_* knob
# but BENCH_BROKER at Celery's defaults; the AMQP mode (compare_tasks_amqp)
# sets the queue, acks_late and prefetch, and BENCH_DIR, where each pool
# process writes its first start, last completion and count when it exits.
CELERY_MODULE = '''\
"""Celery side of bench/compare_tasks.py. Run as a script to pre-load."""
import json
import os
import sys
import time

from celery import Celery, signals

env = os.environ
app = Celery("bench", broker=env["BENCH_BROKER"])
app.conf.update(
    task_serializer="msgpack",
    result_serializer="msgpack",
    accept_content=["msgpack"],
    task_ignore_result=True,
    task_acks_late=env.get("BENCH_ACKS_LATE", "0") == "1",
    worker_prefetch_multiplier=int(env.get("BENCH_PREFETCH", "4")),
    task_default_queue=env.get("BENCH_QUEUE", "celery"),
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop", ignore_result=True)
def noop(i):
    return None


_stats = {"first": None, "last": None, "count": 0}


def _prerun(**kw):
    if _stats["first"] is None:
        _stats["first"] = time.time()


def _postrun(**kw):
    _stats["last"] = time.time()
    _stats["count"] += 1


def _done(pid=None, **kw):
    if _stats["count"] == 0:
        return
    path = os.path.join(env["BENCH_DIR"],
                        "celery-done-%d.json" % os.getpid())
    with open(path + ".tmp", "w") as f:
        json.dump(_stats, f)
    os.replace(path + ".tmp", path)


# Only when asked: the handlers cost time on every task.
if "BENCH_DIR" in env:
    signals.task_prerun.connect(_prerun, weak=False)
    signals.task_postrun.connect(_postrun, weak=False)
    signals.worker_process_shutdown.connect(_done, weak=False)


if __name__ == "__main__":
    n = int(sys.argv[1])
    with app.producer_or_acquire() as producer:
        noop.apply_async((0,), producer=producer)   # connect + declare
        t0 = time.perf_counter()
        for i in range(1, n):
            noop.apply_async((i,), producer=producer)
        dt = time.perf_counter() - t0
    print(json.dumps({"published": n, "timed": n - 1, "seconds": dt,
                      "publish_per_s": (n - 1) / dt if dt > 0 else 0}))
'''

# kombu's Redis transport: queue "celery" plus its priority sub-queues.
CELERY_QUEUE_KEYS = ["celery"] + [f"celery\x06\x16{p}" for p in (3, 6, 9)]


def run_celery(port, count, workdir, redis_pid, tag):
    flushdb(port, CELERY_DB)
    url = f"redis://127.0.0.1:{port}/{CELERY_DB}"
    env = dict(os.environ, BENCH_BROKER=url, PYTHONPATH=str(workdir),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONHOME", None)
    r = redis.Redis(host="127.0.0.1", port=port, db=CELERY_DB,
                    socket_timeout=10)

    def depth():
        pipe = r.pipeline(transaction=False)
        for k in CELERY_QUEUE_KEYS:
            pipe.llen(k)
        pipe.hlen("unacked")
        v = pipe.execute()
        return sum(v[:-1]), v[-1]

    run = {"count": count, "ok": False}
    cpu = CpuWindow(redis_pid).start()
    worker = None
    try:
        # 1. pre-load with a Celery client in its own process
        rc, out, err = run_capture([PYTHON, str(workdir / "benchtasks.py"),
                                    str(count)], 60 + count / 500, env=env,
                                   cwd=str(workdir))
        pub = None
        for line in out.splitlines():
            if line.startswith("{"):
                pub = json.loads(line)
        if rc != 0 or pub is None:
            run["error"] = f"pre-load failed: exit {rc}; {err.strip()[-600:]}"
            return run
        run["publish"] = {k: round(v, 3) if isinstance(v, float) else v
                          for k, v in pub.items()}
        queued, unacked = depth()
        if queued != count:
            run["error"] = f"pre-loaded {count} tasks but the queue holds " \
                           f"{queued}"
            return run

        # 2. start the worker; the clock starts at its first consumption
        argv = [PYTHON, "-m", "celery", "-A", "benchtasks", "worker",
                "-P", "solo", "--without-mingle", "--without-gossip",
                "--without-heartbeat", "-c", "1", "--loglevel", "WARNING",
                "-n", f"bench-{tag}@%h"]
        run["worker_argv"] = " ".join(argv[1:])
        t_spawn = time.perf_counter()
        worker = spawn(argv, workdir / f"celery-worker-{tag}.log", env=env,
                       cwd=str(workdir))
        deadline = time.monotonic() + 60
        while True:
            queued, unacked = depth()
            if queued < count:
                t_first = time.perf_counter()
                cpu_first = (_proc_ticks(worker.pid), _proc_ticks(redis_pid))
                break
            if worker.poll() is not None:
                run["error"] = f"celery worker exited ({worker.returncode}) " \
                               f"before consuming"
                return run
            if time.monotonic() > deadline:
                run["error"] = "celery worker consumed nothing in 60 s"
                return run
            time.sleep(CELERY_POLL_S)
        run["worker_startup_s"] = round(t_first - t_spawn, 3)
        deadline = time.monotonic() + 60 + count / 200
        while True:
            queued, unacked = depth()
            if queued == 0 and unacked == 0:
                t_done = time.perf_counter()
                cpu_done = (_proc_ticks(worker.pid), _proc_ticks(redis_pid))
                break
            if worker.poll() is not None:
                run["error"] = f"celery worker exited ({worker.returncode}) " \
                               f"with {queued} queued, {unacked} unacked"
                return run
            if time.monotonic() > deadline:
                run["error"] = f"timed out with {queued} queued, {unacked} " \
                               f"unacked"
                return run
            time.sleep(CELERY_POLL_S)
        secs = t_done - t_first
        run.update(ok=True, seconds=round(secs, 3),
                   throughput_per_s=round(count / secs, 1))
        wcpu = (cpu_done[0] - cpu_first[0]) / CLK_TCK
        rcpu = (cpu_done[1] - cpu_first[1]) / CLK_TCK
        run["measured_window_cpu_s"] = {"worker": round(wcpu, 2),
                                         "redis_server": round(rcpu, 2)}
        run["cpu_us_per_task"] = {"worker": round(1e6 * wcpu / count, 1),
                                  "redis_server": round(1e6 * rcpu / count,
                                                        1)}
        return run
    finally:
        if worker is not None:
            stop(worker, timeout=15)
            run["worker_exit"] = worker.returncode
        run["machine"] = cpu.stop()
        r.close()


# --------------------------------------------------------------------------
# redis-benchmark

RB_LINE = re.compile(r"^\s*([A-Z]+):\s+([\d.]+) requests per second")


def run_redis_benchmark(port, data_size, redis_pid):
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
            "--dbnum", str(REDIS_BENCH_DB), "-P", str(REDIS_BENCH_PIPELINE),
            "-n", str(REDIS_BENCH_N), "-t", "lpush,rpop", "-q"]
    if data_size is not None:
        argv += ["-d", str(data_size)]
    flushdb(port, REDIS_BENCH_DB)
    cpu = CpuWindow(redis_pid).start()
    rc, out, err = run_capture(argv, 180)
    res = {"argv": " ".join(argv[1:]), "data_bytes": data_size or 3,
           "exit": rc, "machine": cpu.stop()}
    flushdb(port, REDIS_BENCH_DB)
    rps = {}
    for line in re.split(r"[\r\n]+", out):
        m = RB_LINE.match(line)
        if m:
            rps[m.group(1).lower()] = float(m.group(2))
    res.update(lpush_per_s=rps.get("lpush"), rpop_per_s=rps.get("rpop"))
    res["ok"] = rc == 0 and bool(rps.get("lpush")) and bool(rps.get("rpop"))
    if res["ok"]:
        res["ceiling_per_s"] = min(rps["lpush"], rps["rpop"])
    else:
        res["error"] = f"exit {rc}; {(out + err).strip()[-400:]!r}"
    return res


# --------------------------------------------------------------------------
# summary


def med(xs):
    return statistics.median(xs) if xs else None


def derive(vigil_runs, celery_runs, ceilings):
    out = {"vigil_by_config": {}}
    best = None
    for workers, consumers in VIGIL_CONFIGS:
        key = f"-c {workers} --consumers {consumers}"
        runs = [r for r in vigil_runs
                if (r["workers"], r["consumers"]) == (workers, consumers)]
        tp = [r["result"]["throughput_per_s"] for r in runs if r["ok"]]
        entry = {"runs_ok": len(tp), "runs": len(runs),
                 "median_throughput_per_s": med(tp),
                 "min_throughput_per_s": min(tp) if tp else None,
                 "max_throughput_per_s": max(tp) if tp else None,
                 "median_publish_per_s": med(
                     [r["result"]["publish_per_s"] for r in runs if r["ok"]]),
                 "median_p50_ms": med(
                     [r["result"]["p50_ms"] for r in runs if r["ok"]]),
                 "median_p99_ms": med(
                     [r["result"]["p99_ms"] for r in runs if r["ok"]]),
                 "median_vigil_cpu_us_per_task": med(
                     [r["cpu_us_per_task"]["vigil"] for r in runs
                      if r["ok"]]),
                 "median_redis_cpu_us_per_task": med(
                     [r["cpu_us_per_task"]["redis_server"] for r in runs
                      if r["ok"]])}
        out["vigil_by_config"][key] = entry
        if tp and (best is None or entry["median_throughput_per_s"]
                   > out["vigil_by_config"][best]["median_throughput_per_s"]):
            best = key
    out["vigil_best_config"] = best
    vigil_tp = out["vigil_by_config"][best]["median_throughput_per_s"] \
        if best else None
    out["vigil_median_throughput_per_s"] = vigil_tp
    ctp = [r["throughput_per_s"] for r in celery_runs if r["ok"]]
    out["celery_median_throughput_per_s"] = med(ctp)
    out["celery_min_throughput_per_s"] = min(ctp) if ctp else None
    out["celery_max_throughput_per_s"] = max(ctp) if ctp else None
    out["celery_median_worker_cpu_us_per_task"] = med(
        [r["cpu_us_per_task"]["worker"] for r in celery_runs if r["ok"]])
    out["celery_median_publish_per_s"] = med(
        [r["publish"]["publish_per_s"] for r in celery_runs
         if r.get("publish")])
    out["ratio_vigil_over_celery"] = (
        round(vigil_tp / out["celery_median_throughput_per_s"], 2)
        if vigil_tp and out["celery_median_throughput_per_s"] else None)
    out["redis_ops_per_vigil_task"] = REDIS_OPS_PER_VIGIL_TASK
    implied = vigil_tp * REDIS_OPS_PER_VIGIL_TASK if vigil_tp else None
    out["redis_ops_per_s_implied"] = implied
    out["redis_ceiling"] = {}
    for size in sorted({c["data_bytes"] for c in ceilings}):
        runs = [c for c in ceilings if c["data_bytes"] == size and c["ok"]]
        lp = med([c["lpush_per_s"] for c in runs])
        rp = med([c["rpop_per_s"] for c in runs])
        e = {"runs_ok": len(runs), "median_lpush_per_s": lp,
             "median_rpop_per_s": rp,
             "ceiling_per_s": min(lp, rp) if runs else None}
        if vigil_tp and e["ceiling_per_s"]:
            e["fraction_of_ceiling"] = round(vigil_tp / e["ceiling_per_s"], 4)
            e["implied_ops_fraction_of_ceiling"] = round(
                implied / e["ceiling_per_s"], 4)
        out["redis_ceiling"][f"{size}_bytes"] = e
    out["note"] = REDIS_OPS_NOTE
    return out


def busy_warnings(report):
    """Short lines naming the measurements that ran while other processes
    were busy (> OTHER_CPU_WARN of all cores) or the host stole CPU."""
    busy, steal, seen = [], [], []

    def check(label, m):
        if not m:
            return
        if m.get("other_cpu_share", 0) > OTHER_CPU_WARN:
            busy.append(f"{label} {100 * m['other_cpu_share']:.0f}%")
            for t in m.get("top_processes", [])[:3]:
                name = " ".join(t.split()[:3])        # "pid N comm"
                if name not in seen:
                    seen.append(name)
        if m.get("steal_s", 0) > 0.05 * m.get("wall_s", 0) * NCPU:
            steal.append(f"{label} {m['steal_s']:.1f} s in "
                         f"{m['wall_s']:.1f} s")

    for r in report["vigil_runs"]:
        check(f"r{r['round']} vigil -c {r['workers']}", r.get("machine"))
    for r in report["celery_runs"]:
        check(f"r{r['round']} celery", r.get("machine"))
    for r in report["redis_benchmark"]:
        check(f"r{r['round']} redis-benchmark -d {r['data_bytes']}",
              r.get("machine"))
    warn = []
    if busy:
        warn.append(f"other processes used > {100 * OTHER_CPU_WARN:.0f}% of "
                    f"the {NCPU} cores during: " + ", ".join(busy))
        if seen:
            warn.append("busiest other processes seen: " + ", ".join(seen))
    if steal:
        warn.append("CPU steal (host contention) during: "
                    + ", ".join(steal))
    return warn


def fmt(x, nd=0):
    if x is None:
        return "n/a"
    return f"{x:,.{nd}f}"


def summary_text(report):
    d = report["derived"]
    L = []
    L.append(f"vigil vs Celery vs Redis, on redis-server "
             f"{report['redis_version']} (private, loopback, no persistence), "
             f"{NCPU} cores, load average at start "
             f"{report['loadavg_start']}")
    L.append(f"vigil binary {report['vigil']['path']} "
             f"(built {report['vigil']['mtime']}; HEAD "
             f"{(report['git_head'] or '?')[:12]})")
    L.append("")
    L.append(f"1. vigil bench tasks, {report['args']['count']:,} tasks per "
             f"run, publisher and consumers in one process, clock from first "
             f"publish to all acked")
    wu = report.get("vigil_warmup") or {}
    if wu.get("ok"):
        L.append(f"   (warm-up, not counted: {wu['result']['count']:,} tasks, "
                 f"{fmt(wu['result']['throughput_per_s'])} tasks/s)")
    for r in report["vigil_runs"]:
        res = r.get("result") or {}
        if r["ok"]:
            L.append(f"   r{r['round']} -c {r['workers']} --consumers "
                     f"{r['consumers']}: "
                     f"{fmt(res['throughput_per_s'])} tasks/s "
                     f"({res['seconds']:.3f} s; publish "
                     f"{fmt(res['publish_per_s'])}/s; latency p50 "
                     f"{res['p50_ms']:.1f} ms p99 {res['p99_ms']:.1f} ms; "
                     f"CPU/task vigil {r['cpu_us_per_task']['vigil']:.1f} us "
                     f"redis {r['cpu_us_per_task']['redis_server']:.1f} us; "
                     f"others used {100 * r['machine']['other_cpu_share']:.0f}"
                     f"% CPU)")
        else:
            L.append(f"   -c {r['workers']} --consumers {r['consumers']}: "
                     f"FAILED: {r.get('error')}")
    for key, e in d["vigil_by_config"].items():
        L.append(f"   median {key}: {fmt(e['median_throughput_per_s'])} "
                 f"tasks/s (min {fmt(e['min_throughput_per_s'])}, max "
                 f"{fmt(e['max_throughput_per_s'])}, {e['runs_ok']}/"
                 f"{e['runs']} ok)")
    L.append(f"   best configuration: {d['vigil_best_config']}")
    L.append("")
    L.append(f"2. Celery 5.2 worker, solo pool, msgpack, ignore_result, "
             f"{report['args']['celery_count']:,} pre-loaded tasks, clock "
             f"from first consumption to empty queue and empty unacked")
    for r in report["celery_runs"]:
        pub = r.get("publish") or {}
        if r["ok"]:
            L.append(f"   r{r['round']}: {fmt(r['throughput_per_s'])} tasks/s "
                     f"({r['seconds']:.3f} s; worker startup "
                     f"{r['worker_startup_s']:.2f} s; pre-load "
                     f"{fmt(pub.get('publish_per_s'))} msgs/s; CPU/task "
                     f"worker {r['cpu_us_per_task']['worker']:.0f} us redis "
                     f"{r['cpu_us_per_task']['redis_server']:.0f} us; "
                     f"others used "
                     f"{100 * r['machine']['other_cpu_share']:.0f}% CPU)")
        else:
            L.append(f"   FAILED: {r.get('error')}")
    L.append(f"   median: {fmt(d['celery_median_throughput_per_s'])} tasks/s "
             f"(min {fmt(d['celery_min_throughput_per_s'])}, max "
             f"{fmt(d['celery_max_throughput_per_s'])}); publisher median "
             f"{fmt(d['celery_median_publish_per_s'])} msgs/s")
    L.append("")
    L.append(f"3. Redis ceiling: redis-benchmark -P {REDIS_BENCH_PIPELINE} "
             f"-n {REDIS_BENCH_N:,} -t lpush,rpop (one client connection "
             f"set, pipelined)")
    for r in report["redis_benchmark"]:
        if r["ok"]:
            L.append(f"   {r['data_bytes']:>4} B payload: LPUSH "
                     f"{fmt(r['lpush_per_s'])}/s, RPOP "
                     f"{fmt(r['rpop_per_s'])}/s (others used "
                     f"{100 * r['machine']['other_cpu_share']:.0f}% CPU)")
        else:
            L.append(f"   {r['data_bytes']:>4} B payload: FAILED: "
                     f"{r.get('error')}")
    for name, e in d["redis_ceiling"].items():
        L.append(f"   median {name.replace('_', ' ')}: LPUSH "
                 f"{fmt(e['median_lpush_per_s'])}/s, RPOP "
                 f"{fmt(e['median_rpop_per_s'])}/s -> ceiling "
                 f"min(LPUSH, RPOP) = {fmt(e['ceiling_per_s'])} ops/s")
    L.append("")
    L.append("Derived")
    vt = d["vigil_median_throughput_per_s"]
    L.append(f"   vigil median ({d['vigil_best_config']}): {fmt(vt)} tasks/s")
    L.append(f"   Celery median:             "
             f"{fmt(d['celery_median_throughput_per_s'])} tasks/s")
    L.append(f"   ratio vigil / Celery:      "
             f"{fmt(d['ratio_vigil_over_celery'], 1)}x")
    L.append(f"   Redis ops implied by vigil: 6 x {fmt(vt)} = "
             f"{fmt(d['redis_ops_per_s_implied'])} ops/s")
    for name, e in d["redis_ceiling"].items():
        if "fraction_of_ceiling" in e:
            L.append(f"   vs {name.replace('_', ' ')} ceiling "
                     f"{fmt(e['ceiling_per_s'])} ops/s: tasks/s = "
                     f"{100 * e['fraction_of_ceiling']:.1f}% of it; implied "
                     f"ops/s = {100 * e['implied_ops_fraction_of_ceiling']:.1f}"
                     f"% of it")
    L.append("   " + "\n   ".join(textwrap.wrap("Note: " + REDIS_OPS_NOTE,
                                                 74)))
    L.append("   " + "\n   ".join(textwrap.wrap(
        "Note: vigil's clock includes publishing (producer thread running "
        "alongside the consumers on the same 2 cores); Celery's clock covers "
        "consumption of a pre-loaded queue only. The ratio therefore "
        "favours Celery.", 74)))
    if report["warnings"]:
        L.append("")
        L.append("Machine load warnings (other processes were busy; treat "
                 "the affected figures with care):")
        for w in report["warnings"]:
            L.append("   - " + "\n     ".join(
                textwrap.wrap(w, 72, break_on_hyphens=False)))
    L.append("")
    L.append(f"total time {report['total_seconds']:.0f} s")
    return "\n".join(L)


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(
        description="Compare vigil, a Celery 5 solo worker and the "
                    "redis-benchmark ceiling on one private redis-server.")
    ap.add_argument("--vigil", default=str(REPO / "build" / "vigil"),
                    help="vigil binary (default: %(default)s)")
    ap.add_argument("--count", type=int, default=None,
                    help="tasks per vigil run (default: 200000 on redis, "
                         "100000 on amqp)")
    ap.add_argument("--celery-count", type=int, default=None,
                    help="tasks pre-loaded per Celery run (default: 10000 "
                         "on redis, 20000 on amqp)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per vigil configuration and for Celery; "
                         "medians are reported (default: %(default)s)")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON object on stdout (the human "
                         "summary then goes to stderr)")
    ap.add_argument("--broker", choices=["redis", "amqp"], default="redis",
                    help="redis: vigil vs Celery solo vs redis-benchmark; "
                         "amqp: vigil vs Celery prefork -c 2 vs a bare "
                         "rabbitmq-c ceiling on a private rabbitmq-server "
                         "(see bench/compare_tasks_amqp.py)")
    ap.add_argument("--scenario", choices=["plain", "chains"],
                    default="plain",
                    help="plain: no-op tasks as above; chains: chains of 10 "
                         "tasks on vigil and on a Celery worker, and vigil "
                         "with task events off and on (see "
                         "bench/compare_tasks_chains.py)")
    ap.add_argument("--chains", type=int, default=10_000,
                    help="--scenario chains: chains per run, 0: events "
                         "only (default: %(default)s)")
    ap.add_argument("--event-count", type=int, default=50_000,
                    help="--scenario chains: tasks per events-on/off run "
                         "(default: %(default)s)")
    ap.add_argument("--events-baseline", default=None,
                    help="--scenario chains: a second vigil binary (the "
                         "one before a change) whose events-on run is "
                         "interleaved with --vigil's in each round")
    ap.add_argument("--ceiling-count", type=int, default=100_000,
                    help="--broker amqp: messages per ceiling run "
                         "(default: %(default)s)")
    args = ap.parse_args()
    amqp_mode = args.broker == "amqp"
    if args.count is None:
        args.count = 100_000 if amqp_mode else 200_000
    if args.celery_count is None:
        args.celery_count = 20_000 if amqp_mode else 10_000
    if args.count < 1 or args.celery_count < 2 or args.repeat < 1:
        ap.error("--count >= 1, --celery-count >= 2, --repeat >= 1")

    signal.signal(signal.SIGTERM, _on_sigterm)
    # The other scenarios live in their own modules, given this one.
    other = ("compare_tasks_chains" if args.scenario == "chains"
             else "compare_tasks_amqp" if args.broker == "amqp" else None)
    if other:
        sys.path.insert(0, str(HERE))
        sys.dont_write_bytecode = True      # no __pycache__ in bench/
        try:
            return importlib.import_module(other).main(
                args, sys.modules[__name__])
        finally:
            kill_all_children()
    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="vigil-compare-"))
    failed = True
    report = None
    redis_proc = None
    try:
        vigil = str(workdir / "vigil")
        vinfo = stable_copy(args.vigil, vigil)
        (workdir / "benchtasks.py").write_text(CELERY_MODULE)
        redis_proc, port = start_redis(workdir)
        log(f"redis-server pid {redis_proc.pid} on 127.0.0.1:{port}; "
            f"logs in {workdir}")
        report = {"args": vars(args), "vigil": vinfo, "git_head": git_head(),
                  "redis_port": port, "redis_version": redis_version(port),
                  "cpus": NCPU,
                  "loadavg_start": " ".join(f"{x:.2f}"
                                            for x in os.getloadavg()),
                  "vigil_warmup": None, "vigil_runs": [], "celery_runs": [],
                  "redis_benchmark": []}

        # One vigil warm-up run first (not in the medians): the first run
        # after redis-server starts pays for growing its heap and for the
        # binary's cold pages.
        w, k = VIGIL_CONFIGS[-1]
        warm = min(args.count, 50_000)
        log(f"vigil warm-up: -c {w} --consumers {k}, {warm} tasks")
        r = run_vigil(vigil, port, warm, w, k, workdir, redis_proc.pid,
                      "warmup")
        report["vigil_warmup"] = r
        log(f"  {r['result']['throughput_per_s']:.0f} tasks/s (not counted)"
            if r["ok"] else f"  FAILED: {r['error']}")

        # --repeat rounds; each round measures everything once (vigil in
        # both configurations, Celery, both redis-benchmark payloads), so a
        # change in the shared machine's load over the run touches every
        # figure alike instead of skewing one of them.
        for i in range(args.repeat):
            rnd = f"round {i + 1}/{args.repeat}"
            # 1. vigil
            for workers, consumers in VIGIL_CONFIGS:
                tag = f"c{workers}k{consumers}-{i + 1}"
                log(f"{rnd}: vigil -c {workers} --consumers {consumers}, "
                    f"{args.count} tasks")
                r = run_vigil(vigil, port, args.count, workers, consumers,
                              workdir, redis_proc.pid, tag)
                r["round"] = i + 1
                report["vigil_runs"].append(r)
                log(f"  {r['result']['throughput_per_s']:.0f} tasks/s"
                    if r["ok"] else f"  FAILED: {r['error']}")
            # 2. Celery
            log(f"{rnd}: celery, {args.celery_count} pre-loaded tasks")
            r = run_celery(port, args.celery_count, workdir, redis_proc.pid,
                           f"{i + 1}")
            r["round"] = i + 1
            report["celery_runs"].append(r)
            log(f"  {r['throughput_per_s']:.0f} tasks/s (pre-load "
                f"{r['publish']['publish_per_s']:.0f} msgs/s)"
                if r["ok"] else f"  FAILED: {r.get('error')}")
            # 3. Redis ceiling
            for size in (None, VIGIL_ENVELOPE_BYTES):
                log(f"{rnd}: redis-benchmark -P {REDIS_BENCH_PIPELINE} "
                    f"-t lpush,rpop" + (f" -d {size}" if size else ""))
                r = run_redis_benchmark(port, size, redis_proc.pid)
                r["round"] = i + 1
                report["redis_benchmark"].append(r)
                log(f"  LPUSH {r['lpush_per_s']:.0f}/s, RPOP "
                    f"{r['rpop_per_s']:.0f}/s"
                    if r["ok"] else f"  FAILED: {r['error']}")

        report["derived"] = derive(report["vigil_runs"],
                                   report["celery_runs"],
                                   report["redis_benchmark"])
        report["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        report["warnings"] = busy_warnings(report)
        report["total_seconds"] = round(time.monotonic() - t_start, 1)
        failed = not (all(r["ok"] for r in report["vigil_runs"])
                      and all(r["ok"] for r in report["celery_runs"])
                      and all(r["ok"] for r in report["redis_benchmark"]))
        report["ok"] = not failed
        text = summary_text(report)
        if args.json:
            print(text, file=sys.stderr, flush=True)
            print(json.dumps(report, indent=1), flush=True)
        else:
            print(text, flush=True)
    finally:
        if redis_proc is not None:
            try:
                redis.Redis(host="127.0.0.1", port=port,
                            socket_timeout=2).shutdown(nosave=True)
            except Exception:
                pass
            stop(redis_proc, timeout=5)
        kill_all_children()
        if failed:
            log(f"something failed; logs kept in {workdir}")
            try:
                os.unlink(workdir / "vigil")    # 40 MB nobody needs
            except OSError:
                pass
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
