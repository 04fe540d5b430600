#!/usr/bin/python3
"""Celery canvas interop: chains, link / link_error, groups and chords sent
by the real Celery 5.2 client (msgpack, Redis broker and Redis result
backend) and run by `vigil run worker`, with a Celery worker as a peer
where a check needs one.

Run: /usr/bin/python3 tests/interop/test_celery_canvas.py [check ...]
  check: a full check name or its letter (a, b, ...); default: all.

Prints "PASS name" / "FAIL name: reason"; exits 1 if any failed.
"""

import json
import sys
import uuid
from pathlib import Path

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import same, wait_until  # noqa: E402
from test_celery_amqp import AmqpCheckEnv  # noqa: E402
from celery_common import (  # noqa: E402
    PY_TASKS, get_result, read_record, find_dead_letter)

# Results in RESULT_DB, check i's broker in BROKER_DB_BASE + i; clear of
# test_celery_redis (16..29), test_celery_pidbox (54..63) and amqp (12).
RESULT_DB = 39
BROKER_DB_BASE = 40
MAX_CHECKS = 14

# A chord body for the Celery worker: acks late, so that once its queue and
# the unacked hash are empty every run of it has finished; each run
# appends a line, so running twice shows.
PY_TALLY = PY_TASKS + '''

@app.task(name="proj.tally", bind=True, acks_late=True)
def tally(self, results):
    path = os.path.join(os.environ["VIGIL_TEST_DIR"],
                        "tally-" + self.request.id)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(results) + "\\n")
    return results
'''


Checks = harness.db_checks(BROKER_DB_BASE, RESULT_DB, MAX_CHECKS)


def sig(app, name, *args, **options):
    """A signature of a task the client does not define (vigil's)."""
    kwargs = options.pop("kwargs", None)
    immutable = options.pop("immutable", False)
    return app.signature(name, args=args, kwargs=kwargs, immutable=immutable,
                         **options)


def wait_drained(env, queue, timeout=20):
    wait_until(lambda: env.broker.llen(queue) == 0
               and env.broker.hlen("unacked") == 0, timeout,
               f"queue {queue!r} and unacked to empty")


def stored(env, task_id):
    return harness.result_doc(env.results, task_id)


# --------------------------------------------------------------------------

@Checks.add
def check_a_chain_of_three(env):
    """chain(echo('a'), repeat(), repeat(times=1)): each link gets the
    previous result; root_id and parent_id as Celery sets them."""
    from celery import chain
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    c = chain(sig(app, "vigil.echo", "a"), sig(app, "vigil.repeat"),
              sig(app, "vigil.repeat", kwargs={"times": 1}))
    r = c.apply_async()
    _, value = get_result(app, r.id, env)
    assert same(value, [["a", "a"]]), f"chain gave {value!r}"
    middle = r.parent
    first = middle.parent
    _, mid_value = get_result(app, middle.id, env)
    assert same(mid_value, ["a", "a"]), f"middle link gave {mid_value!r}"
    doc = stored(env, r.id)
    assert doc.get("parent_id") == middle.id, f"last link's meta: {doc!r}"
    assert stored(env, middle.id).get("parent_id") == first.id


@Checks.add
def check_b_chain_to_a_celery_worker(env):
    """A chain whose links alternate between vigil and a Python Celery
    worker: each reads the link the other sent (Celery's headers, root_id
    and parent_id, the result as its first argument)."""
    from celery import chain
    celery_worker = env.start_celery_worker(PY_TASKS, "pyq")
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    c = chain(sig(app, "vigil.echo", "from-vigil"),
              sig(app, "proj.record", 7, queue="pyq"),
              sig(app, "vigil.repeat", kwargs={"times": 1}),
              sig(app, "proj.record", queue="pyq"))
    r = c.apply_async()
    _, value = get_result(app, r.id, env)
    second = {"args": ["from-vigil", 7], "kwargs": {}}
    assert same(value, {"args": [[second]], "kwargs": {}}), \
        f"the last link got {value!r}"
    third = r.parent
    first = third.parent.parent
    rec = read_record(env, third.parent.id, procs=[celery_worker])
    assert rec["parent_id"] == first.id, f"parent_id {rec['parent_id']!r}"
    assert rec["root_id"] == first.id, f"root_id {rec['root_id']!r}"
    last = read_record(env, r.id, procs=[celery_worker])
    assert last["parent_id"] == third.id, f"parent_id {last['parent_id']!r}"
    assert last["root_id"] == first.id, f"root_id {last['root_id']!r}"


@Checks.add
def check_c_link_callback(env):
    """link=: the callback runs with the result prepended; an immutable one
    keeps its own args."""
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    cb_id, imm_id = str(uuid.uuid4()), str(uuid.uuid4())
    r = app.send_task("vigil.echo", args=["x"],
                      link=[sig(app, "vigil.repeat", task_id=cb_id),
                            sig(app, "vigil.echo", "own", immutable=True,
                                task_id=imm_id)])
    _, value = get_result(app, r.id, env)
    assert same(value, "x")
    _, cb_value = get_result(app, cb_id, env)
    assert same(cb_value, ["x", "x"]), f"callback gave {cb_value!r}"
    _, imm_value = get_result(app, imm_id, env)
    assert same(imm_value, "own"), f"immutable callback gave {imm_value!r}"
    assert stored(env, cb_id).get("parent_id") == r.id


@Checks.add
def check_d_link_error(env):
    """link_error=: on failure the errback runs with the failed task's id
    (Celery 5's call for errbacks it cannot call in-process), the
    failure is stored, and link= does not run."""
    celery_worker = env.start_celery_worker(PY_TASKS, "pyq")
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    eb_id, py_eb_id = str(uuid.uuid4()), str(uuid.uuid4())
    # vigil.echo without its argument fails at once with TypeError.
    r = app.send_task("vigil.echo", args=[],
                      link_error=[sig(app, "vigil.echo", task_id=eb_id),
                                  sig(app, "proj.record", queue="pyq",
                                      task_id=py_eb_id)])
    res, _ = get_result(app, r.id, env, propagate=False)
    assert res.state == "FAILURE", res.state
    assert type(res.result).__name__ == "TypeError", repr(res.result)
    _, eb_value = get_result(app, eb_id, env)
    assert same(eb_value, r.id), f"errback got {eb_value!r}"
    rec = read_record(env, py_eb_id, procs=[celery_worker])
    assert rec["args"] == [r.id], f"Celery errback got {rec['args']!r}"
    assert rec["parent_id"] == r.id
    find_dead_letter(env, r.id)


@Checks.add
def check_e_failing_link_stops_the_chain(env):
    """A link that fails in the middle: the rest is not sent; the chain's
    last result becomes FAILURE (as Celery marks it), so a client waiting
    on the chain gets the error instead of hanging."""
    from celery import chain
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    eb_id = str(uuid.uuid4())
    c = chain(sig(app, "vigil.echo", "a"),
              sig(app, "vigil.echo", immutable=True,
                  link_error=sig(app, "vigil.echo", task_id=eb_id)),
              sig(app, "vigil.repeat"))
    r = c.apply_async()
    res, _ = get_result(app, r.id, env, propagate=False)
    assert res.state == "FAILURE", f"last link state {res.state}"
    assert type(res.result).__name__ == "TypeError", repr(res.result)
    middle = r.parent
    find_dead_letter(env, middle.id)
    _, eb_value = get_result(app, eb_id, env)
    assert same(eb_value, middle.id), f"errback got {eb_value!r}"
    _, first = get_result(app, middle.parent.id, env)
    assert same(first, "a")


@Checks.add
def check_f_group_results(env):
    """group(): each member's result carries the group id; the group the
    client saved restores and reads back in order."""
    from celery import group
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    g = group(sig(app, "vigil.echo", i) for i in range(4)).apply_async()
    for child in g.results:
        get_result(app, child.id, env)
    g.save()
    # Restored by another client, as a web process would. In the app that
    # sent the group, restore().get() timed out here: Celery 5.2 resolves
    # the AsyncResults it holds as pending, not the restored copies, so
    # the copy's barrier never fires (client side; not checked against a
    # Celery worker's results, whose later arrival hid it once).
    other = env.celery_app()
    restored = other.GroupResult.restore(g.id)
    assert restored is not None, "GroupResult.restore found nothing"
    assert restored.ready() and restored.successful()
    values = restored.get(timeout=20, interval=0.05)
    assert same(values, [0, 1, 2, 3]), f"group gave {values!r}"
    for child in g.results:
        doc = stored(env, child.id)
        assert doc.get("group_id") == g.id, f"member meta {doc!r}"


def run_chord(env, app, size, workers_ready):
    """chord(echo(i) for i < size)(tally) with the body on the Celery
    worker; returns the body's result and its runs."""
    from celery import chord
    header = [sig(app, "vigil.echo", i) for i in range(size)]
    r = chord(header)(sig(app, "proj.tally", queue="pyq"))
    _, value = get_result(app, r.id, env, timeout=60)
    # Every part's result is stored after the part returned to its chord,
    # and the body was published before: once they are all there and the
    # queues are drained, every run the body will ever have is done.
    parts = r.parent.results
    for p in parts:
        get_result(app, p.id, env)
    wait_drained(env, "celery")
    wait_drained(env, "pyq")
    runs = (env.dir / f"tally-{r.id}").read_text().splitlines()
    return value, [json.loads(x) for x in runs], r


@Checks.add
def check_g_chord_of_five(env):
    """chord(group of 5, body): the body gets the 5 results in order, once;
    the chord's keys are gone afterwards."""
    celery_worker = env.start_celery_worker(PY_TALLY, "pyq")
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    value, runs, r = run_chord(env, app, 5, [celery_worker])
    assert same(value, [0, 1, 2, 3, 4]), f"body got {value!r}"
    assert runs == [[0, 1, 2, 3, 4]], f"body ran {len(runs)} times: {runs!r}"
    gid = r.parent.id
    left = [k for k in env.results.keys(f"celery-taskset-meta-{gid}.*")]
    assert not left, f"chord keys left: {left!r}"


@Checks.add
def check_h_chord_on_two_workers(env):
    """The parts of one chord spread over two vigil worker processes (two
    threads each), finishing together: the body still runs once, with the
    results in group order."""
    celery_worker = env.start_celery_worker(PY_TALLY, "pyq")
    env.start_vigil_worker("celery", 2)
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    for _ in range(3):
        value, runs, _ = run_chord(env, app, 40, [celery_worker])
        assert same(value, list(range(40))), f"body got {value!r}"
        assert len(runs) == 1, f"body ran {len(runs)} times"


@Checks.add
def check_i_chord_part_failure(env):
    """A part that fails: the body is not run; it is stored as FAILURE with
    Celery's ChordError."""
    from celery import chord
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    header = [sig(app, "vigil.echo", 0), sig(app, "vigil.echo")]
    r = chord(header)(sig(app, "vigil.echo"))
    res, _ = get_result(app, r.id, env, propagate=False)
    assert res.state == "FAILURE", res.state
    assert type(res.result).__name__ == "ChordError", repr(res.result)


@Checks.add
def check_j_send_task_link_and_chain(env):
    """vigil send-task --link and --chain build the embed: a Celery worker
    runs the link, vigil the chain; the last id printed is the chain's."""
    celery_worker = env.start_celery_worker(PY_TASKS, "celery")
    app = env.celery_app()
    out = env.vigil("send-task", "proj.add", "--args", "[1]",
                    "--link", "proj.record",
                    "--chain", "proj.record,proj.add").stdout.split()
    assert len(out) == 3, f"send-task printed {out!r}"
    first, second, last = out
    _, value = get_result(app, last, env)
    inner = {"args": [1], "kwargs": {}}
    assert same(value, {"args": [{"args": [inner], "kwargs": {}}],
                        "kwargs": {}}), f"chain gave {value!r}"
    rec = read_record(env, second, procs=[celery_worker])
    assert rec["parent_id"] == first and rec["root_id"] == first, rec


@Checks.add
def check_l_mixed_chord(env):
    """A chord whose parts run on vigil and on a Celery worker (each
    returns its part to the same `.j` set, whichever finishes last sends
    the body): the body (the Celery worker's tally) gets every result in
    group order, once per chord."""
    from celery import chord
    celery_worker = env.start_celery_worker(PY_TALLY, "pyq")
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    for _ in range(2):
        header = [sig(app, "vigil.echo", i) if i % 2 == 0
                  else sig(app, "proj.add", i, queue="pyq")
                  for i in range(8)]
        r = chord(header)(sig(app, "proj.tally", queue="pyq"))
        _, value = get_result(app, r.id, env, timeout=60)
        expected = [i if i % 2 == 0 else {"args": [i], "kwargs": {}}
                    for i in range(8)]
        assert same(value, expected), f"body got {value!r}"
        for p in r.parent.results:
            get_result(app, p.id, env)
        wait_drained(env, "celery")
        wait_drained(env, "pyq")
        runs = (env.dir / f"tally-{r.id}").read_text().splitlines()
        assert len(runs) == 1, f"body ran {len(runs)} times"
    assert celery_worker.alive()


# NESTED_GROUPS_NEED_JSON: a canvas that nests a group (a chord's header,
# a group inside a chain) is sent as JSON. With msgpack, Celery 5.2's
# client writes a corrupt body: python3-msgpack sizes a dict subclass by
# len(), and celery's group defines __len__ as its number of tasks, so the
# group's map header counts its tasks instead of its six keys. No worker
# can read such a message (vigil dead-letters it: "trailing bytes").
# The client still reads results as msgpack (its result_serializer), so
# these workers store msgpack results whatever the message's type.
AS_CLIENT_READS = {"VIGIL_TASKS_RESULT_SERIALIZER": "msgpack"}


@Checks.add
def check_m_chord_in_chain_mixed(env):
    """chain(echo, chord([repeat on vigil, record on Celery], echo),
    repeat): the vigil worker that runs echo applies the chord itself (size
    first, as Celery's group does), the parts return to it from both
    workers, and the body carries the rest of the chain."""
    from celery import chain, chord
    celery_worker = env.start_celery_worker(PY_TASKS, "pyq")
    env.start_vigil_worker("celery", 2, **AS_CLIENT_READS)
    app = env.celery_app()
    c = chain(sig(app, "vigil.echo", "x"),
              chord([sig(app, "vigil.repeat"),
                     sig(app, "proj.record", queue="pyq")],
                    sig(app, "vigil.echo")),
              sig(app, "vigil.repeat", kwargs={"times": 1}))
    r = c.apply_async(serializer="json")  # see NESTED_GROUPS_NEED_JSON
    _, value = get_result(app, r.id, env, timeout=60)
    header = [["x", "x"], {"args": ["x"], "kwargs": {}}]
    assert same(value, [header]), f"chain gave {value!r}"
    assert celery_worker.alive()


@Checks.add
def check_n_chord_in_group(env):
    """A group whose member is a chord, as the last link of a chain: the
    chord's parts get the chain's result, its body their results."""
    from celery import chain, chord, group
    env.start_vigil_worker("celery", 2, **AS_CLIENT_READS)
    app = env.celery_app()
    body_id, other_id = str(uuid.uuid4()), str(uuid.uuid4())
    c = chain(sig(app, "vigil.echo", 3),
              group(chord([sig(app, "vigil.echo"), sig(app, "vigil.repeat")],
                          sig(app, "vigil.echo", task_id=body_id)),
                    sig(app, "vigil.repeat", task_id=other_id)))
    c.apply_async(serializer="json")  # see NESTED_GROUPS_NEED_JSON
    _, value = get_result(app, body_id, env, timeout=60)
    assert same(value, [3, [3, 3]]), f"chord body got {value!r}"
    _, other = get_result(app, other_id, env)
    assert same(other, [3, 3]), f"group member got {other!r}"


@Checks.add
def check_o_expired_chord_part(env):
    """A chord part past its expiry is not run: it is REVOKED, returns to
    its chord as Celery's mark_as_revoked does, and the body fails with
    ChordError instead of waiting for good."""
    from celery import chord
    env.start_vigil_worker("celery", 2)
    app = env.celery_app()
    part_id = str(uuid.uuid4())
    header = [sig(app, "vigil.echo", 0),
              sig(app, "vigil.echo", 1, task_id=part_id, expires=-10)]
    r = chord(header)(sig(app, "vigil.echo"))
    res, _ = get_result(app, r.id, env, propagate=False, timeout=60)
    assert res.state == "FAILURE", res.state
    assert type(res.result).__name__ == "ChordError", repr(res.result)
    assert part_id in str(res.result), repr(res.result)
    part, _ = get_result(app, part_id, env, propagate=False)
    assert part.state == "REVOKED", part.state


AMQP_RESULT_DB = 38


def check_k_amqp_chain_and_chord(_env_unused=None):
    """Over amqp:// with the Redis result backend: a chain of three, a
    chord of five (body on vigil too) and a chord nested in a chain run as
    on Redis."""
    from celery import chain, chord
    with AmqpCheckEnv("k_amqp_chain_and_chord", AMQP_RESULT_DB) as env:
        env.start_vigil_worker("celery", 2, **AS_CLIENT_READS)
        app = env.celery_app()
        r = chain(sig(app, "vigil.echo", "a"), sig(app, "vigil.repeat"),
                  sig(app, "vigil.repeat", kwargs={"times": 1})).apply_async()
        _, value = get_result(app, r.id, env)
        assert same(value, [["a", "a"]]), f"chain gave {value!r}"
        r = chord([sig(app, "vigil.echo", i) for i in range(5)])(
            sig(app, "vigil.echo"))
        _, value = get_result(app, r.id, env, timeout=60)
        assert same(value, [0, 1, 2, 3, 4]), f"chord body got {value!r}"
        r = chain(sig(app, "vigil.echo", "y"),
                  chord([sig(app, "vigil.echo"), sig(app, "vigil.repeat")],
                        sig(app, "vigil.echo")),
                  sig(app, "vigil.repeat", kwargs={"times": 1})
                  ).apply_async(serializer="json")  # NESTED_GROUPS_NEED_JSON
        _, value = get_result(app, r.id, env, timeout=60)
        assert same(value, [["y", ["y", "y"]]]), f"nested chord gave {value!r}"


Checks.items.append(("k_amqp_chain_and_chord", check_k_amqp_chain_and_chord))


def main(argv):
    return harness.main_of(Checks, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
