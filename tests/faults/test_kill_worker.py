#!/usr/bin/python3
"""Fault tests: stop a vigil worker in the middle of a batch.

kill_worker_mid_batch: 3000 tasks; worker A is kill -9'd after some
  hundreds of results; worker B (visibility timeout 2 s, restore sweep every
  1 s) must restore what A held so that every task ends with a SUCCESS
  result and nothing is left queued or unacknowledged. Reports how many
  tasks were stored twice (run twice): not an assertion.
sigterm_worker_mid_batch: 1000 tasks; worker A gets SIGTERM mid-batch and
  must exit 0 leaving nothing unacknowledged (no task lost, none both done
  and requeued); worker B with the default (1 h) visibility timeout then
  finishes the rest.
duplicate_delivery_keeps_success: a duplicate delivery of a task that
  already succeeded must not overwrite its SUCCESS result (Celery's backend
  ignores states stored after SUCCESS).
poison_message_dead_lettered: a task that aborts its worker process
  (vigil.test.crash, registered with VIGIL_TEST_CRASH_TASK=1) is published
  ahead of 20 others on a one-thread worker; the test restarts the worker
  each time it dies. The message must take exactly tasks.max-deliveries (5)
  workers down, then sit in the dead letters with the reason, while every
  other task succeeds.
poison_message_dead_lettered_amqp: the same on RabbitMQ (a Celery client
  publishes; results on redis), where the count lives in RabbitMQ itself
  (a header on a copy, a marker queue per suspect run): the 20 others,
  held beside the poison message each time it took the process down, are
  not counted for it.

Run: /usr/bin/python3 tests/faults/test_kill_worker.py [check ...]
(VIGIL_BIN: the vigil binary, default <repo>/build/vigil;
 VIGIL_TEST_REDIS_URL: use that redis server (dbs 14 and 15) instead of a
 private one; VIGIL_TEST_AMQP_URL: that RabbitMQ instead of a private one.)

Prints "PASS name" or "FAIL name: reason" and exits 1 on failure.
"""

import datetime
import hashlib
import json
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))

import msgpack  # noqa: E402

import harness  # noqa: E402
from harness import CheckEnv, wait_until  # noqa: E402

BROKER_DB, RESULT_DB = 14, 15     # tests/interop uses dbs 0-13
QUEUE = "celery"
SLEEP_EVERY = 2                   # every 2nd task is vigil.sleep(...)
SLEEP_SECONDS = 0.004             # ... so that A is mid-batch when stopped
VISIBILITY_TIMEOUT = 2
RESTORE_INTERVAL = 1
FINISH_TIMEOUT = 60


def build_tasks(n):
    """[(task_id, envelope_json)] and {task_id: expected result}."""
    tasks, expected = [], {}
    for i in range(n):
        if i % SLEEP_EVERY == 0:
            name, args, result = "vigil.sleep", [SLEEP_SECONDS], None
        else:
            name, args, result = "vigil.echo", [f"v{i}"], f"v{i}"
        task_id, envelope = harness.celery_envelope(name, args, queue=QUEUE)
        tasks.append((task_id, envelope))
        expected[task_id] = result
    return tasks, expected


def publish(r, tasks):
    """LPUSHes the envelopes as a Celery producer would (pipelined)."""
    t0 = time.monotonic()
    harness.declare_queue(r, QUEUE)
    pipe = r.pipeline(transaction=False)
    for n, (_, envelope) in enumerate(tasks, 1):
        pipe.lpush(QUEUE, envelope)
        if n % 500 == 0:
            pipe.execute()
    pipe.execute()
    assert r.llen(QUEUE) == len(tasks)
    print(f"  published {len(tasks)} tasks in {time.monotonic() - t0:.2f} s",
          flush=True)


class PublishCounter:
    """Counts result PUBLISHes per task id (celery-task-meta-<id> channels):
    each one is a result store, so a task stored twice was run twice."""

    # Published by report() once the workers are done: Redis delivers a
    # connection's pub/sub messages in order, so when this one arrives every
    # earlier result PUBLISH has.
    END_MARKER = "celery-task-meta-end-of-results"

    def __init__(self, server, ids):
        self.ids = set(ids)
        self._server = server
        self._end = threading.Event()
        self.counts = Counter()
        self.statuses = {}
        self.error = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._client = server.client(0)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("result subscriber did not start")
        if self.error:
            raise AssertionError(f"result subscriber failed: {self.error!r}")

    def _run(self):
        try:
            self._pubsub.psubscribe("celery-task-meta-*")
            self._ready.set()
            while not self._stop.is_set():
                m = self._pubsub.get_message(timeout=0.2)
                if not m or m["type"] != "pmessage":
                    continue
                if m["channel"].decode() == self.END_MARKER:
                    self._end.set()
                    continue
                tid = m["channel"].decode()[len("celery-task-meta-"):]
                if tid not in self.ids:
                    continue
                self.counts[tid] += 1
                try:
                    status = msgpack.unpackb(m["data"], raw=False)["status"]
                except Exception:       # noqa: BLE001
                    status = "?"
                self.statuses.setdefault(tid, []).append(status)
        except Exception as e:          # noqa: BLE001
            self.error = e
            self._ready.set()

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        try:
            self._pubsub.close()
            self._client.close()
        except Exception:               # noqa: BLE001
            pass

    def report(self, expected_twice):
        """Prints the run-twice count; fails on a SUCCESS overwritten."""
        self._server.client(0).publish(self.END_MARKER, b"")
        arrived = self._end.wait(30)
        self.stop()
        if not arrived and not self.error:
            raise AssertionError("the result subscriber did not see the end "
                                 "marker: results may be missing")
        if self.error:
            print(f"  (publish counter failed: {self.error!r})")
            return
        twice = [i for i, n in self.counts.items() if n > 1]
        print(f"  results published: {sum(self.counts.values())} for "
              f"{len(self.counts)} tasks; {len(twice)} task(s) stored more "
              f"than once, i.e. run twice (predicted from the unacked hash "
              f"at the stop: {expected_twice})", flush=True)
        downgraded = [i for i, st in self.statuses.items()
                      if "SUCCESS" in st and st[-1] != "SUCCESS"]
        assert not downgraded, \
            f"results overwritten after SUCCESS: {downgraded[:3]}"


def success_ids(results, ids):
    """ids whose stored result is SUCCESS, and the decoded docs."""
    done, docs = set(), {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        raws = results.mget([f"celery-task-meta-{i}" for i in chunk])
        for tid, raw in zip(chunk, raws):
            if raw is None:
                continue
            doc = msgpack.unpackb(raw, raw=False)
            docs[tid] = doc
            if doc.get("status") == "SUCCESS":
                done.add(tid)
    return done, docs


def snapshot(env, ids):
    """State of the broker and results while no worker runs."""
    done, _ = success_ids(env.results, ids)
    unacked = harness.envelope_ids(env.broker.hvals("unacked"))
    queued = harness.envelope_ids(env.broker.lrange(QUEUE, 0, -1))
    # A consumer killed between taking a batch and recording it in
    # `unacked` leaves the batch in its in-flight list ("<list>:<n>" for
    # each member of the set vigil.inflight); the next sweep restores it.
    inflight = []
    for member in env.broker.smembers("vigil.inflight"):
        name = member.decode() if isinstance(member, bytes) else member
        for key in env.broker.scan_iter(match=name + ":*"):
            inflight += harness.envelope_ids(env.broker.lrange(key, 0, -1))
    return dict(done=done, unacked=set(unacked), queued=set(queued),
                inflight=set(inflight), n_inflight=len(inflight),
                index=env.broker.zcard("unacked_index"),
                n_unacked=len(unacked), n_queued=len(queued))


def wait_all_done(env, ids, expected, worker, timeout=FINISH_TIMEOUT):
    """Waits until every id has SUCCESS and queue/unacked are empty; then
    checks every result value."""
    state = {}

    def finished():
        done, docs = success_ids(env.results, ids)
        state.update(done=done, docs=docs)
        return (len(done) == len(ids) and env.broker.llen(QUEUE) == 0
                and env.broker.hlen("unacked") == 0
                and env.broker.zcard("unacked_index") == 0)
    try:
        wait_until(finished, timeout, "every task to succeed and the queue "
                   "and unacked hash to empty", interval=0.25, procs=[worker])
    except AssertionError as e:
        missing = [i for i in ids if i not in state.get("done", ())]
        bad = {i: state["docs"][i] for i in missing[:3]
               if i in state.get("docs", {})}
        raise AssertionError(
            f"{e}: {len(missing)} task(s) without SUCCESS (e.g. "
            f"{missing[:3]}, docs {bad}); queue {env.broker.llen(QUEUE)}, "
            f"unacked {env.broker.hlen('unacked')}, unacked_index "
            f"{env.broker.zcard('unacked_index')}, dead letters "
            f"{env.broker.llen('vigil.dead_letters')}")
    docs = state["docs"]
    wrong = [(i, docs[i].get("result"), expected[i]) for i in ids
             if docs[i].get("result") != expected[i]
             or docs[i].get("task_id") != i]
    assert not wrong, f"{len(wrong)} wrong results, e.g. {wrong[:3]}"
    dead = env.broker.llen("vigil.dead_letters")
    assert dead == 0, f"{dead} dead letters"


# --------------------------------------------------------------------------

def check_kill_worker_mid_batch():
    n_tasks, kill_at = 3000, 300
    with CheckEnv("kill_worker", BROKER_DB, RESULT_DB) as env:
        tasks, expected = build_tasks(n_tasks)
        ids = [t[0] for t in tasks]
        counter = PublishCounter(env.redis, ids)
        counter.start()
        try:
            publish(env.broker, tasks)

            # Worker A: default (1 h) visibility timeout; killed mid-batch.
            a = env.start_vigil_worker(QUEUE, 2)
            t_a = time.monotonic()
            # Kill while A holds messages (taken but not acknowledged), not
            # in the instant between acknowledging a batch and taking more.
            wait_until(lambda: env.results.dbsize() >= kill_at
                       and env.broker.hlen("unacked") > 0, 30,
                       f"worker A to store {kill_at} results and hold more",
                       interval=0.002, procs=[a])
            a.send_signal(signal.SIGKILL)
            a.wait(10)
            assert not a.alive(), "worker A survived SIGKILL"

            s = snapshot(env, ids)
            rerun = s["done"] & s["unacked"]
            print(f"  killed worker A after {time.monotonic() - t_a:.2f} s: "
                  f"{len(s['done'])} results, {s['n_unacked']} unacked "
                  f"(index {s['index']}), {s['n_queued']} still queued; "
                  f"{len(rerun)} unacked already had a result", flush=True)
            assert len(s["done"]) < n_tasks, \
                "worker A finished every task before it was killed: the " \
                "test did not exercise a kill mid-batch (make tasks slower)"
            # A held messages when the kill was decided (see the wait above);
            # it may have acknowledged them in the instant before the signal.
            if not (s["n_unacked"] or s["n_inflight"]):
                print("  note: worker A acknowledged what it held just before "
                      "the kill landed", flush=True)
            assert s["index"] == s["n_unacked"], \
                f"unacked_index has {s['index']} entries, unacked " \
                f"{s['n_unacked']}"
            lost = (set(ids) - s["done"] - s["unacked"] - s["queued"]
                    - s["inflight"])
            assert not lost, \
                f"{len(lost)} task(s) neither done, queued, in flight nor " \
                f"unacked after the kill (lost), e.g. {sorted(lost)[:3]}"
            if s["n_inflight"]:
                print(f"  {s['n_inflight']} message(s) were in worker A's "
                      f"in-flight list (taken, not yet recorded)", flush=True)

            # Worker B: short visibility timeout and a fast restore sweep.
            b = env.start_vigil_worker(
                QUEUE, 2,
                VIGIL_BROKER_VISIBILITY_TIMEOUT=VISIBILITY_TIMEOUT,
                VIGIL_BROKER_RESTORE_INTERVAL=RESTORE_INTERVAL)
            t_b = time.monotonic()
            wait_all_done(env, ids, expected, b)
            print(f"  worker B finished the rest in "
                  f"{time.monotonic() - t_b:.2f} s", flush=True)
            counter.report(len(rerun))
        finally:
            counter.stop()


def check_sigterm_worker_mid_batch():
    n_tasks, stop_at = 1000, 100
    with CheckEnv("sigterm_worker", BROKER_DB, RESULT_DB) as env:
        tasks, expected = build_tasks(n_tasks)
        ids = [t[0] for t in tasks]
        counter = PublishCounter(env.redis, ids)
        counter.start()
        try:
            publish(env.broker, tasks)
            a = env.start_vigil_worker(QUEUE, 2)
            wait_until(lambda: env.results.dbsize() >= stop_at, 30,
                       f"worker A to store {stop_at} results",
                       interval=0.005, procs=[a])
            t_stop = time.monotonic()
            a.send_signal(signal.SIGTERM)
            rc = a.wait(40)
            took = time.monotonic() - t_stop
            assert rc is not None, "worker A still running 40 s after SIGTERM"
            assert rc == 0, f"worker A exited {rc} on SIGTERM:\n{a.log_tail()}"

            s = snapshot(env, ids)
            print(f"  worker A exited 0 {took:.2f} s after SIGTERM: "
                  f"{len(s['done'])} results, {s['n_unacked']} unacked, "
                  f"{s['n_queued']} queued", flush=True)
            assert s["n_unacked"] == 0 and s["index"] == 0, \
                f"a drained worker left {s['n_unacked']} message(s) in " \
                f"unacked ({s['index']} in unacked_index)"
            lost = set(ids) - s["done"] - s["queued"]
            assert not lost, \
                f"{len(lost)} task(s) neither done nor queued after the " \
                f"drain (lost), e.g. {sorted(lost)[:3]}"
            both = s["done"] & s["queued"]
            assert not both, \
                f"{len(both)} task(s) both done and requeued by the drain " \
                f"(would run twice), e.g. {sorted(both)[:3]}"
            assert len(s["done"]) < n_tasks, \
                "worker A finished every task before SIGTERM (make the " \
                "tasks slower)"

            # Default visibility timeout: B can only finish if A left
            # nothing behind in unacked.
            b = env.start_vigil_worker(QUEUE, 2)
            wait_all_done(env, ids, expected, b, timeout=30)
            counter.report(0)
        finally:
            counter.stop()


def check_duplicate_delivery_keeps_success():
    """At-least-once delivery means duplicates (a restored message whose
    task had already stored its result). Celery's result backend ignores
    any state stored after SUCCESS (§4.1 of the protocol notes: GET, then
    skip if SUCCESS). Here the duplicate arrives after the task's
    `expires`: a Celery worker would try to store REVOKED and keep SUCCESS."""
    with CheckEnv("duplicate_delivery", BROKER_DB, RESULT_DB) as env:
        task_id, raw = harness.celery_envelope("vigil.echo", ["first"],
                                               queue=QUEUE)
        envelope = json.loads(raw)
        expires = time.time() + 2.0
        envelope["headers"]["expires"] = datetime.datetime.fromtimestamp(
            expires, datetime.timezone.utc).isoformat()
        harness.declare_queue(env.broker, QUEUE)
        env.broker.lpush(QUEUE, json.dumps(envelope))
        worker = env.start_vigil_worker(QUEUE, 2)
        wait_until(lambda: harness.result_doc(env.results, task_id), 10,
                   "the first result", procs=[worker])
        doc = harness.result_doc(env.results, task_id)
        assert doc["status"] == "SUCCESS" and doc["result"] == "first", \
            f"first delivery: {doc}"

        # The duplicate, as kombu's restore would requeue it.
        time.sleep(max(0.0, expires + 0.3 - time.time()))
        envelope["headers"]["redelivered"] = True
        envelope["properties"]["delivery_info"]["redelivered"] = True
        env.broker.rpush(QUEUE, json.dumps(envelope))
        wait_until(lambda: env.broker.llen(QUEUE) == 0
                   and env.broker.hlen("unacked") == 0, 10,
                   "the duplicate to be consumed", procs=[worker])
        # Results are written in batches: once the worker has exited (it
        # flushes on SIGTERM), nothing more can be stored.
        rc = worker.stop(timeout=30)
        assert rc == 0, f"worker exit status {rc}:\n{worker.log_tail()}"
        doc = harness.result_doc(env.results, task_id)
        assert doc["status"] == "SUCCESS" and doc["result"] == "first", \
            f"the duplicate overwrote the SUCCESS result: {doc}"


MAX_DELIVERIES, N_INNOCENT = 5, 20


def run_until_poison_buried(env, settled, after_death=lambda: None):
    """Starts one-thread workers (crash task on) until one lives to see
    `settled()`; returns (deaths, the last worker). Each death must be the
    poison message's SIGABRT, at most MAX_DELIVERIES of them."""
    deaths = 0
    while True:
        # One task thread, so that nothing runs beside the suspect that
        # runs alone; a short visibility timeout brings back what the
        # dead worker held (Redis; RabbitMQ gives it back at once).
        worker = env.start_vigil_worker(
            QUEUE, 1, VIGIL_TEST_CRASH_TASK=1,
            VIGIL_BROKER_VISIBILITY_TIMEOUT=1,
            VIGIL_BROKER_RESTORE_INTERVAL=0.2)
        wait_until(lambda: not worker.alive() or settled(), 60,
                   "the worker to die or every task to settle",
                   interval=0.05)
        if worker.alive():
            return deaths, worker
        worker.expected_exit = True
        rc = worker.returncode
        assert rc == -signal.SIGABRT, \
            f"the worker exited with {rc}, not SIGABRT:\n" \
            f"{worker.log_tail()}"
        deaths += 1
        assert deaths <= MAX_DELIVERIES, \
            f"the poison message took {deaths} workers down " \
            f"(tasks.max-deliveries {MAX_DELIVERIES})"
        after_death()


def check_poison_letter(env, poison_id, deaths):
    print(f"  the poison message took {deaths} worker(s) down", flush=True)
    assert deaths == MAX_DELIVERIES, \
        f"dead-lettered after {deaths} deaths, expected {MAX_DELIVERIES}"
    letters = env.dead_letters()
    assert len(letters) == 1, f"dead letters: {letters}"
    letter = letters[0]
    assert letter["task_id"] == poison_id, letter
    assert letter["task"] == "vigil.test.crash", letter
    assert letter["reason"] == (f"delivered {MAX_DELIVERIES} times, its "
                                f"worker died each time"), letter


def check_poison_message_dead_lettered():
    max_deliveries, n_innocent = MAX_DELIVERIES, N_INNOCENT
    with CheckEnv("poison_message", BROKER_DB, RESULT_DB) as env:
        poison_id, poison = harness.celery_envelope("vigil.test.crash",
                                                    queue=QUEUE)
        tasks, expected = [], {}
        for i in range(n_innocent):
            task_id, envelope = harness.celery_envelope(
                "vigil.echo", [f"v{i}"], queue=QUEUE)
            tasks.append((task_id, envelope))
            expected[task_id] = f"v{i}"
        ids = [t[0] for t in tasks]
        # Published first, so served first: it takes the others' first
        # delivery down with it.
        publish(env.broker, [(poison_id, poison)] + tasks)

        def finished():
            done, _ = success_ids(env.results, ids)
            return (len(done) == n_innocent
                    and env.broker.llen("vigil.dead_letters") == 1
                    and env.broker.llen(QUEUE) == 0
                    and env.broker.hlen("unacked") == 0)

        # Killed in the middle of a restore sweep, a worker would leave
        # kombu's unacked_mutex for its 300 s expiry, as a Celery worker
        # does; its holder is dead, so clear it.
        deaths, worker = run_until_poison_buried(
            env, finished, lambda: env.broker.delete("unacked_mutex"))
        assert max_deliveries == MAX_DELIVERIES
        check_poison_letter(env, poison_id, deaths)
        done, docs = success_ids(env.results, ids)
        wrong = [i for i in ids if docs[i].get("result") != expected[i]]
        assert not wrong, f"wrong results: {wrong[:3]}"
        assert env.broker.hlen("unacked_deliveries") == 0, \
            "failed-delivery counts left behind: " \
            f"{env.broker.hgetall('unacked_deliveries')}"
        rc = worker.stop(timeout=30)
        assert rc == 0, f"worker exit status {rc}:\n{worker.log_tail()}"


class AmqpCheckEnv(CheckEnv):
    """A CheckEnv whose broker is RabbitMQ (harness.start_rabbitmq);
    results stay on redis."""

    def __init__(self, name):
        super().__init__(name, RESULT_DB, RESULT_DB)
        self.rabbit = harness.start_rabbitmq()
        self.rabbit.purge_queues(QUEUE, "vigil.dead_letters")
        self.broker = None          # no redis broker db here
        self.broker_url = self.rabbit.url()


def run_marker(queue, task_id, count):
    """The name of the queue that marks a suspect run on RabbitMQ
    (actors/backends/broker_amqp_deliveries.cpp)."""
    digest = hashlib.md5(f"{queue}\n{task_id}\n{count}".encode()).hexdigest()
    return f"vigil.running.{digest}"


def check_poison_message_dead_lettered_amqp():
    with AmqpCheckEnv("poison_message_amqp") as env:
        app = env.celery_app(
            broker_transport_options={"confirm_publish": True})
        # Published first, so served first: it takes the others' first
        # delivery down with it, and the others are held beside it (the
        # prefetch takes them all) each time it runs.
        poison_id = app.send_task("vigil.test.crash", queue=QUEUE).id
        ids, expected = [], {}
        for i in range(N_INNOCENT):
            tid = app.send_task("vigil.echo", args=[f"v{i}"], queue=QUEUE).id
            ids.append(tid)
            expected[tid] = f"v{i}"
        rabbit = env.rabbit

        def finished():
            done, _ = success_ids(env.results, ids)
            return (len(done) == N_INNOCENT
                    and rabbit.message_count("vigil.dead_letters") == 1
                    and rabbit.message_count(QUEUE) == 0)

        deaths, worker = run_until_poison_buried(env, finished)
        check_poison_letter(env, poison_id, deaths)
        done, docs = success_ids(env.results, ids)
        wrong = [i for i in ids if docs[i].get("result") != expected[i]]
        assert not wrong, f"wrong results: {wrong[:3]}"
        rc = worker.stop(timeout=30)
        assert rc == 0, f"worker exit status {rc}:\n{worker.log_tail()}"
        assert rabbit.message_count(QUEUE) == 0, "messages left queued"
        # Every run marker went with its run (the poison message's five,
        # one per innocent run alone).
        import amqp
        conn = rabbit.connect()
        try:
            left = []
            for tid, counts in [(poison_id, range(1, MAX_DELIVERIES + 1))] \
                    + [(i, [1]) for i in ids]:
                for n in counts:
                    try:
                        conn.channel().queue_declare(run_marker(QUEUE, tid, n),
                                                     passive=True)
                        left.append((tid, n))
                    except amqp.exceptions.NotFound:
                        pass
        finally:
            conn.close()
        assert not left, f"run markers left behind: {left[:3]}"


CHECKS = [
    ("kill_worker_mid_batch", check_kill_worker_mid_batch),
    ("sigterm_worker_mid_batch", check_sigterm_worker_mid_batch),
    ("duplicate_delivery_keeps_success",
     check_duplicate_delivery_keeps_success),
    ("poison_message_dead_lettered", check_poison_message_dead_lettered),
    ("poison_message_dead_lettered_amqp",
     check_poison_message_dead_lettered_amqp),
]


def main(argv):
    checks = [c for c in CHECKS if not argv or c[0] in argv]
    if not checks:
        print(f"no check matches {argv}; checks: {[c[0] for c in CHECKS]}")
        return 2
    harness.vigil_bin()
    harness.start_redis()
    return harness.run_checks(checks)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
