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
* categories_spare_key_limit: on a key limited to 5 events per hour,
  sessions, transactions (from the SDK), standalone attachments, v2 span
  containers and client reports (raw envelopes) are all accepted and take
  nothing of the 5: five SDK errors with a 1 KiB attachment each are still
  stored, the sixth error gets 429. /_health/ counts each category (spans
  per span, attachments in bytes); transactions are readable by id with
  type "transaction".
* attachment_quota_bytes: a 2 KiB/hour attachment quota of project 1 takes
  two 1 KiB attachments, answers the third 429 with X-Sentry-Rate-Limits
  naming the attachment category; errors of the project still pass.
* auto_ip: user.ip_address "{{auto}}" from the SDK (store endpoint) and in
  an envelope event is stored as 127.0.0.1; an X-Forwarded-For header is
  not trusted by default.
* envelope_id_normalized: a dashed upper-case event_id in the envelope
  header is answered as the 32 lowercase hex digits the read API finds.

Run: /usr/bin/python3 tests/interop/test_sentry_sdk.py (VIGIL_BIN: the
binary). Prints PASS/FAIL lines.
"""

import sys
import time

import sentry_sdk

from harness import wait_until
import json

from ingest_common import (KEY_A, KEY_C, KEY_L, LIMIT, Node, run_node_checks,
                           wait_for_event)

NODE = None

# Project 1's attachments: 2 KiB per hour (attachment_quota_bytes).
ATTACHMENT_QUOTA = """
quotas.extra:
  - {id: pa, scope: project, scope-id: "1", categories: [attachment],
     limit: 2048, window: 3600, reason-code: attachment_quota}
"""

SPAN_V2 = "application/vnd.sentry.items.span.v2+json"


def node():
    global NODE
    if NODE is None:
        NODE = Node("sdk-node", extra=ATTACHMENT_QUOTA).start()
    return NODE


def sdk(key, project, **options):
    sentry_sdk.init(dsn=node().dsn(key, project), default_integrations=False,
                    auto_enabling_integrations=False, max_breadcrumbs=50,
                    shutdown_timeout=5, debug=False, **options)
    return sentry_sdk.Hub.current.client


def envelope(header, *items):
    """An envelope from a header dict and (item header dict, payload) pairs;
    a bytes payload gets a length, a dict is sent as a JSON line."""
    out = json.dumps(header).encode() + b"\n"
    for head, payload in items:
        if isinstance(payload, (bytes, bytearray)):
            head = dict(head, length=len(payload))
        else:
            payload = json.dumps(payload).encode()
        out += json.dumps(head).encode() + b"\n" + payload + b"\n"
    return out


def pipeline_counts():
    """accepted.* and rejected.* of the ingest pipeline, from /_health/."""
    p = node().health()["pipeline"]
    return {k: int(v) for k, v in p.items()
            if k.startswith(("accepted.", "rejected."))}


def grew(before, after, key):
    return after.get(key, 0) - before.get(key, 0)


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


def check_categories_spare_key_limit():
    before = pipeline_counts()
    client = sdk(KEY_C, 3, traces_sample_rate=1.0, release="shop@1.0")
    hub = sentry_sdk.Hub.current
    for _ in range(3):
        hub.start_session()
        hub.end_session()
    txn_ids = []
    for i in range(3):
        txn = sentry_sdk.start_transaction(name=f"checkout-{i}",
                                           op="http.server")
        txn.start_child(op="db", description="SELECT 1").finish()
        txn_ids.append(txn.finish())
    assert all(txn_ids), txn_ids
    flush()
    # Raw envelopes: standalone attachments, span containers, client
    # reports, as other SDKs send them.
    for i in range(3):
        status, _, body = node().envelope(envelope(
            {}, ({"type": "attachment", "filename": f"log{i}.txt"},
                 b"a" * 1024)), key=KEY_C, project=3)
        assert status == 200, (status, body)
    for i in range(2):
        spans = [{"trace_id": "ab" * 16, "span_id": f"{i:x}{j:015x}",
                  "name": "GET /", "start_timestamp": time.time() - 1,
                  "end_timestamp": time.time(), "is_segment": j == 0,
                  "status": "ok", "attributes": {}} for j in range(2)]
        status, _, body = node().envelope(envelope(
            {"sent_at": "2026-10-04T16:45:00.000Z"},
            ({"type": "span", "item_count": 2, "content_type": SPAN_V2},
             {"version": 2, "items": spans})), key=KEY_C, project=3)
        assert status == 200, (status, body)
    for i in range(3):
        status, _, body = node().envelope(envelope(
            {}, ({"type": "client_report"},
                 {"timestamp": time.time(), "discarded_events": [
                     {"reason": "sample_rate", "category": "transaction",
                      "quantity": 1}]})), key=KEY_C, project=3)
        assert status == 200, (status, body)
    # The key's five errors are all still there, attachments and all.
    ids = []
    for i in range(LIMIT):
        with sentry_sdk.push_scope() as scope:
            scope.add_attachment(bytes=b"b" * 1024, filename="dump.txt")
            ids.append(sentry_sdk.capture_message(f"category check {i}"))
        flush()
    for event_id in ids:
        wait_for_event(node(), event_id, project="sdk")
    assert not client.transport._disabled_until, \
        client.transport._disabled_until
    status, headers, body = node().store({"message": "the sixth"},
                                         key=KEY_C, project=3)
    assert status == 429, (status, body)
    assert ":error:key:key_quota" in headers.get("X-Sentry-Rate-Limits", ""), \
        headers
    after = pipeline_counts()
    assert grew(before, after, "accepted.session") == 3, (before, after)
    assert grew(before, after, "accepted.transaction") == 3, (before, after)
    assert grew(before, after, "accepted.span") == 4, (before, after)
    assert grew(before, after, "accepted.client_report") >= 3, (before, after)
    assert grew(before, after, "accepted.attachment") == 8 * 1024, \
        (before, after)
    assert grew(before, after, "accepted.error") == LIMIT, (before, after)
    assert grew(before, after, "rejected.error") == 1, (before, after)
    for key in ("session", "transaction", "span", "attachment"):
        assert grew(before, after, "rejected." + key) == 0, (key, after)
    # Transactions are stored and readable by id; their type says so.
    for event_id in txn_ids:
        ev = wait_for_event(node(), event_id, project="sdk")
        assert ev.get("type") == "transaction", ev.get("type")
        assert ev["transaction"].startswith("checkout-"), ev


def check_attachment_quota_bytes():
    def attachment(n):
        return node().envelope(envelope(
            {}, ({"type": "attachment", "filename": "big.bin"}, b"z" * n)))
    for _ in range(2):
        status, headers, body = attachment(1024)
        assert status == 200, (status, body)
    status, headers, body = attachment(1024)
    assert status == 429, (status, body)
    limits = headers.get("X-Sentry-Rate-Limits", "")
    assert ":attachment:project:attachment_quota" in limits, limits
    assert int(headers.get("Retry-After", "0")) > 0, headers
    # Errors are not attachments.
    sdk(KEY_A, 1)
    event_id = sentry_sdk.capture_message("errors pass the attachment quota")
    flush()
    wait_for_event(node(), event_id)


def check_auto_ip():
    sdk(KEY_A, 1)
    with sentry_sdk.push_scope() as scope:
        scope.user = {"id": "u-auto", "ip_address": "{{auto}}"}
        event_id = sentry_sdk.capture_message("who am I")
    flush()
    ev = wait_for_event(node(), event_id)
    assert ev["user"]["ip_address"] == "127.0.0.1", ev["user"]
    assert ev["user"]["id"] == "u-auto", ev["user"]
    # In an envelope event, and with an untrusted X-Forwarded-For.
    event_id = "5" * 32
    status, _, body = node().envelope(
        envelope({"event_id": event_id},
                 ({"type": "event"},
                  {"message": "via envelope", "platform": "javascript",
                   "user": {"ip_address": "{{auto}}"}})),
        headers={"X-Forwarded-For": "203.0.113.9"})
    assert status == 200, (status, body)
    ev = wait_for_event(node(), event_id)
    assert ev["user"]["ip_address"] == "127.0.0.1", ev["user"]


def check_envelope_id_normalized():
    dashed = "8E0E3D6A-1F2B-4C3D-9E8F-0A1B2C3D4E5F"
    status, _, body = node().envelope(envelope(
        {"event_id": dashed}, ({"type": "event"}, {"message": "dashed id"})))
    assert status == 200, (status, body)
    answered = json.loads(body)["id"]
    assert answered == dashed.replace("-", "").lower(), answered
    ev = wait_for_event(node(), answered)
    assert ev["event_id"] == answered, ev.get("event_id")


def main():
    return run_node_checks([
        ("message_roundtrip", check_message_roundtrip),
        ("exception_with_stack", check_exception_with_stack),
        ("fingerprint_groups", check_fingerprint_groups),
        ("categories_spare_key_limit", check_categories_spare_key_limit),
        ("attachment_quota_bytes", check_attachment_quota_bytes),
        ("auto_ip", check_auto_ip),
        ("envelope_id_normalized", check_envelope_id_normalized),
        ("rate_limited_key", check_rate_limited_key),
        ("read_api_auth", check_read_api_auth),
    ], lambda: NODE)


if __name__ == "__main__":
    sys.exit(main())
