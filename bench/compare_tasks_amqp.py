"""AMQP mode of bench/compare_tasks.py (`--broker amqp`).

One private rabbitmq-server 3.10 (started here as tests/run_all.py starts
it: free loopback ports, its own data dir, no plugins, stopped at the end),
default server settings. After one vigil warm-up run (not counted),
--repeat rounds each measure three things, in an order that rotates from
round to round so that drift in the shared machine's load touches every
figure alike:

1. vigil: `vigil bench tasks --broker amqp://... --count N -c C
   --consumers K --json` for each (C, K) in VIGIL_CONFIGS. One process
   publishes N no-op tasks (persistent, publisher confirms, a wait per batch
   of 500) while K consumer connections and C worker threads run them and
   acknowledge each after it ran. The clock runs from the first publish
   until every task ran and was acknowledged.
2. Celery 5 (Debian's python3-celery) worker: prefork pool with 2
   processes (-P prefork -c 2 --without-mingle --without-gossip
   --without-heartbeat), msgpack serializer and accept_content, ignore
   results, task_acks_late=True (ack after the task ran: the same
   at-least-once contract as vigil), worker_prefetch_multiplier=4
   (Celery's default, 8 unacked per worker), on a fresh durable queue.
   A separate Celery client pre-loads --celery-count tasks; then the worker
   starts. Each pool process notes the time of its first task_prerun and
   last task_postrun and its task count, and writes them out when it exits
   (worker_process_shutdown); the worker is stopped (warm shutdown) once
   the queue is empty and quiet. Throughput = tasks / (last completion -
   first start), over both processes; every task must be counted and the
   queue must be empty after the worker stopped. For reference, not a
   target, each round also runs the same worker with Celery's default early
   acks (acknowledged before the task runs, so a crash loses it).
3. The broker's ceiling: `vigil bench amqp-ceiling --broker amqp://...
   --messages M --json`: one rabbitmq-c connection publishes persistent
   messages of vigil's task message size to a fresh durable queue with
   confirms (a wait per batch of 500), another consumes them with basic.qos
   prefetch and multiple acks, doing nothing else. Its messages carry
   only a delivery mode (the body is padded to the size of vigil's task
   message). For reference, not a target, the same run is repeated with
   --task-headers: vigil's own properties and header table, which
   RabbitMQ decodes and copies for every message.

For every measurement the CPU used by rabbitmq-server (beam and its helper
processes) and by the measured client is recorded, and how much CPU the rest
of the machine used meanwhile.
"""

import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import amqp

VIGIL_CONFIGS = [(2, 2), (4, 4)]      # (-c workers, --consumers)
CELERY_PROCESSES = 2
CELERY_PREFETCH_MULTIPLIER = 4
TARGET_TASKS_PER_S = 30_000
TARGET_RATIO_CELERY = 8.0
TARGET_FRACTION_CEILING = 0.70

# The Celery module is compare_tasks.CELERY_MODULE, configured through
# BENCH_QUEUE, BENCH_ACKS_LATE, BENCH_PREFETCH and BENCH_DIR.


# --------------------------------------------------------------------------
# rabbitmq-server


def start_rabbit(workdir, ct):
    sys.path.insert(0, str(ct.REPO / "tests"))
    from run_all import Rabbit     # the test harness's private server
    rabbit = Rabbit(str(workdir))
    if not rabbit.wait(90):
        rabbit.stop()
        raise RuntimeError(f"rabbitmq-server did not start; see "
                           f"{workdir / 'rabbitmq.log'}")
    return rabbit


def descendants(pid):
    """pid and every process below it (rabbitmq-server's script, beam.smp,
    erl_child_setup, inet_gethost...)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_ticks(pid, ct):
    return sum(ct._proc_ticks(p) for p in descendants(pid))


def make_cpu_window(ct, rabbit_pid):
    class ServerCpuWindow(ct.CpuWindow):
        """CpuWindow with rabbitmq-server's whole process tree as the
        server."""

        def _ours(self):
            me, kids, _ = super()._ours()
            return me, kids, tree_ticks(rabbit_pid, ct) / ct.CLK_TCK

        def stop(self):
            res = super().stop()
            res["rabbitmq_cpu_s"] = res.pop("redis_server_cpu_s")
            return res

    return ServerCpuWindow(rabbit_pid)


class Probe:
    """A py-amqp connection for passive queue declares (ready counts)."""

    def __init__(self, port):
        self.conn = amqp.Connection(host=f"127.0.0.1:{port}",
                                    userid="guest", password="guest",
                                    virtual_host="/", connect_timeout=10)
        self.conn.connect()
        self.ch = self.conn.channel()

    def ready(self, queue):
        return self.ch.queue_declare(queue, passive=True)[1]

    def delete(self, queue):
        try:
            self.ch.queue_delete(queue)
        except Exception:
            pass

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


# --------------------------------------------------------------------------
# runs


def run_vigil_cmd(ct, argv, count, workdir, rabbit_pid, tag, timeout):
    cpu = make_cpu_window(ct, rabbit_pid).start()
    rc, out, err = ct.run_capture(argv, timeout,
                                  stderr_path=workdir / f"vigil-{tag}.log")
    # The private server's guest password stays out of the report.
    run = {"argv": " ".join(argv[1:]).replace(":guest@", ":****@"),
           "exit": rc, "machine": cpu.stop()}
    return ct.finish_run(run, rc, out, err, count,
                         {"client": "children_cpu_s",
                          "rabbitmq": "rabbitmq_cpu_s"})


def run_vigil(ct, vigil, url, count, workers, consumers, workdir, rabbit_pid,
              tag):
    argv = [vigil, "bench", "tasks", "--broker", url, "--count", str(count),
            "-c", str(workers), "--consumers", str(consumers), "--json"]
    run = run_vigil_cmd(ct, argv, count, workdir, rabbit_pid, tag,
                        60 + count / 500)
    run.update(workers=workers, consumers=consumers)
    return run


def run_ceiling(ct, vigil, url, count, workdir, rabbit_pid, tag,
                extra=()):
    argv = [vigil, "bench", "amqp-ceiling", "--broker", url, "--messages",
            str(count), "--json", *extra]
    return run_vigil_cmd(ct, argv, count, workdir, rabbit_pid,
                         f"ceiling-{tag}", 60 + count / 500)


def run_celery(ct, port, url, count, workdir, rabbit_pid, tag,
               acks_late=True):
    queue = f"bench.celery.{tag}.{os.getpid()}"
    done_dir = workdir / f"celery-{tag}"
    done_dir.mkdir()
    env = dict(os.environ, BENCH_BROKER=url, BENCH_QUEUE=queue,
               BENCH_DIR=str(done_dir), PYTHONPATH=str(workdir),
               PYTHONDONTWRITEBYTECODE="1",
               BENCH_ACKS_LATE="1" if acks_late else "0",
               BENCH_PREFETCH=str(CELERY_PREFETCH_MULTIPLIER))
    env.pop("PYTHONHOME", None)
    run = {"count": count, "ok": False, "queue": queue,
           "acks_late": acks_late}
    cpu = make_cpu_window(ct, rabbit_pid).start()
    worker = None
    probe = Probe(port)
    try:
        # 1. pre-load with a Celery client in its own process
        rc, out, err = ct.run_capture(
            [ct.PYTHON, str(workdir / "benchtasks_amqp.py"), str(count)],
            60 + count / 500, env=env, cwd=str(workdir))
        pub = ct.parse_json_line(out)
        if rc != 0 or pub is None:
            run["error"] = f"pre-load failed: exit {rc}; {err.strip()[-600:]}"
            return run
        run["publish"] = {k: round(v, 3) if isinstance(v, float) else v
                          for k, v in pub.items()}
        # kombu publishes without confirms: wait until RabbitMQ holds all.
        deadline = time.monotonic() + 30
        while (ready := probe.ready(queue)) != count:
            if time.monotonic() > deadline:
                run["error"] = f"pre-loaded {count} tasks but the queue " \
                               f"holds {ready}"
                return run
            time.sleep(0.05)

        # 2. the worker; the pool processes time themselves
        argv = [ct.PYTHON, "-m", "celery", "-A", "benchtasks_amqp", "worker",
                "-P", "prefork", "-c", str(CELERY_PROCESSES),
                "--without-mingle", "--without-gossip", "--without-heartbeat",
                "-Q", queue, "--loglevel", "WARNING",
                "-n", f"bench-{tag}@%h"]
        run["worker_argv"] = " ".join(argv[1:])
        t_spawn = time.perf_counter()
        worker = ct.spawn(argv, workdir / f"celery-worker-{tag}.log",
                          env=env, cwd=str(workdir))
        deadline = time.monotonic() + 60
        while probe.ready(queue) >= count:
            if worker.poll() is not None:
                run["error"] = f"celery worker exited ({worker.returncode}) " \
                               f"before consuming"
                return run
            if time.monotonic() > deadline:
                run["error"] = "celery worker consumed nothing in 60 s"
                return run
            time.sleep(ct.CELERY_POLL_S)
        run["worker_startup_s"] = round(time.perf_counter() - t_spawn, 3)
        cpu_first = tree_ticks(worker.pid, ct)
        deadline = time.monotonic() + 60 + count / 200
        while probe.ready(queue) > 0:
            if worker.poll() is not None:
                run["error"] = f"celery worker exited ({worker.returncode})"
                return run
            if time.monotonic() > deadline:
                run["error"] = "timed out waiting for an empty queue"
                return run
            time.sleep(ct.CELERY_POLL_S)
        # Everything is delivered; the last prefetched few finish within
        # milliseconds.
        time.sleep(1.0)
        cpu_done = tree_ticks(worker.pid, ct)
        ct.stop(worker, timeout=30)
        run["worker_exit"] = worker.returncode
        stats = []
        for p in sorted(done_dir.glob("celery-done-*.json")):
            stats.append(json.loads(p.read_text()))
        run["processes"] = stats
        done = sum(s["count"] for s in stats)
        left = probe.ready(queue)
        if done != count or left != 0:
            run["error"] = f"{done} of {count} tasks counted by the pool " \
                           f"processes, {left} left in the queue"
            return run
        secs = max(s["last"] for s in stats) - min(s["first"] for s in stats)
        run.update(ok=True, seconds=round(secs, 3),
                   throughput_per_s=round(count / secs, 1))
        wcpu = (cpu_done - cpu_first) / ct.CLK_TCK
        run["cpu_us_per_task"] = {"worker": round(1e6 * wcpu / count, 1)}
        return run
    finally:
        if worker is not None:
            ct.stop(worker, timeout=15)
            run.setdefault("worker_exit", worker.returncode)
        run["machine"] = cpu.stop()
        if run.get("ok"):
            m = run["machine"]
            run["cpu_us_per_task"]["rabbitmq_whole_run"] = round(
                1e6 * m["rabbitmq_cpu_s"] / count, 1)
        probe.delete(queue)
        probe.close()


# --------------------------------------------------------------------------
# summary


def spread(xs):
    return {"median": ct_med(xs), "min": min(xs) if xs else None,
            "max": max(xs) if xs else None, "runs_ok": len(xs)}


def ct_med(xs):
    import statistics
    return statistics.median(xs) if xs else None


def derive(report):
    out = {"vigil_by_config": {}}
    best = None
    for workers, consumers in VIGIL_CONFIGS:
        key = f"-c {workers} --consumers {consumers}"
        runs = [r for r in report["vigil_runs"]
                if (r["workers"], r["consumers"]) == (workers, consumers)
                and r["ok"]]
        e = spread([r["result"]["throughput_per_s"] for r in runs])
        e["median_p50_ms"] = ct_med([r["result"]["p50_ms"] for r in runs])
        e["median_p99_ms"] = ct_med([r["result"]["p99_ms"] for r in runs])
        e["median_vigil_cpu_us_per_task"] = ct_med(
            [r["cpu_us_per_task"]["client"] for r in runs])
        e["median_rabbitmq_cpu_us_per_task"] = ct_med(
            [r["cpu_us_per_task"]["rabbitmq"] for r in runs])
        out["vigil_by_config"][key] = e
        if runs and (best is None or e["median"]
                     > out["vigil_by_config"][best]["median"]):
            best = key
    out["vigil_best_config"] = best
    vt = out["vigil_by_config"][best]["median"] if best else None
    out["vigil_median_throughput_per_s"] = vt
    cruns = [r for r in report["celery_runs"] if r["ok"]]
    out["celery"] = spread([r["throughput_per_s"] for r in cruns])
    out["celery"]["median_worker_cpu_us_per_task"] = ct_med(
        [r["cpu_us_per_task"]["worker"] for r in cruns])
    eruns = [r for r in report["celery_early_runs"] if r["ok"]]
    out["celery_early_acks"] = spread([r["throughput_per_s"] for r in eruns])
    out["celery_early_acks"]["median_worker_cpu_us_per_task"] = ct_med(
        [r["cpu_us_per_task"]["worker"] for r in eruns])
    for key, runs in (("ceiling", report["ceiling_runs"]),
                      ("ceiling_task_headers",
                       report["ceiling_headers_runs"])):
        ceil = [r for r in runs if r["ok"]]
        e = spread([r["result"]["throughput_per_s"] for r in ceil])
        e["median_client_cpu_us_per_msg"] = ct_med(
            [r["cpu_us_per_task"]["client"] for r in ceil])
        e["median_rabbitmq_cpu_us_per_msg"] = ct_med(
            [r["cpu_us_per_task"]["rabbitmq"] for r in ceil])
        e["message_bytes"] = \
            ceil[0]["result"].get("message_bytes") if ceil else None
        out[key] = e
    cm, km = out["celery"]["median"], out["ceiling"]["median"]
    out["ratio_vigil_over_celery"] = round(vt / cm, 2) if vt and cm else None
    out["fraction_of_ceiling"] = round(vt / km, 3) if vt and km else None
    out["targets"] = {
        "tasks_per_s": {"target": TARGET_TASKS_PER_S, "measured": vt,
                        "met": bool(vt and vt >= TARGET_TASKS_PER_S)},
        "times_celery": {"target": TARGET_RATIO_CELERY,
                         "measured": out["ratio_vigil_over_celery"],
                         "met": bool(out["ratio_vigil_over_celery"]
                                     and out["ratio_vigil_over_celery"]
                                     >= TARGET_RATIO_CELERY)},
        "fraction_of_ceiling": {"target": TARGET_FRACTION_CEILING,
                                "measured": out["fraction_of_ceiling"],
                                "met": bool(out["fraction_of_ceiling"]
                                            and out["fraction_of_ceiling"]
                                            >= TARGET_FRACTION_CEILING)}}
    return out


def busy_warnings(report, ct):
    busy = []
    for label, runs in (("vigil", report["vigil_runs"]),
                        ("celery", report["celery_runs"]),
                        ("celery early acks", report["celery_early_runs"]),
                        ("ceiling", report["ceiling_runs"]),
                        ("ceiling --task-headers",
                         report["ceiling_headers_runs"])):
        for r in runs:
            m = r.get("machine") or {}
            if m.get("other_cpu_share", 0) > ct.OTHER_CPU_WARN:
                busy.append(f"r{r['round']} {label} "
                            f"{100 * m['other_cpu_share']:.0f}%")
    if not busy:
        return []
    return [f"other processes used > {100 * ct.OTHER_CPU_WARN:.0f}% of the "
            f"{ct.NCPU} cores during: " + ", ".join(busy)]


def summary_text(report, ct):
    d = report["derived"]
    fmt = ct.fmt
    L = [f"vigil vs Celery vs the broker's ceiling on a private "
         f"rabbitmq-server {report.get('rabbitmq_version') or ''} "
         f"(loopback, default settings), {ct.NCPU} cores, load average at "
         f"start {report['loadavg_start']}",
         f"vigil binary {report['vigil']['path']} (built "
         f"{report['vigil']['mtime']}; HEAD "
         f"{(report['git_head'] or '?')[:12]})", ""]

    def other(r):
        return f"others used {100 * r['machine']['other_cpu_share']:.0f}% CPU"

    L.append(f"1. vigil bench tasks, {report['args']['count']:,} tasks per "
             f"run (publish with confirms, ack after the task ran)")
    for r in report["vigil_runs"]:
        res = r.get("result") or {}
        if r["ok"]:
            L.append(f"   r{r['round']} -c {r['workers']} --consumers "
                     f"{r['consumers']}: {fmt(res['throughput_per_s'])} "
                     f"tasks/s (p50 {res['p50_ms']:.1f} ms, p99 "
                     f"{res['p99_ms']:.1f} ms; CPU/task vigil "
                     f"{r['cpu_us_per_task']['client']:.0f} us, rabbitmq "
                     f"{r['cpu_us_per_task']['rabbitmq']:.0f} us; "
                     f"{other(r)})")
        else:
            L.append(f"   r{r['round']} -c {r['workers']}: FAILED: "
                     f"{r.get('error')}")
    for key, e in d["vigil_by_config"].items():
        L.append(f"   median {key}: {fmt(e['median'])} tasks/s (min "
                 f"{fmt(e['min'])}, max {fmt(e['max'])})")
    L.append("")
    L.append(f"2. Celery worker, prefork -c {CELERY_PROCESSES}, msgpack, "
             f"acks_late, prefetch multiplier {CELERY_PREFETCH_MULTIPLIER}, "
             f"{report['args']['celery_count']:,} pre-loaded tasks")
    for r in report["celery_runs"]:
        if r["ok"]:
            L.append(f"   r{r['round']}: {fmt(r['throughput_per_s'])} tasks/s "
                     f"({r['seconds']:.2f} s; CPU/task worker "
                     f"{r['cpu_us_per_task']['worker']:.0f} us; {other(r)})")
        else:
            L.append(f"   r{r['round']}: FAILED: {r.get('error')}")
    c = d["celery"]
    L.append(f"   median: {fmt(c['median'])} tasks/s (min {fmt(c['min'])}, "
             f"max {fmt(c['max'])})")
    e = d["celery_early_acks"]
    L.append(f"   for reference, Celery's default early acks (not "
             f"at-least-once): median {fmt(e['median'])} tasks/s (min "
             f"{fmt(e['min'])}, max {fmt(e['max'])}; CPU/task worker "
             f"{fmt(e['median_worker_cpu_us_per_task'])} us)")
    L.append("")
    L.append(f"3. ceiling: vigil bench amqp-ceiling, "
             f"{report['args']['ceiling_count']:,} messages of "
             f"{d['ceiling']['message_bytes']} bytes")
    for r in report["ceiling_runs"]:
        res = r.get("result") or {}
        if r["ok"]:
            L.append(f"   r{r['round']}: {fmt(res['throughput_per_s'])} "
                     f"msgs/s (CPU/msg client "
                     f"{r['cpu_us_per_task']['client']:.0f} us, rabbitmq "
                     f"{r['cpu_us_per_task']['rabbitmq']:.0f} us; "
                     f"{other(r)})")
        else:
            L.append(f"   r{r['round']}: FAILED: {r.get('error')}")
    k = d["ceiling"]
    L.append(f"   median: {fmt(k['median'])} msgs/s (min {fmt(k['min'])}, "
             f"max {fmt(k['max'])})")
    h = d["ceiling_task_headers"]
    L.append(f"   for reference, with vigil's properties and headers "
             f"(--task-headers): median {fmt(h['median'])} msgs/s (min "
             f"{fmt(h['min'])}, max {fmt(h['max'])}); rabbitmq CPU/msg "
             f"{fmt(h['median_rabbitmq_cpu_us_per_msg'])} us vs "
             f"{fmt(k['median_rabbitmq_cpu_us_per_msg'])} us bare")
    L.append("")
    L.append("Derived")
    L.append(f"   vigil median ({d['vigil_best_config']}): "
             f"{fmt(d['vigil_median_throughput_per_s'])} tasks/s")
    L.append(f"   vigil / Celery:  {fmt(d['ratio_vigil_over_celery'], 2)}x")
    frac = d["fraction_of_ceiling"]
    L.append(f"   vigil / ceiling: {fmt(100 * frac if frac else None, 1)}%")
    for name, t in d["targets"].items():
        L.append(f"   target {name}: {t['target']} -> "
                 f"{'met' if t['met'] else 'NOT met'} ({t['measured']})")
    if report["warnings"]:
        L.append("")
        for w in report["warnings"]:
            L.append("   - " + "\n     ".join(textwrap.wrap(w, 72)))
    L.append("")
    L.append(f"total time {report['total_seconds']:.0f} s")
    return "\n".join(L)


# --------------------------------------------------------------------------


def main(args, ct):
    """Runs the AMQP comparison; `ct` is the compare_tasks module (shared
    process helpers, so that its cleanup sees every child)."""
    t_start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="vigil-compare-amqp-"))
    os.chmod(workdir, 0o755)
    failed = True
    rabbit = None
    try:
        vigil = str(workdir / "vigil")
        vinfo = ct.stable_copy(args.vigil, vigil)
        (workdir / "benchtasks_amqp.py").write_text(ct.CELERY_MODULE)
        ct.log("starting a private rabbitmq-server (5-15 s)")
        rabbit = start_rabbit(workdir, ct)
        url = rabbit.url
        rpid = rabbit.proc.pid
        ct.log(f"rabbitmq-server on 127.0.0.1:{rabbit.port}; logs in "
               f"{workdir}")
        report = {"broker": "amqp", "args": vars(args), "vigil": vinfo,
                  "git_head": ct.git_head(), "rabbitmq_port": rabbit.port,
                  "rabbitmq_version": rabbitmq_version(),
                  "cpus": ct.NCPU,
                  "loadavg_start": " ".join(f"{x:.2f}"
                                            for x in os.getloadavg()),
                  "vigil_runs": [], "celery_runs": [], "ceiling_runs": [],
                  "ceiling_headers_runs": [], "celery_early_runs": []}
        w, k = VIGIL_CONFIGS[-1]
        warm = min(args.count, 30_000)
        ct.log(f"vigil warm-up: -c {w} --consumers {k}, {warm} tasks")
        r = run_vigil(ct, vigil, url, warm, w, k, workdir, rpid, "warmup")
        report["vigil_warmup"] = r
        ct.log(f"  {r['result']['throughput_per_s']:.0f} tasks/s (not "
               f"counted)" if r["ok"] else f"  FAILED: {r['error']}")

        def do_vigil(i):
            for workers, consumers in VIGIL_CONFIGS:
                ct.log(f"round {i + 1}: vigil -c {workers} --consumers "
                       f"{consumers}, {args.count} tasks")
                r = run_vigil(ct, vigil, url, args.count, workers, consumers,
                              workdir, rpid, f"c{workers}k{consumers}-{i + 1}")
                r["round"] = i + 1
                report["vigil_runs"].append(r)
                ct.log(f"  {r['result']['throughput_per_s']:.0f} tasks/s"
                       if r["ok"] else f"  FAILED: {r['error']}")

        def do_celery(i):
            ct.log(f"round {i + 1}: celery prefork -c {CELERY_PROCESSES}, "
                   f"{args.celery_count} pre-loaded tasks")
            r = run_celery(ct, rabbit.port, url, args.celery_count, workdir,
                           rpid, f"{i + 1}")
            r["round"] = i + 1
            report["celery_runs"].append(r)
            ct.log(f"  {r['throughput_per_s']:.0f} tasks/s" if r["ok"]
                   else f"  FAILED: {r.get('error')}")
            # For reference only: Celery's default early acks (a task is
            # acknowledged before it runs, so a crash loses it).
            r = run_celery(ct, rabbit.port, url, args.celery_count, workdir,
                           rpid, f"early-{i + 1}", acks_late=False)
            r["round"] = i + 1
            report["celery_early_runs"].append(r)
            ct.log(f"  with early acks (reference): "
                   f"{r['throughput_per_s']:.0f} tasks/s" if r["ok"]
                   else f"  FAILED: {r.get('error')}")

        def do_ceiling(i):
            ct.log(f"round {i + 1}: amqp-ceiling, {args.ceiling_count} "
                   f"messages")
            r = run_ceiling(ct, vigil, url, args.ceiling_count, workdir, rpid,
                            f"{i + 1}")
            r["round"] = i + 1
            report["ceiling_runs"].append(r)
            ct.log(f"  {r['result']['throughput_per_s']:.0f} msgs/s"
                   if r["ok"] else f"  FAILED: {r['error']}")
            r = run_ceiling(ct, vigil, url, args.ceiling_count, workdir, rpid,
                            f"headers-{i + 1}", ["--task-headers"])
            r["round"] = i + 1
            report["ceiling_headers_runs"].append(r)
            ct.log(f"  with --task-headers: "
                   f"{r['result']['throughput_per_s']:.0f} msgs/s"
                   if r["ok"] else f"  FAILED: {r['error']}")

        steps = [do_vigil, do_celery, do_ceiling]
        for i in range(args.repeat):
            # Rotate the order each round: no figure always runs first.
            for step in steps[i % 3:] + steps[:i % 3]:
                step(i)

        report["derived"] = derive(report)
        report["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        report["warnings"] = busy_warnings(report, ct)
        report["total_seconds"] = round(time.monotonic() - t_start, 1)
        failed = not all(r["ok"] for key in ("vigil_runs", "celery_runs",
                                             "celery_early_runs",
                                             "ceiling_runs",
                                             "ceiling_headers_runs")
                         for r in report[key])
        report["ok"] = not failed
        text = summary_text(report, ct)
        if args.json:
            print(text, file=sys.stderr, flush=True)
            print(json.dumps(report, indent=1), flush=True)
        else:
            print(text, flush=True)
    finally:
        if rabbit is not None:
            rabbit.stop()
        ct.kill_all_children()
        if failed:
            ct.log(f"something failed; logs kept in {workdir}")
            try:
                os.unlink(workdir / "vigil")
            except OSError:
                pass
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if not failed else 1


def rabbitmq_version():
    try:
        import subprocess
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}",
                            "rabbitmq-server"], capture_output=True,
                           text=True, timeout=10)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
