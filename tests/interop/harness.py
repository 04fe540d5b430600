"""Shared helpers for vigil's interop and fault tests.

Run these tests with Debian's interpreter, /usr/bin/python3: it is the one
that can import python3-celery, python3-kombu, python3-redis and
python3-msgpack.

What is here:

* redis: `start_redis()` starts a private redis-server on a free port and
  stops it at exit; when VIGIL_TEST_REDIS_URL is set, that server is used
  instead. Test scripts choose distinct db numbers (interop 0-13, faults
  14-15) and CheckEnv FLUSHDBs them first.
* rabbitmq: `start_rabbitmq()` starts a private rabbitmq-server (or uses
  VIGIL_TEST_AMQP_URL); `RabbitServer.purge_queues()` empties a check's
  queues, `message_count()` reads a queue's depth (the AMQP checks).
* processes: `Proc` wraps a subprocess (own session, log file); every Proc
  is killed at exit, and `CheckEnv.close()` stops the ones a check started.
* vigil: `CheckEnv.start_vigil_worker()`, `CheckEnv.vigil()` (the CLI).
* Celery: `make_celery_app()` (msgpack both ways), and
  `CheckEnv.start_celery_worker()` which writes a tasks module to a temp
  dir and runs a real Celery worker (solo pool by default) on it.
* kombu envelopes built byte-for-byte like Celery 5.2 builds them
  (`celery_envelope()`), for tests that LPUSH thousands of tasks.
* `wait_until()`: every wait is bounded.
* `run_checks()`: the plain-script runner (PASS/FAIL lines, exit status).
"""

import atexit
import base64
import gc
import json
import os
import pprint
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import traceback
import urllib.parse
import uuid
from pathlib import Path

import msgpack
import redis

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PYTHON = "/usr/bin/python3"


_VIGIL_COPY = None


def vigil_bin():
    """The vigil binary: $VIGIL_BIN, else <repo>/build/vigil.

    Other people rebuild that file while tests run, so the first call waits
    (bounded) for it to exist and stop changing, then copies it into this
    run's temp dir; every check uses that copy."""
    global _VIGIL_COPY
    if _VIGIL_COPY is not None:
        return _VIGIL_COPY
    path = os.environ.get("VIGIL_BIN") or str(REPO / "build" / "vigil")
    deadline = time.monotonic() + 90
    last = None
    while True:
        try:
            st = os.stat(path)
            now = (st.st_size, st.st_mtime_ns)
        except OSError:
            now = None
        if now is not None and now == last and os.access(path, os.X_OK) \
                and time.time() - st.st_mtime > 1:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"vigil binary not found, not executable or "
                               f"still changing: {path} (set VIGIL_BIN)")
        last = now
        time.sleep(0.5)
    copy = tmp_root() / "vigil"
    shutil.copy2(path, copy)
    _VIGIL_COPY = str(copy)
    return _VIGIL_COPY


# --------------------------------------------------------------------------
# temp dir and process bookkeeping

_TMP = None
_KEEP_TMP = bool(os.environ.get("VIGIL_TEST_KEEP_TMP"))
_PROCS = []          # every Proc ever started, killed at exit if still alive
_CLEANUPS = []       # extra callables run at exit (last registered first)


def tmp_root():
    """One temp dir per test script run; removed at exit unless a check
    failed or VIGIL_TEST_KEEP_TMP is set (logs stay there for reading)."""
    global _TMP
    if _TMP is None:
        _TMP = Path(tempfile.mkdtemp(prefix="vigil-test-"))
    return _TMP


def keep_tmp():
    global _KEEP_TMP
    _KEEP_TMP = True


def _cleanup_all():
    for proc in list(_PROCS):
        try:
            proc.kill()
        except Exception:
            pass
    while _CLEANUPS:
        fn = _CLEANUPS.pop()
        try:
            fn()
        except Exception:
            pass
    if _TMP is not None:
        if _KEEP_TMP:
            if _VIGIL_COPY:     # 40 MB that nobody needs for reading logs
                try:
                    os.unlink(_VIGIL_COPY)
                except OSError:
                    pass
            print(f"(logs and temp files kept in {_TMP})", flush=True)
        else:
            shutil.rmtree(_TMP, ignore_errors=True)


atexit.register(_cleanup_all)


def _on_sigterm(signum, frame):
    # Turn SIGTERM into SystemExit so finally blocks and atexit run.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_sigterm)


class WaitTimeout(AssertionError):
    pass


def wait_until(predicate, timeout, what="condition", interval=0.05,
               procs=()):
    """Calls predicate() until it returns something truthy and returns that.

    Raises WaitTimeout after `timeout` seconds, or AssertionError at once if
    one of `procs` (Proc objects that must stay alive) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for p in procs:
            if not p.alive():
                raise AssertionError(
                    f"{p.name} exited (status {p.returncode}) while waiting "
                    f"for {what}; log tail:\n{p.log_tail()}")
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for "
                              f"{what}")
        time.sleep(interval)


class Proc:
    """A subprocess in its own session, output to a log file."""

    def __init__(self, name, argv, env=None, cwd=None, log_path=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path or tmp_root() / f"{name}.log")
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.pid = self.popen.pid
        self.expected_exit = False      # set once the test stops/kills it
        _PROCS.append(self)

    @property
    def returncode(self):
        return self.popen.poll()

    def alive(self):
        return self.popen.poll() is None

    def send_signal(self, sig):
        self.expected_exit = True
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=15.0, sig=signal.SIGTERM):
        """Sends `sig`, waits up to `timeout` s, then SIGKILLs. Returns the
        exit status of a graceful stop, or None if it had to be killed."""
        if not self.alive():
            self._close_log()
            return self.popen.returncode
        self.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
            self._close_log()
            return None
        self._close_log()
        return rc

    def kill(self):
        """SIGKILL the process (and anything in its session) and reap it."""
        self.expected_exit = True
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._close_log()

    def _close_log(self):
        if not self._log.closed:
            self._log.close()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=25):
        return "\n".join(self.log_text().splitlines()[-lines:])


# --------------------------------------------------------------------------
# redis

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis server to test against: private, or VIGIL_TEST_REDIS_URL."""

    def __init__(self, host, port, password=None, proc=None):
        self.host = host
        self.port = port
        self.password = password
        self.proc = proc
        self.external = proc is None

    def url(self, db):
        auth = (":" + urllib.parse.quote(self.password, safe="") + "@"
                if self.password else "")
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    def client(self, db, **kw):
        return redis.Redis(host=self.host, port=self.port, db=db,
                           password=self.password, socket_timeout=10, **kw)

    def fresh_db(self, db):
        """FLUSHDB `db` and return a client on it."""
        r = self.client(db)
        r.flushdb()
        return r

    def stop(self):
        if self.proc is not None:
            try:
                self.client(0).shutdown(nosave=True)
            except Exception:
                pass
            self.proc.stop(timeout=5)


_REDIS = None


def start_redis():
    """The redis server for this script (started once, stopped at exit)."""
    global _REDIS
    if _REDIS is not None:
        return _REDIS
    url = os.environ.get("VIGIL_TEST_REDIS_URL")
    if url:
        u = urllib.parse.urlparse(url)
        if u.scheme != "redis":
            raise RuntimeError(f"VIGIL_TEST_REDIS_URL must be redis://: {url}")
        password = urllib.parse.unquote(u.password) if u.password else None
        server = RedisServer(u.hostname or "127.0.0.1", u.port or 6379,
                             password)
        server.client(0).ping()
        _REDIS = server
        return server
    last_error = None
    for _ in range(5):
        port = free_port()
        proc = Proc(f"redis-{port}",
                    ["redis-server", "--port", str(port), "--bind",
                     "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--databases", "64"],
                    cwd=str(tmp_root()))
        server = RedisServer("127.0.0.1", port, proc=proc)

        def pong():
            try:
                return server.client(0, socket_connect_timeout=0.5).ping()
            except redis.exceptions.ConnectionError:
                return False
        try:
            wait_until(pong, 10, f"redis-server on port {port}",
                       procs=[proc])
        except AssertionError as e:      # port raced away: try another
            last_error = e
            proc.kill()
            continue
        _CLEANUPS.append(server.stop)
        _REDIS = server
        return server
    raise RuntimeError(f"could not start redis-server: {last_error}")


# --------------------------------------------------------------------------
# RabbitMQ (the AMQP checks)

class RabbitServer:
    """A RabbitMQ server to test against: private, or VIGIL_TEST_AMQP_URL.
    There is no FLUSHDB: checks empty the queues they use first, see
    purge_queues()."""

    def __init__(self, host, port, user="guest", password="guest", vhost="/",
                 proc=None, datadir=None):
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.vhost = vhost
        self.proc = proc
        self.datadir = datadir
        self.external = proc is None

    def url(self):
        q = urllib.parse.quote
        return (f"amqp://{q(self.user, safe='')}:{q(self.password, safe='')}"
                f"@{self.host}:{self.port}/{q(self.vhost, safe='')}")

    def connect(self, timeout=5):
        """A py-amqp connection (the caller closes it)."""
        import amqp
        conn = amqp.Connection(host=f"{self.host}:{self.port}",
                               userid=self.user, password=self.password,
                               virtual_host=self.vhost,
                               connect_timeout=timeout)
        conn.connect()
        return conn

    def purge_queues(self, *names):
        """Empties the queues that exist. Unlike deleting them, this keeps
        declarations valid for Celery clients in this process: kombu
        remembers what a pooled connection declared and does not declare
        it again, so a deleted queue would swallow their messages."""
        import amqp
        conn = self.connect()
        try:
            for name in names:
                try:
                    conn.channel().queue_purge(name)
                except amqp.exceptions.NotFound:
                    pass
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def message_count(self, queue):
        """Ready messages in `queue` (0 if it does not exist)."""
        return self.queue_counts(queue)[0]

    def consumer_count(self, queue):
        """Consumers subscribed to `queue` (0 if it does not exist)."""
        return self.queue_counts(queue)[1]

    def queue_counts(self, queue):
        """(ready messages, consumers) of `queue`; (0, 0) if it does not
        exist."""
        import amqp
        conn = self.connect()
        try:
            try:
                _, count, consumers = conn.channel().queue_declare(
                    queue, passive=True)
                return count, consumers
            except amqp.exceptions.NotFound:
                return 0, 0
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def stop(self):
        if self.proc is not None:
            self.proc.stop(timeout=30)
        if self.datadir is not None:
            shutil.rmtree(self.datadir, ignore_errors=True)


_RABBIT = None


def start_rabbitmq():
    """The RabbitMQ server for this script (started once, stopped at exit):
    VIGIL_TEST_AMQP_URL if set, else a private rabbitmq-server on free
    ports (as root it runs as the rabbitmq user, with a data dir it owns).
    Starting takes about 5-10 s."""
    global _RABBIT
    if _RABBIT is not None:
        return _RABBIT
    url = os.environ.get("VIGIL_TEST_AMQP_URL")
    if url:
        u = urllib.parse.urlparse(url)
        if u.scheme != "amqp":
            raise RuntimeError(f"VIGIL_TEST_AMQP_URL must be amqp://: {url}")
        vhost = urllib.parse.unquote(u.path[1:]) if len(u.path) > 1 else "/"
        server = RabbitServer(u.hostname or "127.0.0.1", u.port or 5672,
                              urllib.parse.unquote(u.username or "guest"),
                              urllib.parse.unquote(u.password or "guest"),
                              vhost)
        server.connect().close()
        _RABBIT = server
        return server
    datadir = Path(tempfile.mkdtemp(prefix="vigil-rabbit-"))
    port, dist_port = free_port(), free_port()
    node = f"vigiltest{os.getpid()}@localhost"
    (datadir / "plugins").write_text("[].\n")
    (datadir / "env.conf").write_text("")
    env = dict(os.environ)
    env.update({
        "HOME": str(datadir),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_MNESIA_BASE": str(datadir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(datadir / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(datadir / "plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(datadir / "env.conf"),
        "RABBITMQ_CONFIG_FILE": str(datadir / "rabbitmq"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
            "-kernel inet_dist_use_interface {127,0,0,1}",
    })
    argv = ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
    if os.geteuid() == 0:
        shutil.chown(datadir, "rabbitmq", "rabbitmq")
        for f in datadir.iterdir():
            shutil.chown(f, "rabbitmq", "rabbitmq")
        argv = ["setpriv", "--reuid=rabbitmq", "--regid=rabbitmq",
                "--init-groups"] + argv
    proc = Proc(f"rabbitmq-{port}", argv, env=env, cwd=str(datadir))
    server = RabbitServer("127.0.0.1", port, proc=proc, datadir=datadir)

    def up():
        try:
            server.connect(timeout=1).close()
            return True
        except Exception:
            return False
    try:
        wait_until(up, 60, f"rabbitmq-server on port {port}", interval=0.25,
                   procs=[proc])
    except AssertionError:
        proc.kill()
        shutil.rmtree(datadir, ignore_errors=True)
        raise
    _CLEANUPS.append(server.stop)
    _RABBIT = server
    return server


# --------------------------------------------------------------------------
# Celery

CELERY_CONF = dict(
    task_serializer="msgpack",
    result_serializer="msgpack",
    accept_content=["msgpack", "json"],
    result_accept_content=["msgpack", "json"],
    broker_connection_max_retries=3,
    redis_socket_timeout=15,
    redis_socket_connect_timeout=5,
)


def make_celery_app(broker_url, backend_url, name="vigil_interop", **conf):
    """A Celery app (client side) configured like the tests' Celery workers."""
    from celery import Celery
    app = Celery(name, broker=broker_url, backend=backend_url,
                 set_as_current=False)
    app.conf.update(CELERY_CONF)
    app.conf.update(conf)
    return app


# Prepended to every tasks module given to start_celery_worker(): defines
# `app` from the environment the harness passes, and touches a ready file
# when the worker has started consuming.
CELERY_TASKS_PRELUDE = '''\
import os
from celery import Celery
from celery.signals import worker_ready

app = Celery("vigil_interop_tasks",
             broker=os.environ["VIGIL_TEST_BROKER_URL"],
             backend=os.environ["VIGIL_TEST_BACKEND_URL"])
app.conf.update({conf!r})


@worker_ready.connect
def _vigil_test_ready(**_kw):
    open(os.environ["VIGIL_TEST_READY_FILE"], "w").close()

'''


# --------------------------------------------------------------------------
# kombu envelopes, exactly as Celery 5.2.6 + kombu 5.2.4 build them (§2.2)

_ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"
_REPLY_TO = str(uuid.uuid3(uuid.NAMESPACE_OID, f"vigil-test-{os.getpid()}"))


def _saferepr(x):
    from celery.utils.saferepr import saferepr
    return saferepr(x, 1024)


def celery_envelope(task, args=(), kwargs=None, queue="celery", task_id=None,
                    retries=0):
    """Returns (task_id, json_text) of a protocol-v2 msgpack message for the
    Redis transport, built as Celery's send_task + kombu's Redis channel do:
    body base64(msgpack([args, kwargs, embed])), Celery's header set and
    order, properties with delivery_info and delivery_tag."""
    task_id = task_id or str(uuid.uuid4())
    args = tuple(args)
    kwargs = dict(kwargs or {})
    body = msgpack.packb(
        [list(args), kwargs,
         {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
        use_bin_type=True)
    envelope = {
        "body": base64.b64encode(body).decode("ascii"),
        "content-encoding": "binary",
        "content-type": "application/x-msgpack",
        "headers": {
            "lang": "py", "task": task, "id": task_id, "shadow": None,
            "eta": None, "expires": None, "group": None, "group_index": None,
            "retries": retries, "timelimit": [None, None],
            "root_id": task_id, "parent_id": None,
            "argsrepr": _saferepr(args), "kwargsrepr": _saferepr(kwargs),
            "origin": _ORIGIN, "ignore_result": False,
        },
        "properties": {
            "correlation_id": task_id, "reply_to": _REPLY_TO,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0, "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return task_id, json.dumps(envelope)


def declare_queue(r, queue):
    """What Celery's producer does once per queue: the kombu binding."""
    r.sadd(f"_kombu.binding.{queue}", f"{queue}\x06\x16\x06\x16{queue}")


def envelope_ids(raw_values):
    """Task ids (headers.id) of JSON envelopes, e.g. LRANGE output, or the
    `unacked` hash's `[envelope, exchange, routing_key]` values."""
    out = []
    for raw in raw_values:
        x = json.loads(raw)
        if isinstance(x, list):
            x = x[0]
        out.append(x["headers"]["id"])
    return out


def result_doc(r, task_id):
    """The decoded celery-task-meta document for task_id, or None."""
    raw = r.get(f"celery-task-meta-{task_id}")
    return None if raw is None else msgpack.unpackb(raw, raw=False)


def _drop_result_state(app):
    """Forgets the results a Celery client app cached and closes its result
    pubsub, so that no AsyncResult.__del__ talks to redis at interpreter
    exit (after the test's redis-server is gone)."""
    try:
        backend = app.backend
    except Exception:
        return
    for name in ("_cache", "_pending_messages"):
        try:
            getattr(backend, name).clear()
        except Exception:
            pass
    try:
        for mapping in backend._pending_results:
            mapping.clear()
    except Exception:
        pass
    consumer = getattr(backend, "result_consumer", None)
    if consumer is not None:
        try:
            consumer.subscribed_to.clear()
            consumer.stop()
            consumer._pubsub = None
        except Exception:
            pass


# --------------------------------------------------------------------------
# per-check environment

class CheckEnv:
    """What one check uses: its own broker db and result db on the test
    redis server, a temp dir, and the processes and Celery apps it started
    (all stopped by close())."""

    def __init__(self, name, broker_db, result_db):
        self.name = name
        self.redis = start_redis()
        self.broker_db = broker_db
        self.result_db = result_db
        self.broker = self.redis.fresh_db(broker_db)
        self.results = self.redis.fresh_db(result_db)
        self.broker_url = self.redis.url(broker_db)
        self.backend_url = self.redis.url(result_db)
        self.dir = tmp_root() / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs = []
        self.vigil_workers = []
        self.apps = []
        self._n = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(check_exit=exc_type is None)
        return False

    # -- vigil

    def vigil_env(self, **extra):
        env = dict(os.environ)
        env.update({
            "VIGIL_BROKER_URL": self.broker_url,
            "VIGIL_TASKS_RESULT_BACKEND": self.backend_url,
            "VIGIL_LOG_LEVEL": "warning",
            # Many nodes on one host: each management endpoint on a port
            # of its own (the bound one is in its membership entry).
            "VIGIL_INSPECT_BIND": "127.0.0.1:0",
        })
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def _name(self, base):
        self._n += 1
        return f"{base}-{self._n}"

    def start_vigil_worker(self, queues="celery", concurrency=2, **env):
        """`vigil run worker -Q queues -c N`; env: extra VIGIL_* variables."""
        name = self._name("vigil-worker")
        p = Proc(name, [vigil_bin(), "run", "worker", "-Q", queues,
                        "-c", str(concurrency)],
                 env=self.vigil_env(**env), cwd=str(self.dir),
                 log_path=self.dir / f"{name}.log")
        self.procs.append(p)
        self.vigil_workers.append(p)
        return p

    def vigil(self, *args, timeout=30, check=True, **env):
        """Runs the vigil CLI against this check's broker; returns the
        CompletedProcess (stdout/stderr as text)."""
        cp = subprocess.run([vigil_bin(), *args], env=self.vigil_env(**env),
                            cwd=str(self.dir), capture_output=True,
                            text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
        if check and cp.returncode != 0:
            raise AssertionError(
                f"vigil {' '.join(args)} exited {cp.returncode}: "
                f"{cp.stderr.strip() or cp.stdout.strip()}")
        return cp

    def send_task(self, name, args=None, kwargs=None, queue=None, **env):
        argv = ["send-task", name]
        if args is not None:
            argv += ["--args", args if isinstance(args, str)
                     else json.dumps(args)]
        if kwargs is not None:
            argv += ["--kwargs", kwargs if isinstance(kwargs, str)
                     else json.dumps(kwargs)]
        if queue:
            argv += ["--queue", queue]
        out = self.vigil(*argv, **env).stdout.strip()
        task_id = out.splitlines()[-1].strip() if out else ""
        try:
            uuid.UUID(task_id)
        except ValueError:
            raise AssertionError(f"vigil send-task printed {out!r}, "
                                 "not a task id")
        return task_id

    def dead_letters(self):
        out = self.vigil("dead-letters", "list", "--json").stdout
        try:
            return json.loads(out)
        except ValueError:
            raise AssertionError(
                f"vigil dead-letters list --json printed non-JSON: {out!r}")

    # -- Celery

    def celery_app(self, **conf):
        app = make_celery_app(self.broker_url, self.backend_url,
                              name=f"client_{self.name}", **conf)
        self.apps.append(app)
        return app

    def start_celery_worker(self, tasks_source, queue, module="interop_tasks",
                            ready_timeout=30, env=None, pool="solo",
                            concurrency=None, **conf):
        """Writes `tasks_source` (after a prelude defining `app`) to
        <dir>/<module>.py and starts a solo-pool Celery worker on `queue`;
        returns once it is consuming. `conf`: Celery settings on top of
        CELERY_CONF; `env`: extra environment variables; `pool` and
        `concurrency`: the worker's pool (default solo). Task code may read
        os.environ["VIGIL_TEST_DIR"] (the check's temp dir)."""
        workdir = self.dir / self._name("celery")
        workdir.mkdir()
        ready = workdir / "ready"
        all_conf = dict(CELERY_CONF)
        all_conf.update(conf)
        (workdir / f"{module}.py").write_text(
            CELERY_TASKS_PRELUDE.format(conf=all_conf)
            + textwrap.dedent(tasks_source))
        extra_env = env or {}
        env = dict(os.environ)
        env.update(extra_env)
        env.update({
            "VIGIL_TEST_BROKER_URL": self.broker_url,
            "VIGIL_TEST_BACKEND_URL": self.backend_url,
            "VIGIL_TEST_READY_FILE": str(ready),
            "VIGIL_TEST_DIR": str(self.dir),
            "PYTHONPATH": str(workdir),
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        p = Proc(workdir.name,
                 [PYTHON, "-m", "celery", "-A", module, "worker",
                  f"--pool={pool}", "--without-mingle", "--without-gossip",
                  "--without-heartbeat", "-Q", queue, "--loglevel=WARNING",
                  "-n", f"{workdir.name}@%h"]
                 + ([f"--concurrency={concurrency}"] if concurrency else []),
                 env=env, cwd=str(workdir), log_path=workdir / "worker.log")
        self.procs.append(p)
        wait_until(ready.exists, ready_timeout, "the Celery worker to start",
                   procs=[p])
        return p

    def check_alive(self):
        """Raises if a process this check started has exited on its own."""
        for p in self.procs:
            if not p.expected_exit and not p.alive():
                raise AssertionError(
                    f"{p.name} exited unexpectedly (status {p.returncode}); "
                    f"log tail:\n{p.log_tail()}")

    # -- teardown

    def close(self, check_exit=True):
        """Stops what this check started. With check_exit, a vigil worker
        that does not exit 0 on SIGTERM fails the check."""
        problems = []
        # Let AsyncResults (which sit in reference cycles) unsubscribe now,
        # while redis still runs, not at interpreter exit.
        gc.collect()
        for app in self.apps:
            _drop_result_state(app)
            try:
                app.close()
            except Exception:
                pass
        self.apps.clear()
        gc.collect()
        for p in reversed(self.procs):
            if not p.alive():
                if check_exit and p in self.vigil_workers and \
                        not p.expected_exit:
                    problems.append(f"{p.name} had exited on its own with "
                                    f"status {p.returncode}:\n"
                                    f"{p.log_tail()}")
                continue
            rc = p.stop(timeout=15)
            if check_exit and p in self.vigil_workers and rc != 0:
                problems.append(
                    f"{p.name} did not exit 0 on SIGTERM (status {rc}"
                    f"{', killed after 15 s' if rc is None else ''}):\n"
                    f"{p.log_tail()}")
        if problems:
            raise AssertionError("; ".join(problems))


# --------------------------------------------------------------------------
# plain-script runner

class Skipped(Exception):
    """Raised by a check that needs something the run does not have."""


def skip(reason):
    """Ends the running check as skipped (a SKIP line, which
    tests/run_all.py counts, and fails in CI): for a check that needs a
    server the run did not start."""
    raise Skipped(reason)


def run_checks(checks):
    """checks: list of (name, fn) or (name, fn, known_bug). Prints one line
    per check: PASS, FAIL, SKIP (the check called skip()), or for a check marked with a known vigil bug
    XFAIL (fails as expected; not counted unless VIGIL_TEST_STRICT=1) or
    XPASS (passes: the bug looks fixed, remove the marker). Returns the
    exit status: 1 if any check failed."""
    strict = bool(os.environ.get("VIGIL_TEST_STRICT"))
    failed = xfailed = skipped = 0
    t_all = time.monotonic()
    for check in checks:
        name, fn = check[0], check[1]
        known_bug = check[2] if len(check) > 2 else None
        t0 = time.monotonic()
        try:
            fn()
        except KeyboardInterrupt:
            raise
        except Skipped as e:
            skipped += 1
            print(f"SKIP {name}: {e}", flush=True)
            continue
        except BaseException as e:          # noqa: BLE001 - report anything
            if isinstance(e, SystemExit) and e.code not in (None, 0):
                print(f"FAIL {name}: interrupted", flush=True)
                raise
            reason = str(e) or type(e).__name__
            if not isinstance(e, AssertionError):
                reason = f"{type(e).__name__}: {reason}\n" + \
                    traceback.format_exc()
            took = f"({time.monotonic() - t0:.1f} s)"
            if known_bug and not strict:
                xfailed += 1
                print(f"XFAIL {name}: {reason} {took}\n"
                      f"      known vigil bug: {known_bug}", flush=True)
            else:
                failed += 1
                keep_tmp()
                print(f"FAIL {name}: {reason} {took}", flush=True)
            continue
        took = f"({time.monotonic() - t0:.1f} s)"
        if known_bug:
            print(f"XPASS {name} {took}: the known bug ({known_bug}) looks "
                  "fixed; remove the marker", flush=True)
        else:
            print(f"PASS {name} {took}", flush=True)
    total = len(checks)
    extra = f", {xfailed} known bug(s)" if xfailed else ""
    extra += f", {skipped} skipped" if skipped else ""
    print(f"{total - failed - xfailed - skipped}/{total} checks passed{extra}, "
          f"{failed} failed, in {time.monotonic() - t_all:.1f} s", flush=True)
    return 1 if failed else 0


class CheckList:
    """The checks of one test file, registered with `@checks.add` (or
    `@checks.add(known_bug="...")`), each run in the environment that
    `make_env(name, index)` opens (e.g. a CheckEnv on its own broker db);
    at most `limit` of them when the environments are numbered."""

    def __init__(self, make_env, limit=None):
        self.items = []
        self._make_env = make_env
        self._limit = limit

    def add(self, fn=None, known_bug=None):
        if fn is None:
            return lambda f: self.add(f, known_bug)
        index = len(self.items)
        assert self._limit is None or index < self._limit, \
            "out of db numbers"
        name = fn.__name__.removeprefix("check_")

        def run():
            with self._make_env(name, index) as env:
                fn(env)
        self.items.append((name, run, known_bug))
        return fn

    def selected(self, argv):
        """The checks argv names (a check's name, or its first word such as
        its letter); all of them when argv is empty; None, after listing the
        names, when argv matches none."""
        if not argv:
            return self.items
        wanted = set(argv)
        checks = [c for c in self.items
                  if c[0] in wanted or c[0].split("_")[0] in wanted]
        if not checks:
            print(f"no check matches {argv}; checks: "
                  f"{[c[0] for c in self.items]}")
            return None
        return checks


def main_of(checks, argv, rabbitmq=False):
    """A check file's main: runs the checks argv names (see
    CheckList.selected) against the test redis-server (and rabbitmq-server),
    after making sure the vigil binary is there; returns the exit status."""
    selected = checks.selected(argv)
    if selected is None:
        return 2
    vigil_bin()     # fail fast if the binary is missing
    start_redis()
    if rabbitmq:
        start_rabbitmq()
    return run_checks(selected)


def db_checks(broker_db_base, result_db, limit=None):
    """A CheckList whose checks each get a CheckEnv on broker db
    `broker_db_base + index`, results on `result_db`."""
    return CheckList(
        lambda name, index: CheckEnv(name, broker_db_base + index, result_db),
        limit)


def fmt(x):
    return pprint.pformat(x, width=100)


def same(a, b):
    """Equality that also compares types (1 != 1.0, True != 1, list/tuple
    alike): what a cross-language round trip must preserve."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b
