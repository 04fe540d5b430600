#!/usr/bin/python3
"""Celery's remote control (kombu's pidbox) and worker events against vigil
workers on RabbitMQ: `inspect ping/stats/registered/active_queues` from the
API beside a Celery worker, destination lists and an unknown command,
garbage on the `celery.pidbox` exchange, `celery inspect` / `celery control
revoke` from the command line, `celery control cancel_consumer` stopping
the consumption (basic.cancel) and `add_consumer` resuming it, and a Celery
events Receiver's State seeing the vigil worker online, alive and offline
(the `celeryev` topic exchange).

Run: /usr/bin/python3 tests/interop/test_celery_pidbox_amqp.py [check ...]
Prints "PASS name" / "FAIL name: reason"; exits 1 if any failed.
"""

import json
import sys
import threading
from pathlib import Path

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import fmt, wait_until  # noqa: E402
from celery_common import PY_TASKS  # noqa: E402
from test_celery_amqp import AmqpCheckEnv  # noqa: E402
from test_celery_pidbox import (  # noqa: E402
    add_consumer_extra, celery_cli, wait_vigil_answers)

VIGIL_NAME = "vigil@pidbox-amqp-test"


Checks = harness.CheckList(lambda name, index: AmqpCheckEnv(name))


@Checks.add
def check_a_inspect_api_beside_celery_worker(env):
    """ping/stats/registered/active_queues answered by vigil and by a
    Celery worker in one broadcast over RabbitMQ."""
    env.start_vigil_worker("celery", 2, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_celery_worker(PY_TASKS, "pyq")
    app = env.celery_app()
    wait_vigil_answers(app, VIGIL_NAME)
    pongs = {}
    wait_until(lambda: pongs.update(
        {k: v for r in (app.control.ping(timeout=1.0) or []) for k, v in
         r.items()}) or len(pongs) >= 2, 20, "both workers to answer ping")
    assert pongs[VIGIL_NAME] == {"ok": "pong"}, fmt(pongs)
    insp = app.control.inspect(timeout=1.0)
    stats = insp.stats() or {}
    s = stats.get(VIGIL_NAME)
    assert s and s["pool"]["max-concurrency"] == 2, fmt(stats)
    assert s["broker"]["transport"] == "amqp", fmt(s)
    reg = insp.registered() or {}
    assert "vigil.echo" in reg.get(VIGIL_NAME, []), fmt(reg)
    assert any("proj.add" in v for k, v in reg.items() if k != VIGIL_NAME), \
        fmt(reg)
    queues = insp.active_queues() or {}
    assert [q["name"] for q in queues.get(VIGIL_NAME, [])] == ["celery"], \
        fmt(queues)
    # kombu's queue arguments: a Celery client re-declaring it agrees.
    counts = env.rabbit.queue_counts(f"{VIGIL_NAME}.celery.pidbox")
    assert counts is not None, "no pidbox queue for the vigil worker"


@Checks.add
def check_b_destination_unknown_command_msgpack_and_json(env):
    """A destination list leaves other workers silent; an unknown command
    gets kombu's error reply; a JSON client is answered in JSON."""
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME="vigil@other")
    app = env.celery_app()
    wait_vigil_answers(app, VIGIL_NAME)
    wait_vigil_answers(app, "vigil@other")
    replies = app.control.ping(destination=[VIGIL_NAME], timeout=1.0)
    assert [k for r in replies for k in r] == [VIGIL_NAME], fmt(replies)
    replies = app.control.broadcast("no_such_command", reply=True,
                                    destination=[VIGIL_NAME], timeout=1.0)
    assert replies == [{VIGIL_NAME: {"error": "KeyError('no_such_command')"}}], \
        fmt(replies)
    japp = env.celery_app(task_serializer="json", accept_content=["json"])
    replies = japp.control.ping(destination=["vigil@other"], timeout=1.0)
    assert replies == [{"vigil@other": {"ok": "pong"}}], fmt(replies)


@Checks.add
def check_c_bad_messages_on_the_pidbox(env):
    """Garbage published to the celery.pidbox exchange is acked and
    dropped; the worker still answers afterwards."""
    import amqp
    worker = env.start_vigil_worker("celery", 1,
                                    VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    app = env.celery_app()
    wait_vigil_answers(app, VIGIL_NAME)
    bad = [(b"", "application/json"), (b"not json", "application/json"),
           (b"[]", "application/json"), (b"\xff" * 1000, "application/x-msgpack"),
           (json.dumps({"method": 7}).encode(), "application/json"),
           (json.dumps({"method": "ping", "arguments": [1]}).encode(),
            "application/json"),
           (json.dumps({"method": "ping", "reply_to": {"exchange": 3}}).encode(),
            "application/json"),
           (b"x", "text/plain")]
    conn = env.rabbit.connect()
    try:
        ch = conn.channel()
        for body, ctype in bad:
            ch.basic_publish(amqp.Message(body, content_type=ctype),
                             exchange="celery.pidbox", routing_key="")
    finally:
        conn.close()
    replies = app.control.ping(destination=[VIGIL_NAME], timeout=2.0)
    assert replies == [{VIGIL_NAME: {"ok": "pong"}}], fmt(replies)
    assert worker.alive(), "vigil worker died"
    # Everything was read (acked), nothing left behind in its queue.
    wait_until(lambda: env.rabbit.message_count(
        f"{VIGIL_NAME}.celery.pidbox") == 0, 10, "the pidbox queue to empty")


@Checks.add
def check_d_celery_cli_inspect_and_control_revoke(env):
    """`celery inspect ping|registered` and `celery control revoke` over
    RabbitMQ print the vigil worker beside the Celery worker; the revoked
    task is then not run (REVOKED stored)."""
    from celery import uuid
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_celery_worker(PY_TASKS, "pyq", module="cli_tasks")
    app = env.celery_app()
    wait_vigil_answers(app, VIGIL_NAME)
    for cmd, want in (("ping", "pong"), ("registered", "vigil.echo")):
        out = celery_cli(env, "inspect", cmd)
        assert VIGIL_NAME in out and want in out, out
        assert out.count("->  ") >= 2, out     # the Celery worker too
    tid = uuid()
    out = celery_cli(env, "control", "revoke", tid)
    assert VIGIL_NAME in out and "flagged as revoked" in out, out
    app.send_task("vigil.echo", args=["never"], task_id=tid)
    wait_until(lambda: (harness.result_doc(env.results, tid) or {}).get(
        "status") == "REVOKED", 20, "the revoked task to be REVOKED")


@Checks.add
def check_f_celery_cli_add_consumer_and_rate_limit(env):
    """`celery control add_consumer` over RabbitMQ: the vigil worker
    declares and consumes the new queue (Celery's declaration, so the
    client agrees) and runs a task sent to it; `active_queues` lists it;
    `control rate_limit` is answered in Celery's words."""
    env.start_vigil_worker("celery", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_celery_worker(PY_TASKS, "pyq", module="cli_tasks")
    app = env.celery_app()
    wait_vigil_answers(app, VIGIL_NAME)
    add_consumer_extra(env, app, VIGIL_NAME)
    out = celery_cli(env, "control", "rate_limit", "vigil.echo", "100/s",
                     "--destination", VIGIL_NAME)
    assert "new rate limit set successfully" in out, out
    assert app.send_task("vigil.echo", args=["rated"]).get(timeout=30) \
        == "rated"


@Checks.add
def check_g_celery_cli_cancel_consumer_stops_consuming(env):
    """`celery control cancel_consumer` over RabbitMQ really stops the
    vigil worker consuming the queue (basic.cancel, as a Celery worker
    does): Celery's answer, no consumer left on it, messages sent to it
    then stay ready in RabbitMQ for other workers; `add_consumer` consumes
    it again and they run."""
    env.start_vigil_worker("celery,extra", 1, VIGIL_WORKER_HOSTNAME=VIGIL_NAME)
    env.start_celery_worker(PY_TASKS, "pyq", module="cli_tasks")
    app = env.celery_app()
    wait_vigil_answers(app, VIGIL_NAME)
    r = app.send_task("vigil.echo", args=["before"], queue="extra")
    assert r.get(timeout=30) == "before"
    wait_until(lambda: env.rabbit.consumer_count("extra") >= 1, 10,
               "vigil to consume extra")
    out = celery_cli(env, "control", "cancel_consumer", "extra",
                     "--destination", VIGIL_NAME)
    assert VIGIL_NAME in out and "no longer consuming from extra" in out, out
    wait_until(lambda: env.rabbit.consumer_count("extra") == 0, 20,
               "vigil's consumer of extra to be cancelled")
    sent = [app.send_task("vigil.echo", args=[f"m{i}"], queue="extra")
            for i in range(3)]
    wait_until(lambda: env.rabbit.message_count("extra") == 3, 20,
               "the three messages to wait ready in extra")
    # The other queue is still consumed.
    assert app.send_task("vigil.echo", args=["c"]).get(timeout=30) == "c"
    out = celery_cli(env, "control", "add_consumer", "extra",
                     "--destination", VIGIL_NAME)
    assert VIGIL_NAME in out and "add consumer extra" in out, out
    assert [x.get(timeout=30) for x in sent] == ["m0", "m1", "m2"]
    wait_until(lambda: env.rabbit.consumer_count("extra") >= 1, 10,
               "vigil to consume extra again")


@Checks.add
def check_e_events_receiver_sees_vigil_worker(env):
    """With worker.send-events, a Celery events Receiver's State over
    RabbitMQ has the vigil worker online, alive (heartbeats with
    freq/loadavg/sw_*), its task succeeded, and offline after it stops."""
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
    # The receiver's queue is bound once it sees an event of our own.
    probe = app.events.Dispatcher(app.connection_for_write(),
                                  hostname="probe@test")
    wait_until(lambda: probe.send("worker-probe") or any(
        e.get("hostname") == "probe@test" for e in seen), 10,
        "the receiver to be bound", interval=0.2)
    probe.close()
    worker = env.start_vigil_worker("celery", 1,
                                    VIGIL_WORKER_HOSTNAME=VIGIL_NAME,
                                    VIGIL_WORKER_SEND_EVENTS="true")
    wait_until(lambda: sum(1 for e in seen
                           if e.get("hostname") == VIGIL_NAME
                           and e["type"] == "worker-heartbeat") >= 2, 20,
               "two heartbeats from the vigil worker")
    assert state.workers[VIGIL_NAME].alive, fmt(seen[-3:])
    mine = [e for e in seen if e.get("hostname") == VIGIL_NAME]
    assert mine[0]["type"] == "worker-online", fmt(mine[:2])
    hb = [e for e in mine if e["type"] == "worker-heartbeat"][-1]
    for key in ("freq", "active", "processed", "loadavg", "sw_ident",
                "sw_ver", "sw_sys", "pid", "clock", "timestamp"):
        assert key in hb, fmt(hb)
    # Task events over the celeryev topic exchange.
    ok = app.send_task("vigil.echo", args=["x"])
    assert ok.get(timeout=20) == "x"
    wait_until(lambda: ok.id in state.tasks
               and state.tasks[ok.id].state == "SUCCESS", 20,
               "the task's events to reach the State")
    assert state.tasks[ok.id].result == "'x'", fmt(state.tasks[ok.id].as_dict())
    worker.stop()
    wait_until(lambda: any(e["type"] == "worker-offline"
                           and e.get("hostname") == VIGIL_NAME
                           for e in seen), 40, "worker-offline")
    assert not state.workers[VIGIL_NAME].alive
    stop.set()


def main(argv):
    return harness.main_of(Checks, argv, rabbitmq=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
