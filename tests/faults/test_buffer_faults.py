#!/usr/bin/python3
"""Group counters through the write buffer lose nothing and count nothing
twice (buffer.ingest-counters: buffer, docs/BUFFER.md).

kill_after_burst_redis: 8 keep-alive clients post events of one issue to a
  node whose buffer and TSDB are on Redis; while they still post, the node
  gets SIGKILL. A second node on the same data dir and Redis flushes the
  buffer (flush-buffers every second): the issue's times_seen, read through
  the read API, reaches the number of events answered 200 (their
  increments were in Redis before the answer) and never passes the number
  of events stored (an event stored but not answered may or may not count).

sql_down_during_flush: a node on a private PostgreSQL, its buffer on Redis
  and its flush started by hand (`vigil send-task ...process_pending`).
  Events answered 200, then (1) the apply fails inside its transaction (the
  groups table renamed away): the taken row waits in Redis as a take, the
  process_incr task's own retry applies it once the table is back; (2) more
  events, PostgreSQL stops and a flush runs: it fails (the node logs it),
  the increments wait in Redis; PostgreSQL starts again, a flush runs. Each
  time, once the buffer holds nothing any more (no row, no take left to
  apply), times_seen is exactly the number of events answered.

Run: /usr/bin/python3 tests/faults/test_buffer_faults.py (VIGIL_BIN).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "interop"))

from harness import (Proc, free_port, run_checks, skip, start_redis,  # noqa: E402
                     vigil_bin, wait_until)
from ingest_common import KEY_A, Node, burst_then_kill  # noqa: E402

AUTH = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={KEY_A}",
        "Content-Type": "application/json"}
PG_BIN = "/usr/lib/postgresql/15/bin"


def buffered_config(redis_server, db, extra=""):
    """A node whose buffer, TSDB (and, with `extra`, more) are on Redis
    database `db`, counting its groups through the buffer."""
    return (
        "redis.clusters:\n"
        f"  default: {{hosts: [\"{redis_server.url(db)}\"]}}\n"
        "buffer.backend: redis\n"
        "buffer.ingest-counters: buffer\n"
        "tsdb.backend: redis\n" + extra)


def event_body(event_id, title):
    return json.dumps({"event_id": event_id, "message": title,
                       "fingerprint": [title],
                       "user": {"id": event_id[:8]},
                       "extra": {"pad": "x" * 1500}})


def seen_or_none(node, title):
    """times_seen, or None while the read API fails (its database
    connection is opened again after PostgreSQL restarted)."""
    status, body = node.api("projects/acme/backend/issues/")
    if status != 200:
        return None
    groups = [g for g in body if g["title"] == title]
    return groups[0]["times_seen"] if groups else 0


def buffer_empty(r):
    """Nothing pending, no take unapplied, no row left in the buffer."""
    return (r.zcard("b:p") == 0 and r.zcard("b:t") == 0
            and not r.keys("b:k:*"))


def check_kill_after_burst_redis():
    redis_server = start_redis()
    r = redis_server.fresh_db(21)
    extra = buffered_config(redis_server, 21, "buffer.flush-interval: 1\n")
    first = Node("buffer-kill-1", extra=extra).start()
    sent = []
    ids = burst_then_kill(first, 300, lambda i: event_body(i, "burst"), sent)
    second = Node("buffer-kill-2", data_dir=first.data_dir,
                  extra=extra).start()
    try:
        missing = [i for i in ids if second.event(i)[0] != 200]
        assert not missing, (f"{len(missing)} of {len(ids)} answered events "
                             f"lost, e.g. {missing[:3]}")
        stored = sum(1 for i in set(sent) if second.event(i)[0] == 200)

        def flushed():
            seen = seen_or_none(second, "burst")
            return buffer_empty(r) and seen is not None and seen >= len(ids)
        try:
            wait_until(flushed, 90, "the buffer flushed into the issue")
        except AssertionError:
            raise AssertionError(
                f"times_seen {seen_or_none(second, 'burst')} after the "
                "flush, "
                f"{len(ids)} events answered; buffer: b:p "
                f"{r.zcard('b:p')}, b:t {r.zcard('b:t')}, rows "
                f"{len(r.keys('b:k:*'))}")
        seen = seen_or_none(second, "burst")
        assert len(ids) <= seen <= stored, (len(ids), seen, stored)
        # The TSDB got the batches too (project 1's series in Redis).
        assert r.keys("ts:1:*"), "no project counts in the TSDB"
        print(f"  {len(ids)} answered, {stored} stored before the kill; "
              f"times_seen {seen} after the restart's flush", flush=True)
    finally:
        rc = second.stop()
        assert rc == 0, f"second node exit status {rc}"


class Postgres:
    """A private PostgreSQL that a check stops and starts again on the
    same data directory and port (as root it runs as the postgres user)."""

    def __init__(self):
        self.port = free_port()
        # In /tmp itself: the postgres user cannot enter the run's tmp
        # root (root's, mode 700).
        self.dir = tempfile.mkdtemp(prefix="vigil-pg-faults-")
        self.data = os.path.join(self.dir, "data")
        self.prefix = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.prefix = ["setpriv", "--reuid=postgres", "--regid=postgres",
                           "--init-groups"]
        subprocess.run(self.prefix + [PG_BIN + "/initdb", "-D", self.data,
                                      "-U", "vigil", "--auth=trust",
                                      "--no-sync", "-E", "UTF8"],
                       cwd=self.dir, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT, check=True)
        self.proc = None
        self.starts = 0

    @property
    def url(self):
        return f"postgresql://vigil@127.0.0.1:{self.port}/vigil"

    def ready(self):
        return subprocess.run(
            [PG_BIN + "/pg_isready", "-q", "-h", "127.0.0.1", "-p",
             str(self.port)]).returncode == 0

    def start(self):
        self.starts += 1
        self.proc = Proc(f"postgres-{self.starts}", self.prefix + [
            PG_BIN + "/postgres", "-D", self.data, "-p", str(self.port),
            "-k", self.dir, "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off"], cwd=self.dir)
        wait_until(self.ready, 30, "postgres accepting connections",
                   procs=[self.proc])
        if self.starts == 1:
            subprocess.run([PG_BIN + "/createdb", "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", "vigil", "vigil"],
                           check=True)
        return self

    def stop(self):
        # SIGINT: PostgreSQL's fast shutdown (open connections are cut).
        if self.proc is not None and self.proc.alive():
            self.proc.stop(timeout=30, sig=signal.SIGINT)

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def send_task(node, name):
    subprocess.run([vigil_bin(), "--config", str(node.config), "send-task",
                    name], check=True, timeout=30, stdout=subprocess.DEVNULL)


def psql(pg, sql):
    subprocess.run([PG_BIN + "/psql", "-q", "-h", "127.0.0.1", "-p",
                    str(pg.port), "-U", "vigil", "-d", "vigil", "-v",
                    "ON_ERROR_STOP=1", "-c", sql], check=True, timeout=30,
                   stdout=subprocess.DEVNULL)


def sql_seen(pg, title):
    """times_seen as the groups table holds it (the read API adds what the
    buffer holds)."""
    out = subprocess.run([PG_BIN + "/psql", "-qtA", "-h", "127.0.0.1", "-p",
                          str(pg.port), "-U", "vigil", "-d", "vigil", "-c",
                          "SELECT times_seen FROM groups WHERE title = '"
                          + title + "'"], check=True, timeout=30,
                         capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def post_events(node, title, n):
    """Posts `n` events of one issue, one at a time; all must answer 200."""
    out = []
    for _ in range(n):
        event_id = uuid.uuid4().hex
        status, _, data = node.request("POST", "/api/1/store/",
                                       event_body(event_id, title), AUTH)
        assert status == 200, (status, data[:300])
        out.append(event_id)
    return out


def wait_applied(node, r, title, want, what):
    def applied():
        seen = seen_or_none(node, title)
        return buffer_empty(r) and seen is not None and seen >= want
    try:
        wait_until(applied, 90, what)
    except AssertionError:
        raise AssertionError(
            f"times_seen {seen_or_none(node, title)}, {want} answered; "
            f"buffer: b:p {r.zcard('b:p')}, b:t {r.zcard('b:t')}, rows "
            f"{len(r.keys('b:k:*'))}")
    seen = seen_or_none(node, title)
    # Nothing is left in the buffer to apply: the count is final.
    assert seen == want, (seen, want)
    return seen


def check_sql_down_during_flush():
    if not os.path.exists(PG_BIN + "/postgres"):
        skip("PostgreSQL 15 is not installed")
    redis_server = start_redis()
    r = redis_server.fresh_db(22)
    redis_server.fresh_db(23)
    pg = Postgres().start()
    node = None
    try:
        # No cron flush: the test decides when a flush runs.
        extra = buffered_config(redis_server, 22, (
            f'db.url: "{pg.url}"\n'
            f'broker.url: "{redis_server.url(23)}"\n'
            "buffer.flush-interval: 0\n"))
        node = Node("buffer-sql-down", extra=extra).start()
        answered = post_events(node, "sqldown", 30)
        # The first event created the issue; the others wait in Redis (the
        # read API counts them already, SQL not yet).
        assert sql_seen(pg, "sqldown") == 1
        assert seen_or_none(node, "sqldown") == len(answered)
        assert r.zcard("b:p") == 1, r.zrange("b:p", 0, -1)

        # 1. The apply fails inside its transaction (the table is gone for
        # a while): the row was taken, its take waits in Redis, and the
        # process_incr retries it by itself (every 10 s).
        psql(pg, "ALTER TABLE groups RENAME TO groups_away")
        send_task(node, "sentry.tasks.process_buffer.process_pending")
        wait_until(lambda: r.zcard("b:t") >= 1 and "buffer flush: applying"
                   in node.proc.log_text(), 60,
                   "a take waiting after its failed apply")
        assert r.zcard("b:p") == 0
        psql(pg, "ALTER TABLE groups_away RENAME TO groups")
        wait_applied(node, r, "sqldown", len(answered),
                     "the take applied by the task's retry")

        # 2. The database is down when the flush starts: nothing is taken,
        # the increments wait in their row until a flush finds it back.
        answered += post_events(node, "sqldown", 25)
        assert r.zcard("b:p") == 1
        logged = len(node.proc.log_text())
        pg.stop()
        send_task(node, "sentry.tasks.process_buffer.process_pending")

        def flush_failed():
            # The flush's connection may be open (the server closed it) or
            # opened anew (refused): either says the database is down.
            # The flush's own warning is logged once a minute per worker
            # thread; the dead-lettered process_pending names it too.
            text = node.proc.log_text()[logged:]
            return ("buffer flush" in text or "process_pending" in text) and (
                "cannot connect to " + pg.url in text
                or "closed the connection" in text)
        wait_until(flush_failed, 60,
                   "the flush failing on the stopped database")
        assert r.zcard("b:p") + r.zcard("b:t") >= 1, "the increments are gone"
        pg.start()
        send_task(node, "sentry.tasks.process_buffer.process_pending")
        seen = wait_applied(node, r, "sqldown", len(answered),
                            "the waiting increments applied")
        print(f"  {len(answered)} answered; a failed apply and a stopped "
              f"database delayed the flush, times_seen is {seen}",
              flush=True)
    finally:
        if node is not None:
            rc = node.stop()
            assert rc == 0, f"node exit status {rc}\n{node.proc.log_tail()}"
        pg.remove()


if __name__ == "__main__":
    sys.exit(run_checks([
        ("kill_after_burst_redis", check_kill_after_burst_redis),
        ("sql_down_during_flush", check_sql_down_during_flush)]))
