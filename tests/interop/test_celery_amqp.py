#!/usr/bin/python3
"""Interop checks between vigil and Celery 5.2 over RabbitMQ (AMQP 0-9-1
broker through kombu's pyamqp transport, msgpack, Redis result backend).

Run: /usr/bin/python3 tests/interop/test_celery_amqp.py [check ...]
  check: a full check name or its letter (a, b, ...); default: all.
  VIGIL_BIN: the vigil binary (default <repo>/build/vigil).
  VIGIL_TEST_AMQP_URL: use that RabbitMQ (amqp://user:pw@host:port/vhost)
    instead of a private rabbitmq-server (which takes ~10 s to start).
  VIGIL_TEST_REDIS_URL: the redis server for results (db 12 is flushed);
    default a private one.

Each check empties the queues it uses first (celery, pyq and
vigil.dead_letters) and starts the workers it needs. Prints "PASS name" /
"FAIL name: reason"; exits 1 if any failed.
"""

import json
import sys
from pathlib import Path

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import CheckEnv, fmt, same, wait_until  # noqa: E402
from celery_common import (  # noqa: E402
    RESULT_TIMEOUT, RICH_ARGS, RICH_KWARGS, PY_TASKS, PY_SHADOW_TASKS,
    get_result, read_record, find_dead_letter, check_countdown_both_ways,
    check_flaky_retries)

# Results go to this db of the test redis server; the Redis interop script
# uses 0 and 16-55, the fault tests 14-15.
RESULT_DB = 12
QUEUES = ("celery", "pyq", "vigil.dead_letters")
class AmqpCheckEnv(CheckEnv):
    """A CheckEnv whose broker is RabbitMQ; results stay on redis (db
    `result_db`)."""

    def __init__(self, name, result_db=RESULT_DB):
        super().__init__(name, result_db, result_db)
        self.rabbit = harness.start_rabbitmq()
        self.rabbit.purge_queues(*QUEUES)
        self.broker = None          # no redis broker db here
        self.broker_url = self.rabbit.url()


Checks = harness.CheckList(lambda name, index: AmqpCheckEnv(name))


def wait_drained(env, queue="celery", timeout=10):
    """Waits until `queue` holds no ready messages."""
    wait_until(lambda: env.rabbit.message_count(queue) == 0, timeout,
               f"queue {queue!r} to empty")


# --------------------------------------------------------------------------

@Checks.add
def check_a_celery_client_to_vigil_unknown_kwarg(env):
    """Celery client (pyamqp) -> vigil worker on amqp://; an unknown kwarg
    is ignored; results come back through the Redis backend."""
    worker = env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    r = app.send_task("vigil.echo", args=["hello"], kwargs={"unknown_kw": 1})
    _, value = get_result(app, r.id, env)
    assert same(value, "hello"), f"vigil.echo returned {value!r}"
    _, pong = get_result(app, app.send_task("vigil.ping").id, env)
    assert same(pong, "pong"), repr(pong)
    rich = RICH_ARGS + [b"\x00\x01\xff"]
    r = app.send_task("vigil.echo", args=[rich])
    _, value = get_result(app, r.id, env)
    assert same(value, rich), \
        f"echo(rich) returned\n{fmt(value)}\nexpected\n{fmt(rich)}"
    assert worker.alive(), "vigil worker died"
    assert not env.dead_letters(), \
        f"unexpected dead letters: {fmt(env.dead_letters())}"
    wait_drained(env)


@Checks.add
def check_b_vigil_send_task_to_celery_worker(env):
    """vigil send-task (amqp://) -> real Celery worker: exact args and
    kwargs, Celery's request fields from vigil's typed header table, and a
    result Celery stores."""
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
    assert rec["retries"] == 0 and rec["eta"] is None \
        and rec["expires"] is None and rec["root_id"] == task_id \
        and rec["ignore_result"] is False, fmt(rec)
    info = rec["delivery_info"]
    assert info.get("routing_key") == "pyq" and info.get("exchange") == "" \
        and info.get("redelivered") is False, fmt(rec)
    _, value = get_result(app, task_id, env)
    assert same(value, {"args": [2, 3], "kwargs": {"z": 1}}), \
        f"Celery's result: {value!r}"

    task_id = env.send_task("proj.record", args=RICH_ARGS,
                            kwargs=RICH_KWARGS, queue="pyq")
    _, value = get_result(app, task_id, env)
    assert same(value["args"], RICH_ARGS), \
        f"args arrived as\n{fmt(value['args'])}\nexpected\n{fmt(RICH_ARGS)}"
    assert same(value["kwargs"], RICH_KWARGS), \
        f"kwargs arrived as {fmt(value['kwargs'])}"

    # Priority travels as the AMQP property (the queue has no
    # x-max-priority, so RabbitMQ does not reorder).
    task_id = env.vigil("send-task", "proj.record", "--args", "[7]",
                        "--queue", "pyq", "--priority", "7").stdout.strip()
    rec = read_record(env, task_id, procs=[worker])
    assert rec["delivery_info"].get("priority") == 7, fmt(rec)
    assert worker.alive()
    wait_drained(env, "pyq")


@Checks.add
def check_c_wrong_type_dead_letter_worker_survives(env):
    """vigil.sleep('abc') is dead-lettered on RabbitMQ with a reason that
    names 'seconds' (vigil dead-letters list --json); the worker keeps
    running; the record can be replayed."""
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
    res, value = get_result(app, r.id, env, propagate=False)
    assert res.status == "FAILURE" and "seconds" in str(value), \
        f"status {res.status}, result {value!r}"

    r2 = app.send_task("vigil.ping")
    _, value = get_result(app, r2.id, env)
    assert same(value, "pong"), f"vigil.ping returned {value!r}"
    assert worker.alive(), "vigil worker died"
    wait_drained(env)
    # Listing does not consume the records.
    assert len(env.dead_letters()) == 1, fmt(env.dead_letters())
    assert env.rabbit.message_count("vigil.dead_letters") == 1
    # A replay puts the message back on its queue (and it fails again).
    out = env.vigil("dead-letters", "replay", letter["id"]).stdout
    assert "requeued 1" in out, out
    def buried_again():
        letters = env.dead_letters()
        return len(letters) == 1 and letters[0]["id"] != letter["id"]
    wait_until(buried_again, RESULT_TIMEOUT, "the replayed task to be "
               "dead-lettered again", interval=0.2, procs=[worker])


@Checks.add
def check_d_flaky_retries_through_broker(env):
    """vigil.flaky(2) retries twice via RabbitMQ and returns 3."""
    check_flaky_retries(env, wait_drained)


@Checks.add
def check_e_countdown_both_ways(env):
    check_countdown_both_ways(env)


@Checks.add
def check_f_vigil_worker_killed_celery_gets_redelivery(env):
    """Mixed fleet: a vigil worker is kill -9'd holding 4 unacked
    deliveries; RabbitMQ redelivers them at once (no visibility timeout)
    and a Celery worker runs them."""
    app = env.celery_app()
    sleep_id = app.send_task("vigil.sleep", args=[60]).id
    echo_ids = [app.send_task("vigil.echo", args=[f"f{i}"]).id
                for i in range(3)]
    vigil_worker = env.start_vigil_worker("celery", 1)
    wait_drained(env)           # all four pushed to vigil, unacked
    vigil_worker.kill()
    # Checked once the worker is dead, when no result can appear any more.
    assert not any(harness.result_doc(env.results, i) for i in echo_ids), \
        "vigil ran an echo while vigil.sleep(60) held its only worker"
    wait_until(lambda: env.rabbit.message_count("celery") == 4, 10,
               "RabbitMQ to requeue the 4 messages vigil held")
    env.start_celery_worker(PY_SHADOW_TASKS, "celery")
    _, value = get_result(app, sleep_id, env)
    assert same(value, "py:slept"), f"vigil.sleep gave {value!r}"
    for i, tid in enumerate(echo_ids):
        _, value = get_result(app, tid, env)
        assert same(value, ["py", f"f{i}"]), f"echo gave {value!r}"
    wait_drained(env)


@Checks.add
def check_g_celery_worker_killed_vigil_gets_redelivery(env):
    """Mixed fleet, the other way: a Celery worker (acks_late) is kill -9'd
    holding unacked messages; vigil receives them redelivered and runs
    them."""
    app = env.celery_app()
    sleep_id = app.send_task("vigil.sleep", args=[0.05]).id
    echo_ids = [app.send_task("vigil.echo", args=[f"g{i}"]).id
                for i in range(3)]
    py = env.start_celery_worker(PY_SHADOW_TASKS, "celery",
                                 env={"PY_SLEEP_BLOCKS": "1"},
                                 pool="threads", concurrency=1,
                                 task_acks_late=True,
                                 worker_prefetch_multiplier=4)
    wait_drained(env)
    py.kill()
    assert not any(harness.result_doc(env.results, i)
                   for i in [sleep_id, *echo_ids]), "Python ran a task"
    env.start_vigil_worker("celery", 2)
    _, value = get_result(app, sleep_id, env)
    assert value is None, f"vigil.sleep returned {value!r} (ran in Python?)"
    for i, tid in enumerate(echo_ids):
        _, value = get_result(app, tid, env)
        assert same(value, f"g{i}"), f"echo returned {value!r}"
    wait_drained(env)


def main(argv):
    return harness.main_of(Checks, argv, rabbitmq=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
