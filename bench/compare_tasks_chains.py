"""Chains and task events for bench/compare_tasks.py (--scenario chains).

One private redis-server (compare_tasks.start_redis). --repeat rounds, each
measuring, in this order:

1. chains on vigil: --chains chains of 10 vigil.echo tasks
   (`chain(echo.s(i), echo.s(), ... )`, each link's result the next one's
   argument) pre-loaded by a Celery 5 client (msgpack, Redis result
   backend), then `vigil run worker -c 2` (remote control off) started; the
   clock runs from its first consumption (the queue shorter than the
   pre-load) until the result db holds one result per task (10 x chains
   keys): every link stored its result, so every chain finished.
2. chains on Celery: the same pre-load, a Celery solo worker (-c 1,
   --without-mingle/gossip/heartbeat, results on, the task registered as
   vigil.echo), the same clock.
3. events off, then on, for vigil: --event-count plain vigil.echo tasks
   (no result backend) pre-loaded, `vigil run worker -c 2` with the remote
   control on and worker.send-events false / true; the clock runs from the
   first consumption until the queue and the `unacked` hash are empty.

Reported: medians of tasks/s per figure, vigil / Celery for chains, and the
events-on rate as a fraction of the events-off one (issue 19's target: the
events cost under 10 %). Each run records the machine's other CPU use
(compare_tasks.CpuWindow): the machine is shared.
"""

import json
import os
import statistics
import time
from pathlib import Path

import redis

CHAIN_LEN = 10
BROKER_DB = 5
RESULT_DB = 6
POLL_S = 0.02

CLIENT = '''\
"""Pre-loads chains or plain tasks for bench/compare_tasks_chains.py."""
import json
import os
import sys
import time

from celery import Celery, chain

env = os.environ
app = Celery("benchchains", broker=env["BENCH_BROKER"],
             backend=env.get("BENCH_BACKEND") or None)
app.conf.update(task_serializer="msgpack", result_serializer="msgpack",
                accept_content=["msgpack"], worker_hijack_root_logger=False)


@app.task(name="vigil.echo")
def echo(value, **kwargs):
    return value


if __name__ == "__main__":
    mode, n = sys.argv[1], int(sys.argv[2])
    t0 = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for i in range(n):
            if mode == "chains":
                chain(echo.s(i), *[echo.s() for _ in range(%d)]) \\
                    .apply_async(producer=producer)
            else:
                app.send_task("vigil.echo", args=[i], producer=producer,
                              ignore_result=True)
    dt = time.perf_counter() - t0
    print(json.dumps({"published": n, "seconds": dt,
                      "publish_per_s": n / dt if dt > 0 else 0}))
''' % (CHAIN_LEN - 1)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def preload(base, workdir, env, mode, n):
    rc, out, err = base.run_capture(
        [base.PYTHON, str(workdir / "benchchains.py"), mode, str(n)],
        120 + n / 100, env=env, cwd=str(workdir))
    for line in out.splitlines():
        if line.startswith("{"):
            return json.loads(line), None
    return None, f"pre-load failed: exit {rc}; {err.strip()[-600:]}"


def measure(base, worker_argv, worker_env, workdir, redis_pid, tag, broker,
            loaded, done, timeout):
    """Starts the worker; the clock runs from the first consumption
    (`loaded()` false) until `done()`. Returns (run fields, error)."""
    cpu = base.CpuWindow(redis_pid).start()
    worker = base.spawn(worker_argv, workdir / f"worker-{tag}.log",
                        env=worker_env, cwd=str(workdir))
    try:
        deadline = time.monotonic() + 60
        while loaded():
            if worker.poll() is not None:
                return None, f"worker exited ({worker.returncode}) early"
            if time.monotonic() > deadline:
                return None, "the worker consumed nothing in 60 s"
            time.sleep(POLL_S)
        t0 = time.perf_counter()
        w0 = base._proc_ticks(worker.pid)
        deadline = time.monotonic() + timeout
        while not done():
            if worker.poll() is not None:
                return None, f"worker exited ({worker.returncode})"
            if time.monotonic() > deadline:
                return None, f"not done after {timeout:.0f} s"
            time.sleep(POLL_S)
        secs = time.perf_counter() - t0
        wcpu = (base._proc_ticks(worker.pid) - w0) / base.CLK_TCK
        return {"seconds": round(secs, 3), "worker_cpu_s": round(wcpu, 2)}, \
            None
    finally:
        base.stop(worker, timeout=15)
        broker.close()
        fields_cpu = cpu.stop()
        measure.last_machine = fields_cpu


def queue_len(r):
    pipe = r.pipeline(transaction=False)
    for k in ["celery"] + [f"celery\x06\x16{p}" for p in (3, 6, 9)]:
        pipe.llen(k)
    pipe.hlen("unacked")
    v = pipe.execute()
    return sum(v[:-1]), v[-1]


def preloaded(base, port, workdir, result_url, scenario, count, run):
    """Empties the broker db and publishes `count` messages of `scenario`
    with the Celery client (results to `result_url`, "" for none). Answers
    (broker url, the client's environment), or (None, None) with
    run["error"] set; run["publish"] gets the publishing figures."""
    base.flushdb(port, BROKER_DB)
    burl = f"redis://127.0.0.1:{port}/{BROKER_DB}"
    env = dict(os.environ, BENCH_BROKER=burl, BENCH_BACKEND=result_url,
               PYTHONPATH=str(workdir), PYTHONDONTWRITEBYTECODE="1")
    pub, err = preload(base, workdir, env, scenario, count)
    if err:
        run["error"] = err
        return None, None
    run["publish"] = pub
    return burl, env


def run_chains(base, kind, vigil, port, chains, workdir, redis_pid, tag):
    base.flushdb(port, RESULT_DB)
    rurl = f"redis://127.0.0.1:{port}/{RESULT_DB}"
    run = {"kind": kind, "chains": chains, "tasks": chains * CHAIN_LEN,
           "ok": False}
    burl, env = preloaded(base, port, workdir, rurl, "chains", chains, run)
    if burl is None:
        return run
    # The client's own SETs (none: it stores nothing) leave the result db
    # empty; each stored result is one key.
    b = redis.Redis(host="127.0.0.1", port=port, db=BROKER_DB,
                    socket_timeout=10)
    res = redis.Redis(host="127.0.0.1", port=port, db=RESULT_DB,
                      socket_timeout=10)
    want = chains * CHAIN_LEN
    if kind == "vigil":
        argv = [vigil, "run", "worker", "-Q", "celery", "-c", "2"]
        wenv = dict(os.environ, VIGIL_BROKER_URL=burl,
                    VIGIL_TASKS_RESULT_BACKEND=rurl,
                    VIGIL_WORKER_REMOTE_CONTROL="false",
                    VIGIL_LOG_LEVEL="warning")
    else:
        argv = [base.PYTHON, "-m", "celery", "-A", "benchchains", "worker",
                "-P", "solo", "--without-mingle", "--without-gossip",
                "--without-heartbeat", "-c", "1", "--loglevel", "WARNING",
                "-n", f"chains-{tag}@%h"]
        wenv = env
    fields, err = measure(
        base, argv, wenv, workdir, redis_pid, f"{kind}-chains-{tag}", b,
        loaded=lambda: queue_len(b)[0] >= chains,
        done=lambda: res.dbsize() >= want, timeout=120 + want / 100)
    run["machine"] = measure.last_machine
    res.close()
    if err:
        run["error"] = err
        return run
    run.update(fields, ok=True,
               tasks_per_s=round(want / fields["seconds"], 1),
               chains_per_s=round(chains / fields["seconds"], 1))
    return run


def run_events(base, vigil, port, count, events, workdir, redis_pid, tag,
               binary="vigil"):
    run = {"events": events, "tasks": count, "ok": False, "binary": binary}
    burl, env = preloaded(base, port, workdir, "", "plain", count, run)
    if burl is None:
        return run
    b = redis.Redis(host="127.0.0.1", port=port, db=BROKER_DB,
                    socket_timeout=10)
    # A subscriber to every event channel, so that PUBLISH does the work it
    # does when `celery events` listens; it counts what arrives.
    import threading
    sub = redis.Redis(host="127.0.0.1", port=port, db=BROKER_DB,
                      socket_timeout=10).pubsub(ignore_subscribe_messages=True)
    sub.psubscribe(f"/{BROKER_DB}.celeryev/*")
    # Redis cuts a subscriber off past 32 MB of pending output (pubsub's
    # default client-output-buffer-limit); 300,000 events are ~90 MB and
    # this reader is slower than vigil, so the limit is lifted: otherwise
    # PUBLISH stops delivering mid-run and events-on looks cheaper.
    b.config_set("client-output-buffer-limit", "pubsub 0 0 0")
    counted = {"n": 0}
    stop = threading.Event()

    def drain():            # read as they come: Redis drops a slow reader
        while not stop.is_set():
            try:
                if sub.get_message(timeout=0.2) is not None:
                    counted["n"] += 1
            except redis.RedisError:
                return
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    argv = [vigil, "run", "worker", "-Q", "celery", "-c", "2"]
    wenv = dict(os.environ, VIGIL_BROKER_URL=burl, VIGIL_LOG_LEVEL="warning",
                VIGIL_WORKER_SEND_EVENTS="true" if events else "false")
    fields, err = measure(
        base, argv, wenv, workdir, redis_pid,
        f"events-{'on' if events else 'off'}-{binary}-{tag}", b,
        loaded=lambda: queue_len(b)[0] >= count,
        done=lambda: queue_len(b) == (0, 0),
        timeout=120 + count / 100)
    run["machine"] = measure.last_machine
    # The worker was stopped: what it published has arrived by now or soon.
    last, t_end = -1, time.monotonic() + 10
    while counted["n"] != last and time.monotonic() < t_end:
        last = counted["n"]
        time.sleep(0.5)
    stop.set()
    reader.join(timeout=5)
    sub.close()
    run["event_messages_received"] = counted["n"]
    if err:
        run["error"] = err
        return run
    run.update(fields, ok=True,
               tasks_per_s=round(count / fields["seconds"], 1))
    return run


def summary(report):
    d = report["derived"]
    lines = [f"chains of {CHAIN_LEN} vigil.echo tasks, "
             f"{report['args']['chains']} chains, Redis broker and result "
             f"backend, medians of {report['args']['repeat']} rounds:"]
    lines.append(f"  vigil (-c 2): {d['vigil_chain_tasks_per_s']} tasks/s "
                 f"({d['vigil_chains_per_s']} chains/s)")
    lines.append(f"  Celery (solo): {d['celery_chain_tasks_per_s']} tasks/s "
                 f"({d['celery_chains_per_s']} chains/s)")
    lines.append(f"  vigil / Celery: {d['chain_ratio']}")
    lines.append(f"task events, {report['args']['event_count']} vigil.echo "
                 f"tasks, no results, vigil -c 2:")
    lines.append(f"  events off: {d['events_off_tasks_per_s']} tasks/s, on: "
                 f"{d['events_on_tasks_per_s']} tasks/s "
                 f"(on / off {d['events_on_over_off']}); event messages (lists of up to 24 on task.multi) "
                 f"per run with events on: {d['event_messages_received']}")
    if d.get("events_on_baseline_tasks_per_s"):
        lines.append(f"  baseline binary, events on: "
                     f"{d['events_on_baseline_tasks_per_s']} tasks/s (on / off "
                     f"{d['events_on_baseline_over_off']})")
    for r in d.get("events_rounds", []):
        lines.append(f"  round {r['round']}: " + ", ".join(
            f"{k} {v}" for k, v in r.items() if k != "round"))
    others = [r["machine"]["other_cpu_share"] for r in report["runs"]
              if r.get("machine")]
    if others:
        lines.append(f"  other processes used {max(others):.0%} of the "
                     f"machine at most during a run (shared machine)")
    return "\n".join(lines)


def main(args, base):
    t_start = time.monotonic()
    import tempfile
    import shutil
    workdir = Path(tempfile.mkdtemp(prefix="vigil-chains-"))
    redis_proc = None
    failed = True
    try:
        vigil = str(workdir / "vigil")
        vinfo = base.stable_copy(args.vigil, vigil)
        baseline = None
        if getattr(args, "events_baseline", None):
            baseline = str(workdir / "vigil-baseline")
            vinfo["events_baseline"] = base.stable_copy(args.events_baseline,
                                                        baseline)
        (workdir / "benchchains.py").write_text(CLIENT)
        redis_proc, port = base.start_redis(workdir)
        base.log(f"redis-server on 127.0.0.1:{port}; logs in {workdir}")
        report = {"args": vars(args), "vigil": vinfo,
                  "git_head": base.git_head(), "cpus": base.NCPU,
                  "loadavg_start": " ".join(f"{x:.2f}"
                                            for x in os.getloadavg()),
                  "runs": []}
        for i in range(args.repeat):
            rnd = f"round {i + 1}/{args.repeat}"
            for kind in ("vigil", "celery") if args.chains > 0 else ():
                base.log(f"{rnd}: chains on {kind}, {args.chains} chains")
                r = run_chains(base, kind, vigil, port, args.chains, workdir,
                               redis_proc.pid, f"{i + 1}")
                r.update(scenario="chains", round=i + 1)
                report["runs"].append(r)
                base.log(f"  {r['tasks_per_s']:.0f} tasks/s" if r["ok"]
                         else f"  FAILED: {r['error']}")
            # With --events-baseline, that binary's events-on run sits
            # between the other two in each round (interleaved rounds).
            configs = [(False, "vigil", vigil)]
            if baseline:
                configs.append((True, "baseline", baseline))
            configs.append((True, "vigil", vigil))
            for events, binary, path in configs:
                base.log(f"{rnd}: {binary}, events "
                         f"{'on' if events else 'off'}, "
                         f"{args.event_count} tasks")
                r = run_events(base, path, port, args.event_count, events,
                               workdir, redis_proc.pid, f"{i + 1}", binary)
                r.update(scenario="events", round=i + 1,
                         loadavg=" ".join(f"{x:.2f}"
                                          for x in os.getloadavg()))
                report["runs"].append(r)
                base.log(f"  {r['tasks_per_s']:.0f} tasks/s, "
                         f"{r['event_messages_received']} event messages" if r["ok"]
                         else f"  FAILED: {r['error']}")

        def pick(scenario, key, **match):
            return med([r.get(key) for r in report["runs"]
                        if r["scenario"] == scenario and r["ok"]
                        and all(r.get(k) == v for k, v in match.items())])
        d = {"vigil_chain_tasks_per_s": pick("chains", "tasks_per_s",
                                             kind="vigil"),
             "vigil_chains_per_s": pick("chains", "chains_per_s",
                                        kind="vigil"),
             "celery_chain_tasks_per_s": pick("chains", "tasks_per_s",
                                              kind="celery"),
             "celery_chains_per_s": pick("chains", "chains_per_s",
                                         kind="celery"),
             "events_off_tasks_per_s": pick("events", "tasks_per_s",
                                            events=False),
             "events_on_tasks_per_s": pick("events", "tasks_per_s",
                                           events=True, binary="vigil"),
             "events_on_baseline_tasks_per_s": pick(
                 "events", "tasks_per_s", events=True, binary="baseline"),
             "event_messages_received": pick("events", "event_messages_received",
                                     events=True, binary="vigil")}
        v, c = d["vigil_chain_tasks_per_s"], d["celery_chain_tasks_per_s"]
        d["chain_ratio"] = round(v / c, 1) if v and c else None
        on, off = d["events_on_tasks_per_s"], d["events_off_tasks_per_s"]
        d["events_on_over_off"] = round(on / off, 3) if on and off else None
        bon = d["events_on_baseline_tasks_per_s"]
        d["events_on_baseline_over_off"] = round(bon / off, 3) \
            if bon and off else None
        # Per round too: the machine's load moves between rounds.
        rounds = {}
        for r in report["runs"]:
            if r["scenario"] == "events" and r["ok"]:
                key = "off" if not r["events"] else f"on_{r['binary']}"
                rounds.setdefault(r["round"], {})[key] = r["tasks_per_s"]
        d["events_rounds"] = [
            dict(v, round=k, **{f"{c}_over_off": round(v[c] / v["off"], 3)
                                for c in ("on_vigil", "on_baseline")
                                if c in v and v.get("off")})
            for k, v in sorted(rounds.items())]
        report["derived"] = d
        report["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        report["total_seconds"] = round(time.monotonic() - t_start, 1)
        failed = not all(r["ok"] for r in report["runs"])
        report["ok"] = not failed
        text = summary(report)
        if args.json:
            print(text, file=base.sys.stderr, flush=True)
            print(json.dumps(report, indent=1), flush=True)
        else:
            print(text, flush=True)
    finally:
        if redis_proc is not None:
            base.stop(redis_proc, timeout=5)
        base.kill_all_children()
        if failed:
            base.log(f"something failed; logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if not failed else 1
