#!/usr/bin/python3
"""A digest survives a node killed with SIGKILL during its delivery.

kill_during_delivery: a node on Redis (broker, digests store, TSDB) and a
real SMTP server (python3-aiosmtpd) that answers 451 to every mail. A new
issue's digest is opened and its send fails; the deliver task waits for
its retry in Redis. The node is killed with SIGKILL; the server starts
accepting; a second node on the same Redis and database delivers the
digest. It arrives at least once; duplicates are counted and reported
(none is expected: a failed send never closes the digest, and a
successful one closes it before the task is acknowledged).

Run: /usr/bin/python3 tests/faults/test_digest_kill.py (VIGIL_BIN).
"""

import email
import email.policy
import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "interop"))

from harness import free_port, run_checks, start_redis, wait_until  # noqa: E402
from ingest_common import Node, node_config  # noqa: E402
from smtp_server import start_smtp_server  # noqa: E402

DB = 26


def digest_config(redis_server, smtp_port):
    return (
        "redis.clusters:\n"
        f"  default: {{hosts: [\"{redis_server.url(DB)}\"]}}\n"
        f"broker.url: \"{redis_server.url(DB)}\"\n"
        # A task the killed node held comes back after this (kombu's
        # visibility timeout, shortened for the test).
        "broker.visibility-timeout: 8\n"
        "broker.restore-interval: 1\n"
        "tsdb.backend: redis\n"
        "digests.backend: redis\n"
        "digests.minimum-delay: 5\n"
        "digests.schedule-interval: 1\n"
        "mail.backend: smtp\n"
        "mail.host: 127.0.0.1\n"
        f"mail.port: {smtp_port}\n"
        "mail.timeout: 3\n")


class MemberNode(Node):
    def __init__(self, name, extra, data_dir=None):
        super().__init__(name, data_dir=data_dir, extra=extra)
        self.config.write_text(node_config(self.port, self.data_dir, extra)
                               .replace("  - {id: 1, slug: acme}",
                                        "  - id: 1\n    slug: acme\n"
                                        "    members:\n"
                                        "      - {email: ann@example.com}"))


def check_kill_during_delivery():
    redis_server = start_redis()
    r = redis_server.fresh_db(DB)
    smtp_port = free_port()
    extra = digest_config(redis_server, smtp_port)
    first = MemberNode("digest-kill-1", extra).start()
    server, mails = start_smtp_server(first.dir / "mails", smtp_port,
                                      tempfail=10 ** 9)
    second = None
    try:
        title = "killed mid-delivery " + uuid.uuid4().hex[:6]
        for _ in range(3):
            status, _, body = first.store({
                "event_id": uuid.uuid4().hex, "message": title,
                "level": "error", "fingerprint": [title],
                "timestamp": time.time()})
            assert status == 200, (status, body)
        wait_until(lambda: mails.refused >= 1, 60, "a refused send")
        assert r.exists("d:t:mail:p:1:d") or r.exists("d:t:mail:p:1"), \
            "the digest's records are not in Redis"
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        mails.tempfail = mails.refused  # accept from now on
        second = MemberNode("digest-kill-2", extra,
                            data_dir=first.data_dir).start()
        got = wait_until(lambda: mails.mails() if mails.count >= 1 else None,
                         90, "the digest delivered after the restart")
        msg = email.message_from_bytes(got[0][1],
                                       policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",)).get_content()
        assert title in text, text
        # The digest was closed: its snapshot and timeline are gone or
        # empty, and a later issue's mail does not repeat it.
        later = "after the restart " + uuid.uuid4().hex[:6]
        status, _, _ = second.store({
            "event_id": uuid.uuid4().hex, "message": later, "level": "error",
            "fingerprint": [later], "timestamp": time.time()})
        assert status == 200
        got = wait_until(
            lambda: (lambda ms: ms if any(later.encode() in raw
                                          for _, raw in ms) else None)(
                mails.mails()), 90, "the later issue's mail")
        copies = sum(1 for _, raw in got if title.encode() in raw)
        print(f"  delivered {copies} time(s) ({mails.refused} sends "
              f"refused before the kill)", flush=True)
        assert copies >= 1
        assert copies == 1, f"the digest was sent {copies} times"
    finally:
        server.stop()
        if second is not None:
            second.stop()
        if first.proc.alive():
            first.proc.send_signal(signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(run_checks([
        ("kill_during_delivery", check_kill_during_delivery)]))
