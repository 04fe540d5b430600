"""Shared pieces of the Celery interop checks (Redis and AMQP): the tasks
the real Celery worker runs, values that must survive the round trip, and
result / record / dead-letter look-ups with bounded waits."""
import json
import time

from harness import wait_until

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
