#!/usr/bin/python3
"""Interop checks between vigil and Celery 5.2 (msgpack, Redis broker and
Redis result backend).

Run: /usr/bin/python3 tests/interop/test_celery_redis.py [check ...]
  check: a full check name or its letter (a, b, ...); default: all.
  VIGIL_BIN: the vigil binary (default <repo>/build/vigil).
  VIGIL_TEST_REDIS_URL: use that redis server instead of a private one
    (dbs 0-13 are flushed and used).
  VIGIL_TEST_STRICT=1: checks marked with a known vigil bug count as
    failures.

Every check gets its own broker db and starts the workers it needs; all
share one result db. Prints "PASS name" / "FAIL name: reason" (or XFAIL /
XPASS for checks marked with a known vigil bug); exits 1 if any failed.
"""

import datetime
import json
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import fmt, same, wait_until  # noqa: E402
from celery_common import (  # noqa: E402
    RESULT_TIMEOUT, RICH_ARGS, RICH_KWARGS, PY_TASKS,
    PY_SHADOW_TASKS, get_result, read_record, find_dead_letter,
    check_countdown_both_ways, check_flaky_retries)

# db numbers on the test redis server: results in RESULT_DB, check i's
# broker in BROKER_DB_BASE + i (redis runs with 64 databases). tests/faults uses dbs 14 and 15.
RESULT_DB = 0
BROKER_DB_BASE = 16
MAX_CHECKS = 40

Checks = harness.db_checks(BROKER_DB_BASE, RESULT_DB, MAX_CHECKS)


def wait_drained(env, queue="celery", timeout=10):
    """Waits until `queue` and the unacked hash/index are empty."""
    wait_until(lambda: env.broker.llen(queue) == 0
               and env.broker.hlen("unacked") == 0
               and env.broker.zcard("unacked_index") == 0, timeout,
               f"queue {queue!r} and unacked to empty")


# --------------------------------------------------------------------------

@Checks.add
def check_a_celery_client_to_vigil_unknown_kwarg(env):
    """Celery client -> vigil worker; an unknown kwarg is ignored; the
    ignore_result header suppresses the result."""
    worker = env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    r = app.send_task("vigil.echo", args=["hello"], kwargs={"unknown_kw": 1})
    _, value = get_result(app, r.id, env)
    assert same(value, "hello"), f"vigil.echo returned {value!r}"
    assert worker.alive(), "vigil worker died"
    assert not env.dead_letters(), \
        f"unexpected dead letters: {fmt(env.dead_letters())}"

    ignored = app.send_task("vigil.echo", args=["quiet"], ignore_result=True)
    _, pong = get_result(app, app.send_task("vigil.ping").id, env)
    assert same(pong, "pong"), repr(pong)
    wait_drained(env)           # acked, so done (results come before acks)
    doc = harness.result_doc(env.results, ignored.id)
    assert doc is None, f"ignore_result=True, but a result was stored: {doc}"


@Checks.add
def check_b_vigil_send_task_to_celery_worker(env):
    """vigil send-task -> real Celery worker: exact args and kwargs, rich
    values, and the JSON serializer."""
    worker = env.start_celery_worker(PY_TASKS, "pyq")
    app = env.celery_app()

    task_id = env.send_task("proj.add", args="[2, 3]", kwargs='{"z": 1}',
                            queue="pyq")
    rec = read_record(env, task_id, procs=[worker])
    assert rec["task"] == "proj.add", fmt(rec)
    assert rec["args_repr"] == "(2, 3)", \
        f"args arrived as {rec['args_repr']}, expected (2, 3)"
    assert rec["kwargs_repr"] == "{'z': 1}", \
        f"kwargs arrived as {rec['kwargs_repr']}, expected {{'z': 1}}"
    assert rec["retries"] == 0, fmt(rec)
    assert rec["delivery_info"].get("routing_key") == "pyq", fmt(rec)
    _, value = get_result(app, task_id, env)
    assert same(value, {"args": [2, 3], "kwargs": {"z": 1}}), \
        f"Celery's result: {value!r}"

    # Rich values: unicode (incl. astral), escapes, int64 edges, floats,
    # null/bool, nesting, empty containers.
    task_id = env.send_task("proj.record", args=RICH_ARGS,
                            kwargs=RICH_KWARGS, queue="pyq")
    _, value = get_result(app, task_id, env)
    assert same(value["args"], RICH_ARGS), \
        f"args arrived as\n{fmt(value['args'])}\nexpected\n{fmt(RICH_ARGS)}"
    assert same(value["kwargs"], RICH_KWARGS), \
        f"kwargs arrived as {fmt(value['kwargs'])}, expected " \
        f"{fmt(RICH_KWARGS)}"

    # The same with a JSON body (the worker accepts json too).
    out = env.vigil("send-task", "proj.record", "--queue", "pyq",
                    "--serializer", "json", "--args", json.dumps(RICH_ARGS),
                    "--kwargs", json.dumps(RICH_KWARGS)).stdout.strip()
    rec = read_record(env, out, procs=[worker])
    assert same(rec["args"], RICH_ARGS) and same(rec["kwargs"], RICH_KWARGS), \
        f"JSON body arrived as {fmt(rec)}"
    assert worker.alive()
    wait_drained(env, "pyq")


@Checks.add
def check_c_flaky_retries_through_broker(env):
    """vigil.flaky(2) retries twice via the broker and returns 3."""
    check_flaky_retries(env, wait_drained)


@Checks.add
def check_d_keyword_and_positional_args(env):
    """vigil.echo called with its argument by keyword and by position;
    rich values (bytes too) come back unchanged."""
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    r = app.send_task("vigil.echo", kwargs={"value": 5})
    _, value = get_result(app, r.id, env)
    assert same(value, 5), f"echo(value=5) returned {value!r}"

    rich = RICH_ARGS + [b"\x00\x01\xff", {"bytes": b""}]
    r = app.send_task("vigil.echo", args=[rich])
    _, value = get_result(app, r.id, env)
    assert same(value, rich), \
        f"echo(rich) returned\n{fmt(value)}\nexpected\n{fmt(rich)}"

    r = app.send_task("vigil.echo", args=[RICH_KWARGS], kwargs={"extra": 2})
    _, value = get_result(app, r.id, env)
    assert same(value, RICH_KWARGS), f"echo(RICH_KWARGS) returned {value!r}"


@Checks.add
def check_d2_missing_optional_argument_takes_default(env):
    """vigil.repeat(value, times=2): a message without `times` runs with the
    default; one from an older schema (v1 called it `n`) is upgraded."""
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    r = app.send_task("vigil.repeat", args=["x"])
    _, value = get_result(app, r.id, env)
    assert same(value, ["x", "x"]), f"repeat('x') returned {value!r}"
    r = app.send_task("vigil.repeat", args=["y"], kwargs={"n": 3},
                      headers={"vigil_schema": 1})
    _, value = get_result(app, r.id, env)
    assert same(value, ["y", "y", "y"]), \
        f"repeat('y', n=3) from schema v1 returned {value!r}"


@Checks.add
def check_e_wrong_type_dead_letter_worker_survives(env):
    """vigil.sleep('abc') is dead-lettered naming 'seconds'; the same
    worker then still runs vigil.ping."""
    worker = env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    r = app.send_task("vigil.sleep", args=["abc"])
    letter = find_dead_letter(env, r.id, procs=[worker])
    assert "seconds" in letter.get("reason", ""), \
        f"dead letter reason does not name 'seconds': {fmt(letter)}"
    assert letter.get("task") == "vigil.sleep", fmt(letter)
    assert letter.get("queue") == "celery", fmt(letter)
    envelope = json.loads(letter["envelope"])
    assert envelope["headers"]["id"] == r.id, fmt(letter)

    r2 = app.send_task("vigil.ping")
    _, value = get_result(app, r2.id, env)
    assert same(value, "pong"), f"vigil.ping returned {value!r}"
    assert worker.alive(), "vigil worker died"
    wait_drained(env)


@Checks.add
def check_f_failed_task_result_is_failure(env):
    """Dead-lettered tasks (wrong type, missing argument) have FAILURE
    results that Celery clients can read."""
    worker = env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    cases = [
        (app.send_task("vigil.sleep", args=["abc"]), "seconds"),
        (app.send_task("vigil.echo"), "value"),
    ]
    for r, param in cases:
        res, value = get_result(app, r.id, env, propagate=False)
        assert res.status == "FAILURE", \
            f"{r.id}: status {res.status}, result {value!r}"
        assert isinstance(value, Exception), \
            f"FAILURE result is {type(value).__name__}: {value!r}"
        assert param in str(value), \
            f"failure {value!r} does not name '{param}'"
        letter = find_dead_letter(env, r.id, procs=[worker])
        assert param in letter.get("reason", ""), fmt(letter)
        # propagate=True raises the task's exception.
        try:
            app.AsyncResult(r.id).get(timeout=5)
        except Exception as e:      # noqa: BLE001
            assert param in str(e), f"raised {e!r}"
            e.__traceback__ = None
        else:
            raise AssertionError("get() of a FAILURE result did not raise")
    assert worker.alive(), "vigil worker died"


@Checks.add
def check_g_unknown_task_dead_letter_and_failure(env):
    """A task name vigil does not know: dead letter + FAILURE result (Celery
    would store NotRegistered); the worker keeps running."""
    worker = env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    r = app.send_task("proj.not_registered_anywhere", args=[1])
    res, value = get_result(app, r.id, env, propagate=False)
    assert res.status == "FAILURE", f"status {res.status}, result {value!r}"
    assert "proj.not_registered_anywhere" in str(value), repr(value)
    letter = find_dead_letter(env, r.id, procs=[worker])
    assert letter.get("task") == "proj.not_registered_anywhere", fmt(letter)
    _, pong = get_result(app, app.send_task("vigil.ping").id, env)
    assert same(pong, "pong"), repr(pong)


@Checks.add
def check_h_countdown_both_ways(env):
    check_countdown_both_ways(env)


@Checks.add
def check_i_priority_buckets_both_ways(env):
    """Priorities use kombu's bucket lists (q, q\\x06\\x163, ...): vigil
    send-task --priority 7 lands in pyq\\x06\\x166 and Celery runs it;
    Celery's priority=5 lands in celery\\x06\\x163 and vigil runs it."""
    app = env.celery_app()
    py_id = env.vigil("send-task", "proj.record", "--args", "[7]",
                      "--queue", "pyq", "--priority", "7").stdout.strip()
    r = app.send_task("vigil.echo", args=["p5"], priority=5)
    lists = {k.decode(errors="replace"): env.broker.llen(k)
             for k in env.broker.scan_iter(match="*", _type="list")}
    assert lists.get("pyq\x06\x166") == 1, \
        f"vigil put priority 7 elsewhere: lists {lists}"
    assert lists.get("celery\x06\x163") == 1, f"lists {lists}"
    celery_worker = env.start_celery_worker(PY_TASKS, "pyq")
    env.start_vigil_worker("celery", 2)
    rec = read_record(env, py_id, procs=[celery_worker])
    assert rec["delivery_info"].get("priority") == 7, fmt(rec)
    _, value = get_result(app, r.id, env)
    assert same(value, "p5"), repr(value)
    wait_drained(env)
    wait_drained(env, "pyq")


@Checks.add
def check_j_json_task_result_uses_result_serializer(env):
    """A task sent with serializer='json' by a client whose backend uses
    result_serializer='msgpack' gets a readable (msgpack) result when the
    worker is told the clients' result serializer."""
    env.start_vigil_worker("celery", 2,
                           VIGIL_TASKS_RESULT_SERIALIZER="msgpack")
    app = env.celery_app()
    r = app.send_task("vigil.echo", args=[{"j": [1, 2.5, None]}],
                      serializer="json")
    wait_until(lambda: env.results.exists(f"celery-task-meta-{r.id}"),
               RESULT_TIMEOUT, "the result")
    raw = env.results.get(f"celery-task-meta-{r.id}")
    try:
        value = get_result(app, r.id, env, timeout=5)[1]
    except Exception as e:      # noqa: BLE001
        raise AssertionError(
            f"the Celery client cannot decode the result ({e!r}); stored "
            f"bytes: {raw[:80]!r}")
    assert same(value, {"j": [1, 2.5, None]}), repr(value)


@Checks.add
def check_k_expired_tasks_revoked_both_ways(env):
    """expires: Celery -> vigil and vigil send-task -> Celery. Expired
    tasks end REVOKED unrun; unexpired ones run."""
    app = env.celery_app()
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = app.send_task("vigil.echo", args=["old"],
                            expires=now - datetime.timedelta(seconds=5))
    fresh = app.send_task("vigil.echo", args=["new"], expires=60)
    t0 = time.monotonic()
    py_expired = env.vigil("send-task", "proj.record", "--args", "[1]",
                           "--queue", "pyq", "--expires",
                           "0.3").stdout.strip()
    py_fresh = env.vigil("send-task", "proj.record", "--args", "[2]",
                         "--queue", "pyq", "--expires", "60").stdout.strip()
    env.start_vigil_worker("celery", 2)
    time.sleep(max(0.0, 0.6 - (time.monotonic() - t0)))
    celery_worker = env.start_celery_worker(PY_TASKS, "pyq")

    res, value = get_result(app, expired.id, env, propagate=False)
    assert res.status == "REVOKED", \
        f"vigil: expired task ended {res.status} ({value!r})"
    _, value = get_result(app, fresh.id, env)
    assert same(value, "new"), repr(value)

    res, value = get_result(app, py_expired, env, propagate=False)
    assert res.status == "REVOKED", \
        f"Celery: vigil's --expires 0.3 task ended {res.status} ({value!r})"
    rec = read_record(env, py_fresh, procs=[celery_worker])
    assert rec["expires"], f"Celery saw no expires: {fmt(rec)}"
    assert not (env.dir / f"record-{py_expired}.json").exists()
    wait_drained(env)
    wait_drained(env, "pyq")


@Checks.add
def check_l_python_worker_killed_vigil_restores(env):
    """Mixed fleet: a Celery worker (acks_late) is kill -9'd holding 4
    messages in kombu's unacked hash; a vigil worker restores and runs
    them once they pass its visibility timeout."""
    app = env.celery_app()
    sleep_id = app.send_task("vigil.sleep", args=[0.05]).id
    echo_ids = [app.send_task("vigil.echo", args=[f"l{i}"]).id
                for i in range(3)]
    # threads pool, 1 thread: the first task blocks, the event loop keeps
    # prefetching (a solo pool would block the loop after one message).
    py = env.start_celery_worker(PY_SHADOW_TASKS, "celery",
                                 env={"PY_SLEEP_BLOCKS": "1"},
                                 pool="threads", concurrency=1,
                                 task_acks_late=True,
                                 worker_prefetch_multiplier=4)
    wait_until(lambda: env.broker.hlen("unacked") == 4, 15,
               "the Celery worker to hold 4 unacked messages", procs=[py])
    assert env.broker.llen("celery") == 0
    py.kill()
    assert env.broker.hlen("unacked") == 4, "unacked changed after the kill"
    assert not any(harness.result_doc(env.results, i)
                   for i in [sleep_id, *echo_ids]), "Python ran a task"

    env.start_vigil_worker("celery", 2, VIGIL_BROKER_VISIBILITY_TIMEOUT=1,
                           VIGIL_BROKER_RESTORE_INTERVAL=0.2)
    _, value = get_result(app, sleep_id, env)
    assert value is None, f"vigil.sleep returned {value!r} (ran in Python?)"
    for i, tid in enumerate(echo_ids):
        _, value = get_result(app, tid, env)
        assert same(value, f"l{i}"), f"echo returned {value!r}"
    wait_drained(env)


@Checks.add
def check_m_vigil_worker_killed_python_restores(env):
    """Mixed fleet: a vigil worker is kill -9'd holding 4 messages in the
    unacked hash; a Celery worker's start-up sweep (kombu restore_visible)
    restores them and runs them."""
    app = env.celery_app()
    sleep_id = app.send_task("vigil.sleep", args=[60]).id
    echo_ids = [app.send_task("vigil.echo", args=[f"m{i}"]).id
                for i in range(3)]
    vigil_worker = env.start_vigil_worker("celery", 1)
    wait_until(lambda: env.broker.hlen("unacked") == 4, 15,
               "vigil to hold 4 unacked messages", procs=[vigil_worker])
    assert env.broker.llen("celery") == 0
    vigil_worker.kill()
    assert env.broker.hlen("unacked") == 4, "unacked changed after the kill"
    assert env.broker.zcard("unacked_index") == 4
    assert not env.broker.exists("unacked_mutex"), \
        "vigil left unacked_mutex behind (would block kombu's sweep)"

    # kombu sweeps at start-up only what is older than visibility_timeout.
    def old_enough():
        secs, usecs = env.broker.time()
        newest = env.broker.zrange("unacked_index", -1, -1,
                                   withscores=True)[0][1]
        return secs + usecs / 1e6 - newest > 1.3
    wait_until(old_enough, 5, "the unacked entries to age")
    env.start_celery_worker(PY_SHADOW_TASKS, "celery",
                            broker_transport_options={
                                "visibility_timeout": 1})
    _, value = get_result(app, sleep_id, env)
    assert same(value, "py:slept"), f"vigil.sleep gave {value!r}"
    for i, tid in enumerate(echo_ids):
        _, value = get_result(app, tid, env)
        assert same(value, ["py", f"m{i}"]), f"echo gave {value!r}"
    wait_drained(env)


def main(argv):
    return harness.main_of(Checks, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
