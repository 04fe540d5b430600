#!/usr/bin/python3
"""Debian's python3-sentry-sdk against a vigil node.

A real Sentry SDK sends to a DSN that points at `vigil run node`; the events
come back through vigil's read API. Checks:

* message_roundtrip: capture_message with tags, extra and breadcrumbs; the
  stored event has them all, and the issue list shows its group.
* exception_with_stack: capture_exception from a real traceback; title
  "ZeroDivisionError: division by zero", frames stored, culprit from the
  in-app frame.
* fingerprint_groups: three events with one fingerprint make one group with
  times_seen 3; a different fingerprint makes another group.
* rate_limited_key: a key limited to 5 events per hour: the SDK gets 429 with
  X-Sentry-Rate-Limits, its transport records the limit and stops sending,
  and the node stored exactly 5.
* read_api_auth: no token, a wrong token -> 401 with a JSON detail.

Run: /usr/bin/python3 tests/interop/test_sentry_sdk.py (VIGIL_BIN: the
binary). Prints PASS/FAIL lines.
"""

import sys
import time

import sentry_sdk

from harness import wait_until
from ingest_common import (KEY_A, KEY_L, LIMIT, Node, run_node_checks,
                           wait_for_event)

NODE = None


def node():
    global NODE
    if NODE is None:
        NODE = Node("sdk-node").start()
    return NODE


def sdk(key, project):
    sentry_sdk.init(dsn=node().dsn(key, project), default_integrations=False,
                    auto_enabling_integrations=False, max_breadcrumbs=50,
                    shutdown_timeout=5, debug=False)
    return sentry_sdk.Hub.current.client


def flush():
    sentry_sdk.flush(timeout=10)


def check_message_roundtrip():
    sdk(KEY_A, 1)
    sentry_sdk.add_breadcrumb(category="auth", message="user logged in",
                              level="info")
    sentry_sdk.add_breadcrumb(category="db", message="SELECT 1",
                              data={"rows": 1})
    with sentry_sdk.push_scope() as scope:
        scope.set_tag("region", "eu-west")
        scope.set_tag("release-train", "42")
        scope.set_extra("attempt", 3)
        scope.user = {"id": "u-17", "email": "dev@example.com"}
        event_id = sentry_sdk.capture_message("disk almost full on db-3",
                                              level="warning")
    flush()
    ev = wait_for_event(node(), event_id)
    assert ev["event_id"] == event_id, ev.get("event_id")
    assert ev["level"] == "warning", ev.get("level")
    tags = ev.get("tags")
    tags = dict(tags) if isinstance(tags, list) else tags
    assert tags.get("region") == "eu-west", tags
    assert tags.get("release-train") == "42", tags
    crumbs = ev["breadcrumbs"]["values"]
    msgs = [c.get("message") for c in crumbs]
    assert msgs == ["user logged in", "SELECT 1"], msgs
    assert crumbs[1]["data"] == {"rows": 1}, crumbs[1]
    assert ev["extra"]["attempt"] == 3, ev.get("extra")
    assert ev["user"]["id"] == "u-17", ev.get("user")
    assert ev.get("received"), "no received timestamp"
    titles = {g["title"]: g for g in node().issues()}
    g = titles.get("disk almost full on db-3")
    assert g, f"no group titled by the message: {list(titles)}"
    assert g["times_seen"] >= 1 and g["status"] == "unresolved", g


def divide(a, b):
    return a / b


def handler():
    return divide(1, 0)


def check_exception_with_stack():
    sdk(KEY_A, 1)
    try:
        handler()
    except ZeroDivisionError:
        event_id = sentry_sdk.capture_exception()
    flush()
    ev = wait_for_event(node(), event_id)
    exc = ev["exception"]["values"][-1]
    assert exc["type"] == "ZeroDivisionError", exc
    frames = exc["stacktrace"]["frames"]
    functions = [f.get("function") for f in frames]
    assert "divide" in functions and "handler" in functions, functions
    groups = [g for g in node().issues()
              if g["title"] == "ZeroDivisionError: division by zero"]
    assert len(groups) == 1, node().issues()
    assert "divide" in groups[0]["culprit"], groups[0]


def check_fingerprint_groups():
    sdk(KEY_A, 1)
    ids = []
    for i in range(3):
        with sentry_sdk.push_scope() as scope:
            scope.fingerprint = ["payment-gateway-timeout"]
            ids.append(sentry_sdk.capture_message(f"gateway timeout #{i}"))
    with sentry_sdk.push_scope() as scope:
        scope.fingerprint = ["another-thing"]
        other = sentry_sdk.capture_message("gateway timeout #x")
    flush()
    for event_id in ids + [other]:
        wait_for_event(node(), event_id)
    seen = {}
    for g in node().issues():
        if g["title"].startswith("gateway timeout #"):
            seen[g["title"]] = g["times_seen"]
    # One group for the three (titled by its first event), one for the other.
    assert sorted(seen.values()) == [1, 3], seen


def check_rate_limited_key():
    client = sdk(KEY_L, 2)
    sent = []
    for i in range(LIMIT + 7):
        with sentry_sdk.push_scope() as scope:
            scope.fingerprint = ["limited"]
            sent.append(sentry_sdk.capture_message(f"limited event {i}"))
        flush()
    transport = client.transport
    disabled = getattr(transport, "_disabled_until", {})
    assert disabled, "the SDK's transport recorded no rate limit"
    assert transport._check_disabled("error"), disabled
    groups = node().issues(project="limited")
    total = sum(g["times_seen"] for g in groups)
    assert total == LIMIT, f"stored {total} events, limit {LIMIT}: {groups}"
    # The 429 itself, as the SDK saw it.
    status, headers, body = node().store({"message": "one more"}, key=KEY_L,
                                         project=2)
    assert status == 429, (status, body)
    limits = headers.get("X-Sentry-Rate-Limits", "")
    assert limits.split(":")[1] == "error" and "key" in limits, limits
    assert int(headers.get("Retry-After", "0")) > 0, headers


def check_read_api_auth():
    status, _, body = node().request(
        "GET", "/api/0/projects/acme/backend/issues/")
    assert status == 401 and b"detail" in body, (status, body)
    status, _, body = node().request(
        "GET", "/api/0/projects/acme/backend/issues/",
        headers={"Authorization": "Bearer wrong"})
    assert status == 401 and b"detail" in body, (status, body)
    status, body = node().api("projects/acme/nope/issues/")
    assert status == 404 and "detail" in body, (status, body)


def main():
    return run_node_checks([
        ("message_roundtrip", check_message_roundtrip),
        ("exception_with_stack", check_exception_with_stack),
        ("fingerprint_groups", check_fingerprint_groups),
        ("rate_limited_key", check_rate_limited_key),
        ("read_api_auth", check_read_api_auth),
    ], lambda: NODE)


if __name__ == "__main__":
    sys.exit(main())
