#!/usr/bin/python3
"""Fault tests: restart the broker while vigil workers are busy.

redis_restart_appendonly: a private redis-server with an append-only file
  (fsync always) holds the broker (db 0) and the results (db 1); 3000 tasks
  are LPUSHed, a vigil worker (visibility timeout 5 s, restore sweep every
  1 s) starts on them, and once ~20% have results redis is stopped with
  SIGTERM (it persists its AOF), left down 2 s and started again on the same
  port and dir. The worker must still be alive (it reconnected) and every
  task must end with a SUCCESS result, the queue and the unacked hash empty.
rabbitmq_restart: a private rabbitmq-server (results on a private redis);
  two vigil workers on amqp://; a Celery client publishes 3000 tasks with
  publisher confirms (retrying a publish that failed during the outage)
  while the RabbitMQ node is stopped and started again on the same ports and
  mnesia dir (durable queue, persistent messages). Every confirmed task
  must end with a SUCCESS result and both workers must still be alive.

Both report how many results were stored more than once (a task run twice
after a redelivery): information, not an assertion.

These checks start their OWN servers (they restart them), whatever
VIGIL_TEST_REDIS_URL / VIGIL_TEST_AMQP_URL say.

Run: /usr/bin/python3 tests/faults/test_broker_restart.py [check ...]
(VIGIL_BIN: the vigil binary, default <repo>/build/vigil.)

Prints "PASS name" or "FAIL name: reason" and exits 1 on failure.
"""

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis  # noqa: E402

import harness  # noqa: E402
from harness import Proc, RedisServer, RabbitServer, wait_until  # noqa: E402
from test_kill_worker import PublishCounter, success_ids  # noqa: E402

QUEUE = "celery"
N_TASKS = 3000
SLEEP_EVERY = 4                   # every 4th task is vigil.sleep(...)
SLEEP_SECONDS = 0.002
# Over AMQP the publisher (confirms) is slower than 4 worker slots, so the
# sleeps are longer there: a backlog (ready and prefetched messages) exists
# when the node stops.
AMQP_SLEEP_SECONDS = 0.1


def task_spec(i, sleep=SLEEP_SECONDS):
    """(name, args, expected result) of task number i."""
    if i % SLEEP_EVERY == 0:
        return "vigil.sleep", [sleep], None
    return "vigil.echo", [i], i


# --------------------------------------------------------------------------
# private servers that can be restarted

class RestartableRedis:
    """redis-server with an AOF (fsync always) in its own dir, on a fixed
    port so that it can be stopped and started again."""

    def __init__(self, name):
        self.dir = harness.tmp_root() / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = None
        self.proc = None
        self.generation = 0
        for _ in range(5):
            self.port = harness.free_port()
            try:
                self.start()
                break
            except AssertionError:
                if self.proc is not None:
                    self.proc.kill()
        else:
            raise RuntimeError("could not start redis-server")
        self.server = RedisServer("127.0.0.1", self.port, proc=None)

    def _pong(self):
        try:
            return redis.Redis(host="127.0.0.1", port=self.port,
                               socket_connect_timeout=0.5,
                               socket_timeout=2).ping()
        except redis.exceptions.RedisError:
            return False

    def start(self):
        self.generation += 1
        self.proc = Proc(
            f"{self.name}-redis-{self.generation}",
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", str(self.dir), "--databases", "16"],
            cwd=str(self.dir),
            log_path=self.dir / f"redis-{self.generation}.log")
        wait_until(self._pong, 15, f"redis-server on port {self.port}",
                   procs=[self.proc])

    def stop(self):
        """SIGTERM: redis fsyncs the AOF and exits."""
        rc = self.proc.stop(timeout=15, sig=signal.SIGTERM)
        assert rc == 0, f"redis-server exited {rc} on SIGTERM:\n" \
            f"{self.proc.log_tail()}"

    def url(self, db):
        return self.server.url(db)

    def client(self, db):
        return self.server.client(db)


class RestartableRabbit:
    """A private rabbitmq-server (as harness.start_rabbitmq starts one) whose
    node name, ports and mnesia dir stay the same across a restart."""

    def __init__(self):
        self.datadir = Path(tempfile.mkdtemp(prefix="vigil-rabbit-"))
        harness._CLEANUPS.append(
            lambda: shutil.rmtree(self.datadir, ignore_errors=True))
        self.port, self.dist_port = harness.free_port(), harness.free_port()
        self.node = f"vigilrestart{os.getpid()}@localhost"
        (self.datadir / "plugins").write_text("[].\n")
        (self.datadir / "env.conf").write_text("")
        self.env = dict(os.environ)
        self.env.update({
            "HOME": str(self.datadir),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(self.datadir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.datadir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.datadir / "plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.datadir / "env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.datadir / "rabbitmq"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        self.argv = ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
        if os.geteuid() == 0:
            shutil.chown(self.datadir, "rabbitmq", "rabbitmq")
            for f in self.datadir.iterdir():
                shutil.chown(f, "rabbitmq", "rabbitmq")
            self.argv = ["setpriv", "--reuid=rabbitmq", "--regid=rabbitmq",
                         "--init-groups"] + self.argv
        self.server = RabbitServer("127.0.0.1", self.port)
        self.proc = None
        self.generation = 0
        harness._CLEANUPS.append(self._cleanup)

    def _up(self):
        try:
            self.server.connect(timeout=1).close()
            return True
        except Exception:       # noqa: BLE001
            return False

    def start(self, timeout=60):
        self.generation += 1
        self.proc = Proc(f"rabbitmq-{self.port}-{self.generation}",
                         self.argv, env=self.env, cwd=str(self.datadir))
        wait_until(self._up, timeout, f"rabbitmq-server on port {self.port}",
                   interval=0.25, procs=[self.proc])

    def stop(self):
        """Stops the node as the harness does (SIGTERM, then waits); then
        waits for the AMQP port to refuse connections."""
        self.proc.stop(timeout=30)
        wait_until(lambda: not self._up(), 15, "the AMQP port to close")

    def _cleanup(self):
        if self.proc is not None:
            self.proc.stop(timeout=30)

    def url(self):
        return self.server.url()


# --------------------------------------------------------------------------

def start_vigil_worker(name, workdir, broker_url, backend_url, **extra):
    env = dict(os.environ)
    env.update({"VIGIL_BROKER_URL": broker_url,
                "VIGIL_TASKS_RESULT_BACKEND": backend_url,
                "VIGIL_LOG_LEVEL": "warning"})
    env.update({k: str(v) for k, v in extra.items()})
    return Proc(name, [harness.vigil_bin(), "run", "worker", "-Q", QUEUE,
                       "-c", "2"],
                env=env, cwd=str(workdir), log_path=workdir / f"{name}.log")


def check_results(results, ids, expected):
    done, docs = success_ids(results, ids)
    assert len(done) == len(ids), f"{len(ids) - len(done)} without SUCCESS"
    wrong = [(i, docs[i].get("result"), expected[i]) for i in ids
             if docs[i].get("result") != expected[i]
             or docs[i].get("task_id") != i]
    assert not wrong, f"{len(wrong)} wrong results, e.g. {wrong[:3]}"


def stop_workers(workers):
    """SIGTERM the workers; each must exit 0."""
    problems = []
    for w in workers:
        rc = w.stop(timeout=15)
        if rc != 0:
            problems.append(f"{w.name} did not exit 0 on SIGTERM (status "
                            f"{rc}):\n{w.log_tail()}")
    assert not problems, "; ".join(problems)


def check_redis_restart_appendonly():
    srv = RestartableRedis("redis_restart")
    workdir = srv.dir
    broker, results = srv.client(0), srv.client(1)
    tasks, expected = [], {}
    for i in range(N_TASKS):
        name, args, result = task_spec(i)
        tid, envelope = harness.celery_envelope(name, args, queue=QUEUE)
        tasks.append((tid, envelope))
        expected[tid] = result
    ids = [t[0] for t in tasks]
    harness.declare_queue(broker, QUEUE)
    pipe = broker.pipeline(transaction=False)
    for n, (_, envelope) in enumerate(tasks, 1):
        pipe.lpush(QUEUE, envelope)
        if n % 500 == 0:
            pipe.execute()
    pipe.execute()
    assert broker.llen(QUEUE) == N_TASKS

    worker = start_vigil_worker(
        "vigil-worker", workdir, srv.url(0), srv.url(1),
        VIGIL_BROKER_VISIBILITY_TIMEOUT=5, VIGIL_BROKER_RESTORE_INTERVAL=1)
    try:
        stop_at = N_TASKS // 5
        t0 = time.monotonic()
        wait_until(lambda: results.dbsize() >= stop_at, 30,
                   f"{stop_at} results", interval=0.005, procs=[worker])
        srv.stop()
        print(f"  stopped redis after {time.monotonic() - t0:.2f} s with "
              f"~{stop_at} results", flush=True)
        # Past the point where the outage could kill it: it failed to
        # reconnect and said so.
        wait_until(lambda: "broker unavailable" in worker.log_text(), 30,
                   "the worker to report the broker unavailable",
                   procs=[worker])
        assert worker.alive(), \
            f"the vigil worker exited (status {worker.returncode}) while " \
            f"redis was down:\n{worker.log_tail()}"
        srv.start()
        broker, results = srv.client(0), srv.client(1)
        n_done = results.dbsize()
        print(f"  redis back: {n_done} results, {broker.llen(QUEUE)} queued, "
              f"{broker.hlen('unacked')} unacked after the AOF reload",
              flush=True)
        t1 = time.monotonic()
        state = {}

        def finished():
            done, _ = success_ids(results, ids)
            state["done"] = done
            return (len(done) == len(ids) and broker.llen(QUEUE) == 0
                    and broker.hlen("unacked") == 0
                    and broker.zcard("unacked_index") == 0)
        try:
            wait_until(finished, 90, "every task to succeed and the queue "
                       "and unacked hash to empty", interval=0.25,
                       procs=[worker])
        except AssertionError as e:
            missing = len(ids) - len(state.get("done", ()))
            raise AssertionError(
                f"{e}: {missing} task(s) without SUCCESS; queue "
                f"{broker.llen(QUEUE)}, unacked {broker.hlen('unacked')}, "
                f"unacked_index {broker.zcard('unacked_index')}, dead "
                f"letters {broker.llen('vigil.dead_letters')}; worker log "
                f"tail:\n{worker.log_tail()}")
        print(f"  all {N_TASKS} done {time.monotonic() - t1:.2f} s after "
              f"the restart", flush=True)
        check_results(results, ids, expected)
        dead = broker.llen("vigil.dead_letters")
        assert dead == 0, f"{dead} dead letters"
        assert worker.alive(), "the vigil worker exited"
        log = worker.log_text()
        print(f"  worker log: {len(log.splitlines())} line(s) "
              f"(warnings/errors during the outage)", flush=True)
        stop_workers([worker])
    finally:
        worker.kill()
        srv.proc.stop(timeout=10)


def check_rabbitmq_restart():
    saved = os.environ.pop("VIGIL_TEST_AMQP_URL", None)
    try:
        rabbit = RestartableRabbit()
    finally:
        if saved is not None:
            os.environ["VIGIL_TEST_AMQP_URL"] = saved
    rsrv = RestartableRedis("rabbitmq_restart")
    workdir = rsrv.dir
    results = rsrv.client(1)
    rabbit.start()
    workers = [start_vigil_worker(f"vigil-worker-{k}", workdir, rabbit.url(),
                                  rsrv.url(1)) for k in (1, 2)]
    ids = [str(uuid.uuid4()) for _ in range(N_TASKS)]
    expected = {tid: task_spec(i)[2] for i, tid in enumerate(ids)}
    counter = PublishCounter(rsrv.server, ids)
    counter.start()
    app = harness.make_celery_app(
        rabbit.url(), rsrv.url(1), name="client_rabbitmq_restart",
        broker_transport_options={"confirm_publish": True},
        broker_connection_timeout=2)
    confirmed = []          # ids whose publish returned (confirmed)
    failures = []           # publish errors (retried)
    pub = {"error": None, "done": False}

    def publisher():
        try:
            deadline = time.monotonic() + 120
            for i, tid in enumerate(ids):
                name, args, _ = task_spec(i, AMQP_SLEEP_SECONDS)
                while True:
                    try:
                        app.send_task(name, args=args, task_id=tid,
                                      queue=QUEUE)
                        confirmed.append(tid)
                        break
                    except Exception as e:      # noqa: BLE001
                        failures.append(repr(e))
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                if i % 4 == 3:
                    time.sleep(0.001)   # keep publishing across the restart
        except BaseException as e:              # noqa: BLE001
            pub["error"] = e
        finally:
            pub["done"] = True

    thread = threading.Thread(target=publisher, daemon=True)
    try:
        wait_until(lambda: rabbit.server.consumer_count(QUEUE) >= 2, 30,
                   "both workers to consume", procs=workers)
        t0 = time.monotonic()
        thread.start()
        wait_until(lambda: len(confirmed) >= N_TASKS // 3
                   or pub["done"], 60, f"{N_TASKS // 3} confirmed publishes",
                   interval=0.01, procs=workers)
        assert not pub["done"], \
            f"publisher finished before the restart: {pub['error']!r}"
        n_results = results.dbsize()
        print(f"  stopping rabbitmq after {time.monotonic() - t0:.2f} s: "
              f"{len(confirmed)} confirmed, ~{n_results} results, "
              f"{rabbit.server.message_count(QUEUE)} ready in the queue",
              flush=True)
        t_stop = time.monotonic()
        rabbit.stop()
        print(f"  rabbitmq stopped in {time.monotonic() - t_stop:.2f} s",
              flush=True)
        for w in workers:
            wait_until(lambda w=w: "broker unavailable" in w.log_text(), 30,
                       f"{w.name} to report the broker unavailable",
                       procs=workers)
        for w in workers:
            assert w.alive(), \
                f"{w.name} exited (status {w.returncode}) while rabbitmq " \
                f"was down:\n{w.log_tail()}"
        t_start = time.monotonic()
        rabbit.start()
        print(f"  rabbitmq started again in "
              f"{time.monotonic() - t_start:.2f} s; queue holds "
              f"{rabbit.server.message_count(QUEUE)} ready", flush=True)
        wait_until(lambda: pub["done"], 90, "the publisher to finish",
                   interval=0.1, procs=workers)
        assert pub["error"] is None, f"publisher failed: {pub['error']!r}"
        print(f"  {len(confirmed)} publishes confirmed, {len(failures)} "
              f"failed and retried (e.g. {failures[:1]})", flush=True)
        t1 = time.monotonic()
        state = {}

        def finished():
            done, _ = success_ids(results, confirmed)
            state["done"] = done
            return len(done) == len(confirmed)
        try:
            wait_until(finished, 120, "every confirmed task to succeed",
                       interval=0.25, procs=workers)
        except AssertionError as e:
            missing = [i for i in confirmed if i not in state.get("done", ())]
            raise AssertionError(
                f"{e}: {len(missing)} confirmed task(s) without SUCCESS "
                f"(e.g. {missing[:3]}); queue holds "
                f"{rabbit.server.message_count(QUEUE)} ready; worker log "
                f"tails:\n" + "\n".join(f"{w.name}:\n{w.log_tail()}"
                                         for w in workers))
        print(f"  all {len(confirmed)} confirmed tasks done "
              f"{time.monotonic() - t1:.2f} s after the publisher finished",
              flush=True)
        check_results(results, confirmed, expected)
        for w in workers:
            assert w.alive(), f"{w.name} exited"
        wait_until(lambda: rabbit.server.message_count(QUEUE) == 0, 10,
                   "the queue to empty", procs=workers)
        counter.report("n/a")
        stop_workers(workers)
    finally:
        counter.stop()
        for w in workers:
            w.kill()
        try:
            app.close()
        except Exception:       # noqa: BLE001
            pass
        rabbit._cleanup()
        rsrv.proc.stop(timeout=10)


CHECKS = [
    ("redis_restart_appendonly", check_redis_restart_appendonly),
    ("rabbitmq_restart", check_rabbitmq_restart),
]


def main(argv):
    checks = [c for c in CHECKS if not argv or c[0] in argv]
    if not checks:
        print(f"no check matches {argv}; checks: {[c[0] for c in CHECKS]}")
        return 2
    harness.vigil_bin()
    return harness.run_checks(checks)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
