#!/usr/bin/python3
"""Celery's remote control (kombu's pidbox) against vigil workers on Redis:
`inspect ping/stats/registered/active/revoked` from the API and the
`celery` command line, a Celery worker present too; destination lists; an
unknown command; malformed messages on the pidbox channel.

Run: /usr/bin/python3 tests/interop/test_celery_pidbox.py [check ...]
Prints "PASS name" / "FAIL name: reason"; exits 1 if any failed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import fmt, wait_until  # noqa: E402
from celery_common import PY_TASKS  # noqa: E402

RESULT_DB = 0
BROKER_DB_BASE = 54     # test_celery_redis has 14 checks on 16..29; 54..63 here
EXTRA_DBS = [13, 14, 15]    # past 63 (redis has 64 dbs): free ones
VIGIL_NAME = "vigil@pidbox-test"


def _db_of(index):
    return BROKER_DB_BASE + index if index < 10 else EXTRA_DBS[index - 10]


Checks = harness.CheckList(
    lambda name, index: harness.CheckEnv(name, _db_of(index), RESULT_DB),
    10 + len(EXTRA_DBS))


def wait_vigil_answers(app, name=VIGIL_NAME, timeout=20):
    """Pings until `name` answers (its subscription is up)."""
    got = {}

    def answered():
        replies = app.control.ping(timeout=0.5) or []
        for r in replies:
            got.update(r)
        return name in got
    wait_until(answered, timeout, f"{name} to answer ping")
    return got


@Checks.add
def check_a_inspect_api_beside_celery_worker(env):
    """ping/stats/registered/active/revoked answered by vigil and by a
    Celery worker in one broadcast."""
    env.start_vigil_worker("celery", 2, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_celery_worker(PY_TASKS, "pyq")
    app = env.celery_app()
    wait_vigil_answers(app)
    pongs = {}
    wait_until(lambda: pongs.update(
        {k: v for r in (app.control.ping(timeout=1.0) or []) for k, v in
         r.items()}) or len(pongs) >= 2, 20, "both workers to answer ping")
    assert pongs[VIGIL_NAME] == {"ok": "pong"}, fmt(pongs)
    insp = app.control.inspect(timeout=1.0)
    stats = insp.stats() or {}
    assert VIGIL_NAME in stats, fmt(stats)
    s = stats[VIGIL_NAME]
    assert isinstance(s.get("pid"), int) and "pool" in s, fmt(s)
    assert s["pool"]["max-concurrency"] == 2, fmt(s)
    reg = insp.registered() or {}
    assert "vigil.echo" in reg.get(VIGIL_NAME, []), fmt(reg)
    assert any("proj.add" in v for k, v in reg.items() if k != VIGIL_NAME), \
        fmt(reg)
    active = insp.active() or {}
    assert active.get(VIGIL_NAME) == [], fmt(active)
    revoked = insp.revoked() or {}
    assert revoked.get(VIGIL_NAME) == [], fmt(revoked)
    queues = insp.active_queues() or {}
    assert [q["name"] for q in queues.get(VIGIL_NAME, [])] == ["celery"], \
        fmt(queues)


@Checks.add
def check_b_destination_and_unknown_command(env):
    """A destination list leaves other workers silent; an unknown command
    gets kombu's error reply."""
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME="vigil@other")
    app = env.celery_app()
    wait_vigil_answers(app)
    wait_vigil_answers(app, "vigil@other")
    replies = app.control.ping(destination=[VIGIL_NAME], timeout=1.0)
    names = [k for r in replies for k in r]
    assert names == [VIGIL_NAME], fmt(replies)
    replies = app.control.broadcast("no_such_command", reply=True,
                                    destination=[VIGIL_NAME], timeout=1.0)
    assert replies == [{VIGIL_NAME: {"error": "KeyError('no_such_command')"}}], \
        fmt(replies)


@Checks.add
def check_c_bad_messages_on_the_pidbox(env):
    """Garbage published on kombu's pidbox channel is dropped; the worker
    still answers afterwards."""
    worker = env.start_vigil_worker("celery", 1,
                                    VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    app = env.celery_app()
    wait_vigil_answers(app)
    channel = f"/{env.broker_db}.celery.pidbox"
    bad = [b"", b"not json", b"[]", b'{"body": 5}',
           json.dumps({"body": "!!!", "properties":
                       {"body_encoding": "base64"}}).encode(),
           json.dumps({"body": json.dumps({"method": 7}),
                       "properties": {}}).encode(),
           json.dumps({"body": json.dumps({"method": "ping",
                                           "arguments": [1],
                                           "reply_to": "x"}),
                       "properties": {}}).encode(),
           json.dumps({"body": json.dumps({"method": "ping",
                                           "reply_to": {"exchange": 3}}),
                       "properties": {}}).encode(),
           b"\xff" * 1000]
    for b in bad:
        env.broker.publish(channel, b)
    replies = app.control.ping(destination=[VIGIL_NAME], timeout=2.0)
    assert replies == [{VIGIL_NAME: {"ok": "pong"}}], fmt(replies)
    assert worker.alive(), "vigil worker died"


@Checks.add
def check_d_celery_cli_inspect(env):
    """`celery -A app inspect ping` and `inspect registered` print the vigil
    worker beside the Celery worker."""
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_celery_worker(PY_TASKS, "pyq", module="cli_tasks")
    app = env.celery_app()
    wait_vigil_answers(app)
    workdir = next(p for p in env.dir.iterdir()
                   if (p / "cli_tasks.py").exists())
    cenv = dict(os.environ)
    cenv.update({"VIGIL_TEST_BROKER_URL": env.broker_url,
                 "VIGIL_TEST_BACKEND_URL": env.backend_url,
                 "VIGIL_TEST_DIR": str(env.dir),
                 "VIGIL_TEST_READY_FILE": str(workdir / "cli-ready"),
                 "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"})
    for cmd, want in (("ping", "pong"), ("registered", "vigil.echo")):
        cp = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "cli_tasks", "inspect",
             cmd, "--timeout", "2"], env=cenv, cwd=str(workdir),
            capture_output=True, text=True, timeout=60)
        out = cp.stdout + cp.stderr
        assert cp.returncode == 0, out
        assert VIGIL_NAME in out and want in out, out
        assert "celery" in out.lower(), out


def state_of(env, task_id):
    doc = harness.result_doc(env.results, task_id)
    return doc and doc.get("status")


@Checks.add
def check_e_revoke_before_arrival_and_at_eta(env):
    """A task revoked before it arrives is not run (REVOKED stored, acked);
    one revoked while it waits for its ETA is not run when the ETA comes;
    `inspect revoked` lists both; a task sent after them still runs."""
    from celery import uuid
    env.start_vigil_worker("celery", 2, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    app = env.celery_app()
    wait_vigil_answers(app)
    early = uuid()
    replies = app.control.revoke(early, reply=True,
                                 destination=[VIGIL_NAME], timeout=2.0)
    assert replies == [{VIGIL_NAME: {
        "ok": f"tasks {early} flagged as revoked"}}], fmt(replies)
    app.send_task("vigil.echo", args=["never"], task_id=early)
    wait_until(lambda: state_of(env, early) == "REVOKED", 20,
               "the early-revoked task to be REVOKED")
    later = app.send_task("vigil.echo", args=["eta"], countdown=4)
    # Held by the worker (fetched, waiting for its ETA) before the revoke.
    wait_until(lambda: env.broker.llen("celery") == 0
               and env.broker.hlen("unacked") == 1, 10,
               "the ETA task to be held by the worker")
    replies = app.control.revoke(later.id, reply=True,
                                 destination=[VIGIL_NAME], timeout=2.0)
    assert replies, "no reply to revoke"
    wait_until(lambda: state_of(env, later.id) == "REVOKED", 30,
               "the ETA task to be REVOKED at its ETA")
    doc = harness.result_doc(env.results, later.id)
    assert doc["result"]["exc_type"] == "TaskRevokedError", fmt(doc)
    res = app.AsyncResult(later.id)
    assert res.state == "REVOKED", res.state
    revoked = app.control.inspect(timeout=1.0,
                                  destination=[VIGIL_NAME]).revoked()
    assert set(revoked[VIGIL_NAME]) == {early, later.id}, fmt(revoked)
    ok = app.send_task("vigil.echo", args=["after"])
    assert ok.get(timeout=20) == "after"
    wait_until(lambda: env.broker.llen("celery") == 0
               and env.broker.hlen("unacked") == 0, 10,
               "the revoked messages to be acked")


@Checks.add
def check_f_revoked_id_expires(env):
    """With worker.revokes-expires 1 s a revoked id is forgotten: once
    `inspect revoked` no longer lists it, a task with that id runs."""
    from celery import uuid
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME,
                           VIGIL_WORKER_REVOKES_EXPIRES="1")
    app = env.celery_app()
    wait_vigil_answers(app)
    tid = uuid()
    app.control.revoke(tid, reply=True, destination=[VIGIL_NAME],
                       timeout=2.0)
    insp = app.control.inspect(timeout=1.0, destination=[VIGIL_NAME])
    wait_until(lambda: tid not in (insp.revoked() or {}).get(
        VIGIL_NAME, [tid]), 20, "the revoked id to expire")
    r = app.send_task("vigil.echo", args=["runs"], task_id=tid)
    assert r.get(timeout=20) == "runs"


@Checks.add
def check_g_celery_cli_control_revoke(env):
    """`celery -A app control revoke <id>` reaches the vigil worker."""
    from celery import uuid
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_celery_worker(PY_TASKS, "pyq", module="cli_tasks")
    app = env.celery_app()
    wait_vigil_answers(app)
    tid = uuid()
    out = celery_cli(env, "control", "revoke", tid)
    assert VIGIL_NAME in out and "flagged as revoked" in out, out
    revoked = app.control.inspect(timeout=1.0,
                                  destination=[VIGIL_NAME]).revoked()
    assert revoked[VIGIL_NAME] == [tid], fmt(revoked)
    out = celery_cli(env, "inspect", "revoked")
    assert tid in out, out


@Checks.add
def check_h_control_commands_and_shutdown(env):
    """time_limit/rate_limit/add_consumer answered in Celery's shapes (bad
    rates and unknown tasks with Celery's errors); conf has no URL;
    `celery control shutdown` drains the vigil worker, which exits 0."""
    worker = env.start_vigil_worker("celery", 1,
                                    VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_celery_worker(PY_TASKS, "pyq", module="cli_tasks")
    app = env.celery_app()
    wait_vigil_answers(app)
    dest = [VIGIL_NAME]
    r = app.control.time_limit("vigil.echo", soft=1, hard=2, reply=True,
                               destination=dest, timeout=2.0)
    assert r == [{VIGIL_NAME: {"ok": "time limits set successfully"}}], fmt(r)
    r = app.control.time_limit("no.such", soft=1, reply=True,
                               destination=dest, timeout=2.0)
    assert r == [{VIGIL_NAME: {"error": "unknown task"}}], fmt(r)
    r = app.control.rate_limit("vigil.echo", "10/m", reply=True,
                               destination=dest, timeout=2.0)
    assert r == [{VIGIL_NAME: {"ok": "new rate limit set successfully"}}], \
        fmt(r)
    r = app.control.rate_limit("vigil.echo", "fast", reply=True,
                               destination=dest, timeout=2.0)
    assert r[0][VIGIL_NAME]["error"].startswith(
        "Invalid rate limit string: ValueError("), fmt(r)
    r = app.control.rate_limit("no.such", "1/s", reply=True,
                               destination=dest, timeout=2.0)
    assert r == [{VIGIL_NAME: {"error": "unknown task"}}], fmt(r)
    r = app.control.add_consumer("other", reply=True, destination=dest,
                                 timeout=2.0)
    assert r == [{VIGIL_NAME: {"ok": "add consumer other"}}], fmt(r)
    r = app.control.enable_events(reply=True, destination=dest, timeout=2.0)
    assert r == [{VIGIL_NAME: {"ok": "task events enabled"}}], fmt(r)
    r = app.control.disable_events(reply=True, destination=dest, timeout=2.0)
    assert r == [{VIGIL_NAME: {"ok": "task events disabled"}}], fmt(r)
    conf = app.control.inspect(timeout=1.0, destination=dest).conf()
    assert "://" not in json.dumps(conf), fmt(conf)
    # shutdown is answered by no one (Celery's own workers neither): the CLI
    # says "No nodes replied"; what counts is the drain.
    celery_cli(env, "control", "shutdown", "--destination", VIGIL_NAME,
               check=False)
    worker.expected_exit = True
    wait_until(lambda: not worker.alive(), 40, "the vigil worker to drain")
    assert worker.returncode == 0, worker.log_tail()


@Checks.add
def check_i_events_receiver_sees_vigil_worker(env):
    """With worker.send-events, a Celery events Receiver's State has the
    vigil worker alive (online + heartbeats with freq/loadavg/sw_*), its
    tasks received, started, succeeded (result repr, runtime) and failed,
    and the worker offline after it stops."""
    import threading
    app = env.celery_app()
    state = app.events.State()
    seen = []
    stop = threading.Event()

    def on_event(event):
        seen.append(event)
        state.event(event)

    def listen():
        with app.connection_for_read() as conn:
            recv = app.events.Receiver(conn, handlers={"*": on_event})
            while not stop.is_set():
                try:
                    recv.capture(limit=None, timeout=0.5, wakeup=False)
                except Exception:       # socket.timeout: poll stop again
                    pass
    t = threading.Thread(target=listen, daemon=True)
    t.start()
    # The receiver's PSUBSCRIBE is in place before the worker says online.
    wait_until(lambda: env.broker.execute_command("PUBSUB", "NUMPAT") >= 1,
               10, "the receiver to subscribe")
    worker = env.start_vigil_worker("celery", 1,
                                    VIGIL_WORKER_HOSTNAME=VIGIL_NAME,
                                    VIGIL_WORKER_SEND_EVENTS="true")
    wait_until(lambda: sum(1 for e in seen
                           if e.get("hostname") == VIGIL_NAME
                           and e["type"] == "worker-heartbeat") >= 2, 20,
               "two heartbeats from the vigil worker")
    w = state.workers[VIGIL_NAME]
    assert w.alive, fmt(seen[-3:])
    hb = [e for e in seen if e["type"] == "worker-heartbeat"][-1]
    for key in ("freq", "active", "processed", "loadavg", "sw_ident",
                "sw_ver", "sw_sys", "pid", "clock", "timestamp"):
        assert key in hb, fmt(hb)
    assert any(e["type"] == "worker-online" for e in seen), fmt(seen)
    # Task events: one task succeeds, one fails (its soft time limit).
    ok = app.send_task("vigil.echo", args=["x"])
    bad = app.send_task("vigil.sleep", args=[60], soft_time_limit=0.2)
    assert ok.get(timeout=20) == "x"
    bad.get(timeout=20, propagate=False)
    wait_until(lambda: ok.id in state.tasks and bad.id in state.tasks
               and state.tasks[ok.id].state == "SUCCESS"
               and state.tasks[bad.id].state == "FAILURE", 20,
               "the task events to reach the State")
    t = state.tasks[ok.id]
    assert t.name == "vigil.echo" and t.result == "'x'", fmt(t.as_dict())
    assert t.worker.hostname == VIGIL_NAME, fmt(t.as_dict())
    assert t.args == "['x']" and t.runtime is not None, fmt(t.as_dict())
    assert t.received and t.started and t.succeeded, fmt(t.as_dict())
    f = state.tasks[bad.id]
    assert "SoftTimeLimitExceeded" in f.exception, fmt(f.as_dict())
    types = [e["type"] for e in seen if e.get("uuid") == ok.id]
    assert types == ["task-received", "task-started", "task-succeeded"], \
        fmt(types)
    for key in ("uuid", "name", "args", "kwargs", "retries", "eta",
                "expires", "root_id", "parent_id", "hostname", "timestamp",
                "clock", "utcoffset", "pid"):
        assert key in next(e for e in seen if e.get("uuid") == ok.id), key
    # A retry: task-retried, then the second run's events.
    fl = app.send_task("vigil.flaky", args=[1])
    assert fl.get(timeout=20) == 2
    wait_until(lambda: any(e["type"] == "task-retried"
                           and e.get("uuid") == fl.id for e in seen)
               and fl.id in state.tasks
               and state.tasks[fl.id].state == "SUCCESS", 20,
               "task-retried and the retry's success")
    retried = next(e for e in seen if e["type"] == "task-retried"
                   and e.get("uuid") == fl.id)
    assert retried["exception"].startswith("Retry("), fmt(retried)
    # `vigil send-task` with tasks.send-sent-event: task-sent, then the
    # worker's events for it.
    sent = env.send_task("vigil.echo", ["sent"],
                         VIGIL_TASKS_SEND_SENT_EVENT="true")
    wait_until(lambda: sent in state.tasks
               and state.tasks[sent].state == "SUCCESS"
               and any(e["type"] == "task-sent" and e.get("uuid") == sent
                       for e in seen), 20, "task-sent and its success")
    ev = next(e for e in seen if e["type"] == "task-sent"
              and e.get("uuid") == sent)
    assert ev["name"] == "vigil.echo" and ev["queue"] == "celery", fmt(ev)
    assert state.tasks[sent].sent, fmt(state.tasks[sent].as_dict())
    worker.stop()
    wait_until(lambda: any(e["type"] == "worker-offline" for e in seen), 40,
               "worker-offline")
    assert not state.workers[VIGIL_NAME].alive
    stop.set()


@Checks.add
def check_j_celery_cli_rate_limit_and_consumers(env):
    """`celery control rate_limit|add_consumer|cancel_consumer` from the
    Celery CLI, a Celery worker present too: the vigil worker answers in
    Celery's words, holds a rate-limited task back for its token, starts
    and stops consuming a queue, and `active_queues` follows."""
    env.start_vigil_worker("celery", 2, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_celery_worker(PY_TASKS, "pyq", module="cli_tasks")
    app = env.celery_app()
    wait_vigil_answers(app)
    dest = [VIGIL_NAME]
    out = celery_cli(env, "control", "rate_limit", "vigil.echo", "4/m",
                     "--destination", VIGIL_NAME)
    assert VIGIL_NAME in out and "new rate limit set successfully" in out, \
        out
    # 4/m: a token every 15 s, so of two sent together one waits for it.
    first = app.send_task("vigil.echo", args=["one"])
    second = app.send_task("vigil.echo", args=["two"])
    assert first.get(timeout=40) == "one"
    assert second.get(timeout=40) == "two"
    stats = app.control.inspect(timeout=1.0, destination=dest).stats()
    assert stats[VIGIL_NAME]["rate_limited"] == 1, fmt(stats)
    out = celery_cli(env, "control", "rate_limit", "vigil.echo", "0",
                     "--destination", VIGIL_NAME)
    assert "rate limit disabled successfully" in out, out

    add_consumer_extra(env, app, VIGIL_NAME)
    out = celery_cli(env, "control", "cancel_consumer", "extra",
                     "--destination", VIGIL_NAME)
    assert VIGIL_NAME in out and "no longer consuming from extra" in out, out
    queues = app.control.inspect(timeout=1.0,
                                 destination=dest).active_queues()
    assert [q["name"] for q in queues[VIGIL_NAME]] == ["celery"], fmt(queues)
    # The Celery worker heard none of it (destination): still on pyq only.
    out = celery_cli(env, "inspect", "active_queues")
    assert "pyq" in out, out


def listed_ids(replies, key=None):
    """The task ids in vigil's `inspect reserved/scheduled` answer (under
    `key` for scheduled's entries)."""
    out = []
    for entry in (replies or {}).get(VIGIL_NAME, []):
        out.append((entry[key] if key else entry)["id"])
    return out


@Checks.add
def check_k_inspect_scheduled_and_reserved(env):
    """Tasks sent with a countdown are listed by `inspect scheduled` (eta,
    priority, Request.info) and the Celery CLI, until they run; with the
    only slot busy, further tasks are listed by `inspect reserved` until a
    revoke (terminate, TERM) of the busy one lets them run."""
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_celery_worker(PY_TASKS, "pyq", module="cli_tasks")
    app = env.celery_app()
    wait_vigil_answers(app)
    insp = app.control.inspect(timeout=2.0, destination=[VIGIL_NAME])
    later = [app.send_task("vigil.echo", args=[f"eta{i}"], countdown=6)
             for i in range(2)]
    ids = {r.id for r in later}
    got = {}
    wait_until(lambda: got.update(insp.scheduled() or {})
               or set(listed_ids(got, "request")) == ids, 20,
               "the countdown tasks in inspect scheduled")
    for entry in got[VIGIL_NAME]:
        assert isinstance(entry["eta"], str) and "T" in entry["eta"], \
            fmt(entry)
        assert isinstance(entry["priority"], int), fmt(entry)
        req = entry["request"]
        assert req["name"] == "vigil.echo" and req["hostname"] == VIGIL_NAME, \
            fmt(entry)
        assert req["time_start"] is None and "args" in req, fmt(entry)
    out = celery_cli(env, "inspect", "scheduled")
    assert all(i in out for i in ids) and "eta" in out, out
    assert [r.get(timeout=30) for r in later] == ["eta0", "eta1"]
    wait_until(lambda: (insp.scheduled() or {}).get(VIGIL_NAME) == [], 20,
               "inspect scheduled to be empty once they ran")
    busy = app.send_task("vigil.sleep", args=[120])
    wait_until(lambda: busy.id in listed_ids(insp.active()), 20,
               "the sleep task to occupy the slot")
    waiting = [app.send_task("vigil.echo", args=[f"r{i}"]) for i in range(2)]
    wids = {r.id for r in waiting}
    got = {}
    wait_until(lambda: got.update(insp.reserved() or {})
               or set(listed_ids(got)) == wids, 20,
               "the waiting tasks in inspect reserved")
    for req in got[VIGIL_NAME]:
        assert req["name"] == "vigil.echo" and req["worker_pid"] is None, \
            fmt(req)
        assert req["delivery_info"]["routing_key"] == "celery", fmt(req)
    out = celery_cli(env, "inspect", "reserved")
    assert all(i in out for i in wids), out
    r = app.control.revoke(busy.id, terminate=True, reply=True,
                           destination=[VIGIL_NAME], timeout=2.0)
    assert r == [{VIGIL_NAME: {"ok": f"terminate: {busy.id}"}}], fmt(r)
    assert [w.get(timeout=30) for w in waiting] == ["r0", "r1"]
    wait_until(lambda: state_of(env, busy.id) == "REVOKED", 20,
               "the cancelled sleep to be REVOKED")
    wait_until(lambda: (insp.reserved() or {}).get(VIGIL_NAME) == [], 20,
               "inspect reserved to be empty once they ran")


@Checks.add
def check_l_revoke_terminate_sigkill(env):
    """revoke(terminate=True, signal='SIGKILL') of a hung vigil.block task
    (it never looks at its flag; a hard limit runs it on a thread of its
    own) abandons it at once: REVOKED TaskRevokedError('terminated') is
    stored and the worker runs the next task; unknown signals get Celery's
    error replies and the worker carries on."""
    worker = env.start_vigil_worker("celery", 1,
                                    VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    app = env.celery_app()
    wait_vigil_answers(app)
    dest = [VIGIL_NAME]
    insp = app.control.inspect(timeout=2.0, destination=dest)
    hung = app.send_task("vigil.block", args=[600], time_limit=900)
    wait_until(lambda: hung.id in listed_ids(insp.active()), 20,
               "the block task to run")
    after = app.send_task("vigil.echo", args=["next"])
    r = app.control.revoke(hung.id, terminate=True, signal="NOSUCH",
                           reply=True, destination=dest, timeout=2.0)
    assert r == [{VIGIL_NAME: {"error": "AttributeError(\"module 'signal' "
                               "has no attribute 'SIGNOSUCH'\")"}}], fmt(r)
    r = app.control.revoke(hung.id, terminate=True, signal="kill",
                           reply=True, destination=dest, timeout=2.0)
    assert r == [{VIGIL_NAME: {
        "error": "TypeError('signal name must be uppercase string.')"}}], \
        fmt(r)
    r = app.control.revoke(hung.id, terminate=True, signal="SIGKILL",
                           reply=True, destination=dest, timeout=2.0)
    assert r == [{VIGIL_NAME: {"ok": f"terminate: {hung.id}"}}], fmt(r)
    wait_until(lambda: state_of(env, hung.id) == "REVOKED", 20,
               "the killed task to be REVOKED")
    doc = harness.result_doc(env.results, hung.id)
    assert doc["result"]["exc_type"] == "TaskRevokedError", fmt(doc)
    assert "terminated" in json.dumps(doc["result"]), fmt(doc)
    assert after.get(timeout=20) == "next"
    assert worker.alive(), worker.log_tail()


def add_consumer_extra(env, app, name):
    """`celery control add_consumer extra` to worker `name` (consuming
    `celery`): Celery's answer, a task sent to `extra` runs, and
    `active_queues` lists both queues."""
    out = celery_cli(env, "control", "add_consumer", "extra",
                     "--destination", name)
    assert name in out and "add consumer extra" in out, out
    r = app.send_task("vigil.echo", args=["from extra"], queue="extra")
    assert r.get(timeout=30) == "from extra"
    queues = app.control.inspect(timeout=1.0,
                                 destination=[name]).active_queues()
    assert [q["name"] for q in queues[name]] == ["celery", "extra"], \
        fmt(queues)


def celery_cli(env, *args, check=True):
    """Runs `celery -A cli_tasks <args> --timeout 2` in the Celery
    worker's directory; returns its output."""
    workdir = next(p for p in env.dir.iterdir()
                   if (p / "cli_tasks.py").exists())
    cenv = dict(os.environ)
    cenv.update({"VIGIL_TEST_BROKER_URL": env.broker_url,
                 "VIGIL_TEST_BACKEND_URL": env.backend_url,
                 "VIGIL_TEST_DIR": str(env.dir),
                 "VIGIL_TEST_READY_FILE": str(workdir / "cli-ready"),
                 "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"})
    cp = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "cli_tasks", *args,
         "--timeout", "2"], env=cenv, cwd=str(workdir),
        capture_output=True, text=True, timeout=60)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0 or not check, out
    return out


def main(argv):
    return harness.main_of(Checks, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
