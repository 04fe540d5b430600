#!/usr/bin/python3
"""The write buffer at scale, with real processes and a real redis-server.

million_increments: a node stores one event (its group is the row), then
  four `vigil buffer incr` processes add 250,000 increments each of that
  group's times_seen (and last_seen) into one Redis, at once; then
  `vigil buffer flush` applies them. The group's times_seen in SQLite is
  exactly what it was plus 1,000,000, last_seen moved to the burst, and
  Redis ran far fewer commands than there were increments (INFO
  commandstats: HINCRBY calls and all calls, each under 1 % of the
  increments; the figures are printed).
flush_needs_shared_store: `vigil buffer flush|stats|incr` with the memory
  store (which lives inside a node) exit 2 and say what to configure.

The redis-server is this script's own (not VIGIL_TEST_REDIS_URL): INFO
commandstats counts every client of the server.

Run: /usr/bin/python3 tests/faults/test_buffer_scale.py (VIGIL_BIN).
"""

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "interop"))

import redis  # noqa: E402

from harness import (Proc, RedisServer, free_port, run_checks,  # noqa: E402
                     tmp_root, vigil_bin, wait_until)
from ingest_common import Node, wait_for_event  # noqa: E402

PROCESSES = 4
PER_PROCESS = 250_000
TOTAL = PROCESSES * PER_PROCESS

_REDIS = None


def private_redis():
    """A redis-server for this script alone (stopped at exit)."""
    global _REDIS
    if _REDIS is None:
        port = free_port()
        proc = Proc(f"redis-{port}",
                    ["redis-server", "--port", str(port), "--bind",
                     "127.0.0.1", "--save", "", "--appendonly", "no"],
                    cwd=str(tmp_root()))
        server = RedisServer("127.0.0.1", port, proc=proc)

        def pong():
            try:
                return server.client(0, socket_connect_timeout=0.5).ping()
            except redis.exceptions.ConnectionError:
                return False
        wait_until(pong, 10, f"redis-server on port {port}", procs=[proc])
        _REDIS = server
    return _REDIS


def vigil(config, *args, timeout=60):
    """Runs `vigil --config config args...`; returns (code, out, err)."""
    p = subprocess.run([vigil_bin(), "--config", str(config), *args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, cwd=str(tmp_root()))
    return p.returncode, p.stdout, p.stderr


def commandstats(r):
    """{command: calls} from INFO commandstats."""
    out = {}
    for name, fields in r.info("commandstats").items():
        out[name.removeprefix("cmdstat_")] = int(fields["calls"])
    return out


def group_row(db_path):
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT id, times_seen, last_seen FROM groups"
                          " ORDER BY id").fetchall()
    assert len(rows) == 1, f"one group expected, got {rows}"
    return rows[0]


def million_increments():
    server = private_redis()
    r = server.client(0)
    r.flushall()
    node = Node("scale-node", extra=(
        "buffer.backend: redis\n"
        f'redis: {{clusters: {{default: {{hosts: ["{server.url(0)}"]}}}}}}\n'))
    config = node.config
    node.start()
    try:
        event_id = uuid.uuid4().hex
        status, _, body = node.store({"event_id": event_id,
                                      "message": "counted a million times",
                                      "fingerprint": ["scale"]})
        assert status == 200, f"store: {status} {body[:300]}"
        wait_for_event(node, event_id)
    finally:
        assert node.stop() == 0, "the node did not stop cleanly"
    db_path = node.data_dir / "vigil.db"
    # Whatever the node's own counting left in the store goes to SQL first,
    # so that the row's count before the burst is known.
    code, out, err = vigil(config, "buffer", "flush")
    assert code == 0, f"first flush: {code} {out} {err}"
    group, seen_before, _ = group_row(db_path)

    r.config_resetstat()
    started = time.time()
    procs = [subprocess.Popen(
        [vigil_bin(), "--config", str(config), "buffer", "incr",
         "--filter", f"id={group}", "--column", "times_seen",
         "--extra", "last_seen=now", "--count", str(PER_PROCESS),
         "--batch", "2000", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=str(tmp_root())) for _ in range(PROCESSES)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"buffer incr: {p.returncode} {out} {err}"
        results.append(json.loads(out))
    burst_secs = time.time() - started
    assert all(x["accepted"] == PER_PROCESS for x in results), results
    stats = commandstats(r)
    hincrby = stats.get("hincrby", 0)
    total = sum(calls for name, calls in stats.items()
                if name not in ("config|resetstat", "config", "info"))
    writes = sum(int(x["store_writes"]) for x in results)
    print(f"  {TOTAL:,} increments from {PROCESSES} processes in "
          f"{burst_secs:.1f} s; {writes} store writes; Redis ran "
          f"{hincrby} HINCRBY ({hincrby / TOTAL:.3%} of the increments) and "
          f"{total} commands in all ({total / TOTAL:.3%}): "
          f"{dict(sorted(stats.items()))}", flush=True)

    code, out, err = vigil(config, "buffer", "stats", "--json")
    assert code == 0, f"stats: {code} {out} {err}"
    assert json.loads(out)["pending"] == 1, f"one pending row: {out}"
    code, out, err = vigil(config, "buffer", "flush", "--json")
    assert code == 0, f"flush: {code} {out} {err}"
    flushed = json.loads(out)
    print(f"  flush: {flushed}", flush=True)
    _, seen_after, last_seen = group_row(db_path)
    assert seen_after == seen_before + TOTAL, \
        f"times_seen {seen_after}, expected {seen_before} + {TOTAL}"
    assert flushed["increments"] == TOTAL, flushed
    assert flushed["rows"] == 1, flushed
    assert last_seen >= started - 1, \
        f"last_seen {last_seen} is before the burst ({started})"
    assert hincrby > 0, "no HINCRBY ran: the increments did not reach Redis"
    assert hincrby < TOTAL // 100, f"{hincrby} HINCRBY for {TOTAL} increments"
    assert total < TOTAL // 100, f"{total} commands for {TOTAL} increments"
    code, out, err = vigil(config, "buffer", "stats", "--json")
    assert code == 0 and json.loads(out)["pending"] == 0, \
        f"pending after the flush: {out} {err}"


def flush_needs_shared_store():
    config = tmp_root() / "memory.yml"
    config.write_text(f'node.data-dir: "{tmp_root() / "memory-data"}"\n')
    for args in (["flush"], ["stats"], ["incr", "--filter", "id=1"]):
        code, out, err = vigil(config, "buffer", *args)
        assert code == 2, f"buffer {args}: exit {code}, {out} {err}"
        assert "buffer.backend" in err and "redis" in err, err


if __name__ == "__main__":
    sys.exit(run_checks([
        ("million_increments", million_increments),
        ("flush_needs_shared_store", flush_needs_shared_store),
    ]))
