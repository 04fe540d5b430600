#!/usr/bin/python3
"""Alert rules to digests to mail: `vigil run node` with Sentry's default
rule (a new issue notifies the project's members), the digests store and
a real SMTP server (Debian's python3-aiosmtpd) on a free port.

* digest_mail: the first new issue is delivered at once as an alert mail
  (Sentry: a new timeline is ready at once). Within the minimum delay 50
  events over 3 new issues follow: they arrive as one digest mail listing
  the 3 issues, most events first, with their event and user counts, a
  chart each inline (multipart/related, cid:), valid MIME (Python's email
  package), Subject "[Sentry] BACKEND-x - 3 new alerts since ...", List-Id
  <backend.acme.localhost>, Message-ID and Date, to the members of the
  project only. A fourth new issue after that comes in a mail of its own:
  no issue is mailed twice.
* rate_limited: with digests.rate-limit 1 per 30 s window, the second
  issue's digest is held (logged) while the first mail's window lasts,
  then arrives in the next window: waited for, not dropped.
* smtp_down: with the SMTP server down, a new issue's digest waits (the
  deliver task retries); once the server is up it arrives, once.

Run: /usr/bin/python3 tests/interop/test_digests.py (VIGIL_BIN).
"""

import email
import email.policy
import re
import sys
import time
import uuid

from harness import free_port, wait_until
from ingest_common import KEY_A, Node, node_config, run_node_checks
from smtp_server import start_smtp_server

NODES = []
MIN_DELAY = 6


class DigestNode(Node):
    def __init__(self, name, smtp_port, more=""):
        extra = more + f"""
mail.backend: smtp
mail.host: 127.0.0.1
mail.port: {smtp_port}
mail.timeout: 3
mail.from: alerts@vigil.test
digests.backend: memory
digests.minimum-delay: {MIN_DELAY}
digests.increment-delay: 1
digests.maximum-delay: 30
digests.schedule-interval: 1
"""
        super().__init__(name, extra=extra)
        text = node_config(self.port, self.data_dir, extra).replace(
            "  - {id: 1, slug: acme}",
            "  - id: 1\n    slug: acme\n    members:\n"
            "      - {email: \"ann@example.com\", name: \"Ann\"}\n"
            "      - {email: \"bob@example.com\", projects: [limited]}")
        self.config.write_text(text)


def store(node, title, n, users=1):
    for i in range(n):
        event = {"event_id": uuid.uuid4().hex, "message": title,
                 "level": "error", "fingerprint": [title],
                 "user": {"id": f"u{i % users}"}, "timestamp": time.time()}
        status, _, body = node.store(event)
        assert status == 200, (status, body)


def parsed(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def parts_of(msg):
    return {p.get_content_type(): p for p in msg.walk()}


def mails_with(store_, n, what):
    return wait_until(lambda: store_.mails() if store_.count >= n else None,
                      60, what)


def check_digest_mail():
    smtp_port = free_port()
    server, mails = start_smtp_server(
        Node("digest-smtp").dir / "mails", smtp_port)
    node = DigestNode("digest-node", smtp_port).start()
    NODES.append(node)
    try:
        store(node, "first issue", 1)
        first = mails_with(mails, 1, "the first issue's alert mail")
        env, raw = first[0]
        assert env["rcpt_tos"] == ["ann@example.com"], env
        msg = parsed(raw)
        assert re.fullmatch(r"\[Sentry\] BACKEND-\w+ - first issue",
                            msg["Subject"]), msg["Subject"]
        # Within the minimum delay: 3 issues, 30 + 15 + 5 events.
        store(node, "issue thirty", 30, users=3)
        store(node, "issue fifteen", 15, users=2)
        store(node, "issue five", 5)
        got = mails_with(mails, 2, "the digest of the three issues")
        env, raw = got[1]
        msg = parsed(raw)
        subject = msg["Subject"]
        assert re.fullmatch(r"\[Sentry\] BACKEND-\w+ - 3 new alerts since "
                            r".+ UTC", subject), subject
        assert msg["List-Id"] == "<backend.acme.localhost>", msg["List-Id"]
        assert msg["Message-ID"] and msg["Date"], dict(msg)
        assert env["rcpt_tos"] == ["ann@example.com"], env
        parts = parts_of(msg)
        for t in ("multipart/related", "multipart/alternative", "text/plain",
                  "text/html", "image/png"):
            assert t in parts, (t, list(parts))
        text = parts["text/plain"].get_content()
        order = [text.find(t) for t in ("issue thirty", "issue fifteen",
                                        "issue five")]
        assert -1 not in order and order == sorted(order), text
        assert "first issue" not in text, text
        assert "30 events, 3 users" in text, text
        assert "15 events, 2 users" in text, text
        assert "5 events, 1 user" in text, text
        html = parts["text/html"].get_content()
        cids = re.findall(r'cid:([^"]+)', html)
        images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
        assert len(cids) == 3 and len(images) == 3, (cids, len(images))
        assert {f"<{c}>" for c in cids} == {i["Content-ID"] for i in images}
        for img in images:
            assert img.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
        # A fourth issue later: a mail of its own, nothing sent twice.
        store(node, "issue four", 2)
        got = mails_with(mails, 3, "the fourth issue's mail")
        text = parts_of(parsed(got[2][1]))["text/plain"].get_content()
        assert "issue four" in text, text
        for t in ("issue thirty", "issue fifteen", "issue five",
                  "first issue"):
            assert t not in text, (t, text)
    finally:
        server.stop()


def check_smtp_down():
    smtp_port = free_port()
    node = DigestNode("digest-down-node", smtp_port).start()
    NODES.append(node)
    base = Node("digest-down-smtp").dir / "mails"
    store(node, "while down", 3)
    # The deliver task fails (connection refused) and retries: wait until
    # the node has tried at least once, then start the server.
    wait_until(lambda: "digests: sending mail:p:1 failed"
               in node.proc.log_text(), 60, "a failed send logged")
    server, mails = start_smtp_server(base, smtp_port)
    try:
        got = mails_with(mails, 1, "the digest after the server came up")
        text = parts_of(parsed(got[0][1]))["text/plain"].get_content()
        assert "while down" in text, text
        # Once: the next mail of this timeline is another issue's.
        store(node, "after up", 1)
        got = mails_with(mails, 2, "the next issue's mail")
        text = parts_of(parsed(got[1][1]))["text/plain"].get_content()
        assert "after up" in text and "while down" not in text, text
    finally:
        server.stop()


def check_rate_limited():
    smtp_port = free_port()
    server, mails = start_smtp_server(
        Node("digest-rl-smtp").dir / "mails", smtp_port)
    node = DigestNode("digest-rl-node", smtp_port,
                      "digests.rate-limit: 1\n"
                      "digests.rate-limit-window: 30\n").start()
    NODES.append(node)
    try:
        # Start early in a window (the limiter's buckets are aligned on
        # multiples of it), so that both mails fall in one.
        wait_until(lambda: time.time() % 30 < 3, 35, "a window's start")
        store(node, "limited one", 1)
        mails_with(mails, 1, "the first mail")
        store(node, "limited two", 1)
        wait_until(lambda: "over the notification rate limit"
                   in node.proc.log_text(), 30, "the second digest held")
        assert mails.count == 1, mails.count
        got = mails_with(mails, 2, "the held digest in the next window")
        text = parts_of(parsed(got[1][1]))["text/plain"].get_content()
        assert "limited two" in text and "limited one" not in text, text
    finally:
        server.stop()


if __name__ == "__main__":
    rc = run_node_checks([
        ("digest_mail", check_digest_mail),
        ("rate_limited", check_rate_limited),
        ("smtp_down", check_smtp_down),
    ], lambda: None)
    for n in NODES:
        n.stop()
    sys.exit(rc)
