#!/usr/bin/python3
"""An event answered 200 is never lost: kill -9 of the node right after a
burst, and every answered event is in the nodestore after the restart.

kill_after_burst: 8 keep-alive clients post 200+ events to a node (SQLite
  nodestore in its data dir); while they still post, the node gets SIGKILL.
  A second node started on the same data dir serves every event that was
  answered 200, through the read API, and counts it once in its group.

Run: /usr/bin/python3 tests/faults/test_ingest_kill.py (VIGIL_BIN).
"""

import http.client
import json
import os
import signal
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "interop"))

from harness import run_checks, wait_until  # noqa: E402
from ingest_common import KEY_A, Node  # noqa: E402

AUTH = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={KEY_A}",
        "Content-Type": "application/json"}


def poster(port, answered, stop, errors):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        event_id = uuid.uuid4().hex
        body = json.dumps({"event_id": event_id, "message": "burst",
                           "fingerprint": ["burst"],
                           "extra": {"pad": "x" * 1500}})
        try:
            conn.request("POST", "/api/1/store/", body, AUTH)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            return  # the node is gone
        if resp.status == 200:
            answered.append(json.loads(data)["id"])
        else:
            errors.append((resp.status, data[:200]))


def check_kill_after_burst():
    first = Node("kill-node-1").start()
    answered, errors = [], []
    stop = threading.Event()
    threads = [threading.Thread(target=poster,
                                args=(first.port, answered, stop, errors))
               for _ in range(8)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(answered) >= 200, 60, "200 answered events")
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.expected_exit = True
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    first.proc.wait(10)
    assert not errors, f"non-200 answers before the kill: {errors[:5]}"
    ids = list(answered)
    second = Node("kill-node-2", data_dir=first.data_dir).start()
    try:
        missing = [i for i in ids if second.event(i)[0] != 200]
        assert not missing, (f"{len(missing)} of {len(ids)} answered events "
                             f"lost, e.g. {missing[:3]}")
        groups = [g for g in second.issues() if g["title"] == "burst"]
        assert len(groups) == 1, groups
        seen = groups[0]["times_seen"]
        # Events stored but not yet answered when the kill landed count too.
        assert seen >= len(ids), (seen, len(ids))
        print(f"  {len(ids)} answered before the kill, all readable after "
              f"the restart; group counts {seen}", flush=True)
    finally:
        rc = second.stop()
        assert rc == 0, f"second node exit status {rc}"


if __name__ == "__main__":
    sys.exit(run_checks([("kill_after_burst", check_kill_after_burst)]))
