#!/usr/bin/python3
"""Interop checks between vigil and Celery 5.2 (msgpack, Redis broker and
Redis result backend).

Run: /usr/bin/python3 tests/interop/test_celery_redis.py [check-name ...]
(VIGIL_BIN: the vigil binary, default <repo>/build/vigil;
 VIGIL_TEST_REDIS_URL: use that redis server instead of a private one.)

Every check gets its own broker db and result db and starts the workers it
needs; prints "PASS name" or "FAIL name: reason"; exits 1 if any failed.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import CheckEnv, fmt, same, wait_until  # noqa: E402

# db numbers on the test redis server: check i uses DB_BASE + 2i (broker)
# and DB_BASE + 2i + 1 (results). tests/faults uses dbs 14 and 15.
DB_BASE = 0

RESULT_TIMEOUT = 20

# Values that must survive JSON/msgpack and C++ on the way through.
RICH_ARGS = ["café", "日本語 😀 \"quoted\" \\ \n", -5, 1.5, None, True, False,
             [1, {"a": "b"}], 4294967296, 9223372036854775807,
             -9223372036854775808, "", {}, [], 0.1, 1e300]
RICH_KWARGS = {"ключ": "значение", "nested": {"list": [1.25, None]},
               "z": 1}

# Tasks for the real Celery worker (after harness's prelude defining app).
PY_TASKS = '''
import json
import os


def _record(request, args, kwargs):
    rec = {"id": request.id, "task": request.task,
           "args_repr": repr(args), "kwargs_repr": repr(kwargs),
           "args": list(args), "kwargs": kwargs,
           "retries": request.retries,
           "delivery_info": request.delivery_info}
    path = os.path.join(os.environ["VIGIL_TEST_DIR"],
                        "record-" + request.id + ".json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(rec, f, default=repr)
    os.replace(path + ".tmp", path)


@app.task(name="proj.add", bind=True)
def add(self, *args, **kwargs):
    _record(self.request, args, kwargs)
    return {"args": list(args), "kwargs": kwargs}


@app.task(name="proj.record", bind=True)
def record(self, *args, **kwargs):
    _record(self.request, args, kwargs)
    return {"args": list(args), "kwargs": kwargs}
'''


class Checks:
    """Registry so each check gets a distinct pair of db numbers."""
    items = []

    @classmethod
    def add(cls, fn):
        index = len(cls.items)
        name = fn.__name__.removeprefix("check_")

        def run():
            with CheckEnv(name, DB_BASE + 2 * index,
                          DB_BASE + 2 * index + 1) as env:
                fn(env)
        cls.items.append((name, run))
        return fn


def get_result(app, task_id, timeout=RESULT_TIMEOUT, propagate=True):
    from celery.exceptions import TimeoutError as CeleryTimeout
    res = app.AsyncResult(task_id)
    try:
        return res, res.get(timeout=timeout, propagate=propagate)
    except CeleryTimeout:
        raise AssertionError(f"no result for {task_id} within {timeout} s "
                             f"(state {res.state})")


def read_record(env, task_id, timeout=RESULT_TIMEOUT, procs=()):
    path = env.dir / f"record-{task_id}.json"
    wait_until(path.exists, timeout, f"the Celery task to record {task_id}",
               procs=procs)
    return json.loads(path.read_text(encoding="utf-8"))


def find_dead_letter(env, task_id, timeout=RESULT_TIMEOUT, procs=()):
    def look():
        for letter in env.dead_letters():
            if letter.get("task_id") == task_id:
                return letter
        return None
    return wait_until(look, timeout, f"a dead letter for {task_id}",
                      interval=0.2, procs=procs)


# --------------------------------------------------------------------------

@Checks.add
def check_a_celery_client_to_vigil_unknown_kwarg(env):
    """Celery client -> vigil worker; an unknown kwarg is ignored."""
    worker = env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    r = app.send_task("vigil.echo", args=["hello"], kwargs={"unknown_kw": 1})
    _, value = get_result(app, r.id)
    assert same(value, "hello"), f"vigil.echo returned {value!r}"
    assert worker.alive(), "vigil worker died"
    assert not env.dead_letters(), \
        f"unexpected dead letters: {fmt(env.dead_letters())}"


@Checks.add
def check_b_vigil_send_task_to_celery_worker(env):
    """vigil send-task -> real Celery worker: exact args and kwargs."""
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
    _, value = get_result(app, task_id)
    assert same(value, {"args": [2, 3], "kwargs": {"z": 1}}), \
        f"Celery's result: {value!r}"

    # Rich values: unicode (incl. astral), escapes, int64 edges, floats,
    # null/bool, nesting, empty containers.
    task_id = env.send_task("proj.record", args=RICH_ARGS,
                            kwargs=RICH_KWARGS, queue="pyq")
    _, value = get_result(app, task_id)
    assert same(value["args"], RICH_ARGS), \
        f"args arrived as\n{fmt(value['args'])}\nexpected\n{fmt(RICH_ARGS)}"
    assert same(value["kwargs"], RICH_KWARGS), \
        f"kwargs arrived as {fmt(value['kwargs'])}, expected " \
        f"{fmt(RICH_KWARGS)}"
    assert worker.alive()


@Checks.add
def check_c_flaky_retries_through_broker(env):
    """vigil.flaky(2) retries twice via the broker and returns 3."""
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    r = app.send_task("vigil.flaky", args=[2])
    _, value = get_result(app, r.id)
    assert same(value, 3), f"vigil.flaky(2) returned {value!r}"
    doc = harness.result_doc(env.results, r.id)
    assert doc["status"] == "SUCCESS" and doc["task_id"] == r.id, fmt(doc)
    # Retries went through the broker: nothing may be left behind.
    assert env.broker.llen("celery") == 0
    wait_until(lambda: env.broker.hlen("unacked") == 0, 5,
               "the unacked hash to empty")


@Checks.add
def check_d_keyword_and_positional_args(env):
    """vigil.echo called with its argument by keyword and by position."""
    # TODO(vigil): once a built-in task has an optional argument, extend
    # this check (check_d_keyword_and_positional_args) to send that task
    # without the optional argument and assert that its default is used.
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    r = app.send_task("vigil.echo", kwargs={"value": 5})
    _, value = get_result(app, r.id)
    assert same(value, 5), f"echo(value=5) returned {value!r}"

    r = app.send_task("vigil.echo", args=[RICH_ARGS])
    _, value = get_result(app, r.id)
    assert same(value, RICH_ARGS), \
        f"echo(RICH_ARGS) returned\n{fmt(value)}\nexpected\n{fmt(RICH_ARGS)}"

    r = app.send_task("vigil.echo", args=[RICH_KWARGS], kwargs={"extra": 2})
    _, value = get_result(app, r.id)
    assert same(value, RICH_KWARGS), f"echo(RICH_KWARGS) returned {value!r}"


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
    _, value = get_result(app, r2.id)
    assert same(value, "pong"), f"vigil.ping returned {value!r}"
    assert worker.alive(), "vigil worker died"
    wait_until(lambda: env.broker.hlen("unacked") == 0, 5,
               "the unacked hash to empty")


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
        res, value = get_result(app, r.id, propagate=False)
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
    res, value = get_result(app, r.id, propagate=False)
    assert res.status == "FAILURE", f"status {res.status}, result {value!r}"
    assert "proj.not_registered_anywhere" in str(value), repr(value)
    letter = find_dead_letter(env, r.id, procs=[worker])
    assert letter.get("task") == "proj.not_registered_anywhere", fmt(letter)
    _, pong = get_result(app, app.send_task("vigil.ping").id)
    assert same(pong, "pong"), repr(pong)


def main(argv):
    checks = Checks.items
    if argv:
        wanted = set(argv)
        checks = [(n, f) for n, f in checks
                  if n in wanted or n.split("_")[0] in wanted]
        if not checks:
            print(f"no check matches {argv}; checks: "
                  f"{[n for n, _ in Checks.items]}")
            return 2
    harness.vigil_bin()     # fail fast if the binary is missing
    harness.start_redis()
    return harness.run_checks(checks)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
