"""Shared pieces of the Celery interop checks (Redis and AMQP): the tasks
the real Celery worker runs, values that must survive the round trip, and
result / record / dead-letter look-ups with bounded waits."""
import datetime
import json
import time

import harness
from harness import same, wait_until

RESULT_TIMEOUT = 20

# Values that must survive JSON/msgpack and C++ on the way through.
RICH_ARGS = ["café", "日本語 😀 \"quoted\" \\ \n\t", -5, 1.5, None, True,
             False, [1, {"a": "b"}], 4294967296, 9223372036854775807,
             -9223372036854775808, "", {}, [], 0.1, 1e300, -0.0]
RICH_KWARGS = {"ключ": "значение", "nested": {"list": [1.25, None]},
               "z": 1}

# Tasks for the real Celery worker (after harness's prelude defining app).
PY_TASKS = '''
import json
import os
import time


def _record(request, args, kwargs):
    rec = {"id": request.id, "task": request.task, "time": time.time(),
           "args_repr": repr(args), "kwargs_repr": repr(kwargs),
           "args": list(args), "kwargs": kwargs,
           "retries": request.retries, "eta": request.eta,
           "expires": request.expires, "root_id": request.root_id,
           "parent_id": request.parent_id, "origin": request.origin,
           "ignore_result": request.ignore_result,
           "timelimit": request.timelimit,
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

# Python stand-ins registered under vigil's task names, for the mixed-fleet
# restore checks: a result computed by Python is marked "py".
PY_SHADOW_TASKS = '''
import os
import time


@app.task(name="vigil.sleep", acks_late=True)
def sleep(seconds):
    if os.environ.get("PY_SLEEP_BLOCKS"):
        time.sleep(120)
    return "py:slept"


@app.task(name="vigil.echo", acks_late=True)
def echo(value, **kwargs):
    return ["py", value]
'''


def get_result(app, task_id, env, timeout=RESULT_TIMEOUT, propagate=True):
    """AsyncResult(task_id).get(); fails early if one of env's workers
    exits unexpectedly. Returns (AsyncResult, value)."""
    from celery.exceptions import TimeoutError as CeleryTimeout
    res = app.AsyncResult(task_id)
    deadline = time.monotonic() + timeout
    while True:
        env.check_alive()
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no result for {task_id} within {timeout} "
                                 f"s (state {res.state})")
        try:
            return res, res.get(timeout=min(1.0, left), propagate=propagate,
                                interval=0.05)
        except CeleryTimeout:
            continue


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


def unix_time(stamp):
    """An ISO 8601 text or datetime as Unix seconds; a naive one is UTC (as
    Celery writes date_done and eta)."""
    if isinstance(stamp, str):
        stamp = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


# Clock readings of one machine compared: the result's date_done has
# microseconds, Celery's eta milliseconds.
CLOCK_SLACK = 0.01


def check_countdown_both_ways(env):
    """countdown: Celery -> vigil and vigil send-task -> Celery. Asserted by
    the order of events, never by how long the run took: vigil's result is
    dated after the ETA the client asked for, and the ETA vigil's send-task
    wrote is COUNTDOWN after its call and the Celery worker ran it after
    that ETA."""
    COUNTDOWN = 1.5
    celery_worker = env.start_celery_worker(PY_TASKS, "pyq")
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    t0 = time.time()
    r = app.send_task("vigil.echo", args=["later"], countdown=COUNTDOWN)
    t_sent = time.time()
    py_id = env.vigil("send-task", "proj.record", "--args", "[1]", "--queue",
                      "pyq", "--countdown", str(COUNTDOWN)).stdout.strip()
    t_py = time.time()
    res, value = get_result(app, r.id, env)
    assert same(value, "later"), repr(value)
    done = unix_time(res.date_done)
    assert done + CLOCK_SLACK >= t0 + COUNTDOWN, \
        f"vigil ran a countdown={COUNTDOWN} task {done - t0:.2f} s after " \
        "it was sent"
    rec = read_record(env, py_id, procs=[celery_worker])
    assert rec["eta"], f"Celery saw no eta: {rec!r}"
    eta = unix_time(rec["eta"])
    assert t_sent + COUNTDOWN - CLOCK_SLACK <= eta \
        <= t_py + COUNTDOWN + CLOCK_SLACK, \
        f"send-task --countdown {COUNTDOWN} wrote eta {rec['eta']}, " \
        f"{eta - t_sent:.2f} s after it was called"
    assert rec["time"] + CLOCK_SLACK >= eta, \
        f"Celery ran vigil's countdown task {eta - rec['time']:.2f} s " \
        f"before its eta {rec['eta']}"


def check_flaky_retries(env, drained):
    """vigil.flaky(2) retries twice through the broker and returns 3; the
    retries leave nothing behind (`drained(env)` waits for that)."""
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    r = app.send_task("vigil.flaky", args=[2])
    _, value = get_result(app, r.id, env)
    assert same(value, 3), f"vigil.flaky(2) returned {value!r}"
    doc = harness.result_doc(env.results, r.id)
    assert doc["status"] == "SUCCESS" and doc["task_id"] == r.id, repr(doc)
    drained(env)
