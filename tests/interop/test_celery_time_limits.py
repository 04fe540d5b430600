#!/usr/bin/python3
"""Celery time limits on vigil workers (Redis broker and result backend,
the real Celery 5.2 client): the soft limit stops a task that honours it
(FAILURE SoftTimeLimitExceeded), the hard limit frees the worker from one
that does not (FAILURE TimeLimitExceeded, and the next task runs on the
same single worker), limits from the message and from the remote-control
`time_limit` command, counted in `inspect stats`; `inspect active` and
`revoke(terminate=True)`, which sets a running task's cancellation flag.

Run: /usr/bin/python3 tests/interop/test_celery_time_limits.py [check ...]
Prints "PASS name" / "FAIL name: reason"; exits 1 if any failed.
"""

import sys
from pathlib import Path

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import fmt, wait_until  # noqa: E402

# Results in RESULT_DB, check i's broker in BROKER_DB_BASE + i (31..38);
# clear of the other Celery checks' databases.
RESULT_DB = 30
BROKER_DB_BASE = 31
MAX_CHECKS = 8
VIGIL_NAME = "vigil@time-limits"


Checks = harness.db_checks(BROKER_DB_BASE, RESULT_DB, MAX_CHECKS)


def failure_of(app, task_id, timeout=30):
    """Waits for the task's result; returns (state, exception)."""
    res = app.AsyncResult(task_id)
    exc = res.get(timeout=timeout, propagate=False)
    return res.state, exc


def wait_vigil_answers(app, timeout=20):
    wait_until(lambda: any(VIGIL_NAME in r for r in
                           (app.control.ping(timeout=0.5) or [])),
               timeout, f"{VIGIL_NAME} to answer ping")


@Checks.add
def check_a_soft_limit_stops_sleep(env):
    """vigil.sleep(60) with soft_time_limit=0.5 fails with Celery's
    SoftTimeLimitExceeded, as Celery's result backend stores it."""
    from celery.exceptions import SoftTimeLimitExceeded
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    app = env.celery_app()
    r = app.send_task("vigil.sleep", args=[60], soft_time_limit=0.5)
    state, exc = failure_of(app, r.id)
    assert state == "FAILURE", state
    assert isinstance(exc, SoftTimeLimitExceeded), repr(exc)
    doc = harness.result_doc(env.results, r.id)
    assert doc["result"]["exc_type"] == "SoftTimeLimitExceeded", fmt(doc)
    assert doc["result"]["exc_module"] == "billiard.exceptions", fmt(doc)


@Checks.add
def check_b_hard_limit_frees_the_worker(env):
    """With one worker thread, vigil.block(120) (which ignores its soft
    limit) with time_limit=1 ends in FAILURE TimeLimitExceeded(1), and the
    task sent after it runs; `inspect stats` counts the timeout."""
    from celery.exceptions import TimeLimitExceeded
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    app = env.celery_app()
    hung = app.send_task("vigil.block", args=[120], time_limit=1,
                         soft_time_limit=0.5)
    after = app.send_task("vigil.echo", args=["next"])
    state, exc = failure_of(app, hung.id)
    assert state == "FAILURE", state
    assert isinstance(exc, TimeLimitExceeded), repr(exc)
    assert exc.args == (1.0,), repr(exc.args)
    assert after.get(timeout=30) == "next"
    wait_vigil_answers(app)
    stats = app.control.inspect(timeout=1.0,
                                destination=[VIGIL_NAME]).stats() or {}
    assert stats[VIGIL_NAME]["time_limits_exceeded"] == {
        "soft": 0, "hard": 1}, fmt(stats)
    # The worker is still whole: another hung task is cut off too.
    again = app.send_task("vigil.block", args=[120], time_limit=1)
    state, exc = failure_of(app, again.id)
    assert isinstance(exc, TimeLimitExceeded), repr(exc)


@Checks.add
def check_c_time_limit_command(env):
    """`app.control.time_limit` sets the limits of tasks whose messages
    carry none: vigil.sleep stops at the soft one, vigil.block is cut off
    at the hard one; limits set to none lift them again."""
    from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    app = env.celery_app()
    wait_vigil_answers(app)
    dest = [VIGIL_NAME]
    for task in ("vigil.sleep", "vigil.block"):
        r = app.control.time_limit(task, soft=0.5, hard=1.5, reply=True,
                                   destination=dest, timeout=2.0)
        assert r == [{VIGIL_NAME: {"ok": "time limits set successfully"}}], \
            fmt(r)
    s = app.send_task("vigil.sleep", args=[60])
    b = app.send_task("vigil.block", args=[120])
    _, exc = failure_of(app, s.id)
    assert isinstance(exc, SoftTimeLimitExceeded), repr(exc)
    _, exc = failure_of(app, b.id)
    assert isinstance(exc, TimeLimitExceeded), repr(exc)
    r = app.control.time_limit("vigil.sleep", soft=None, hard=None,
                               reply=True, destination=dest, timeout=2.0)
    assert r, "no reply"
    ok = app.send_task("vigil.sleep", args=[1])
    assert ok.get(timeout=30) is None
    stats = app.control.inspect(timeout=1.0, destination=dest).stats()
    assert stats[VIGIL_NAME]["time_limits_exceeded"] == {
        "soft": 1, "hard": 1}, fmt(stats)


@Checks.add
def check_d_active_and_revoke_terminate(env):
    """`inspect active` lists a running vigil.sleep in Celery's shape;
    `revoke(terminate=True)` sets its cancellation flag: it stops, REVOKED
    (TaskRevokedError('terminated')); the worker runs the next task."""
    from celery.exceptions import TaskRevokedError
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    app = env.celery_app()
    wait_vigil_answers(app)
    dest = [VIGIL_NAME]
    r = app.send_task("vigil.sleep", args=[120])
    insp = app.control.inspect(timeout=1.0, destination=dest)
    active = {}
    wait_until(lambda: active.update(insp.active() or {}) or any(
        t["id"] == r.id for t in active.get(VIGIL_NAME, [])), 20,
        "inspect active to list the task")
    t = next(t for t in active[VIGIL_NAME] if t["id"] == r.id)
    assert t["name"] == "vigil.sleep" and t["args"] == "[120]", fmt(t)
    assert t["hostname"] == VIGIL_NAME and t["time_start"] > 0, fmt(t)
    assert t["delivery_info"]["routing_key"] == "celery", fmt(t)
    reply = app.control.revoke(r.id, terminate=True, reply=True,
                               destination=dest, timeout=2.0)
    assert reply == [{VIGIL_NAME: {"ok": f"terminate: {r.id}"}}], fmt(reply)
    state, exc = failure_of(app, r.id)
    assert state == "REVOKED", state
    assert isinstance(exc, TaskRevokedError), repr(exc)
    assert app.send_task("vigil.echo", args=["next"]).get(timeout=30) \
        == "next"
    reply = app.control.revoke("no-such-id", terminate=True, reply=True,
                               destination=dest, timeout=2.0)
    assert reply == [{VIGIL_NAME: {"ok": "terminate: tasks unknown"}}], \
        fmt(reply)


def main(argv):
    return harness.main_of(Checks, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
