#!/usr/bin/python3
"""Bad and unusual input on vigil's ingest endpoints: every bad request gets
its 4xx with a JSON `detail` (or is closed), and the node keeps serving.

Checks: malformed JSON, a gzip bomb, malformed gzip, a truncated envelope, a
body over web.max-body-size, an unknown key, a disabled key, a key of
another project, missing auth, oversized headers, a slow client (closed
after web.read-timeout), an envelope with unknown and internal items, auth
through ?sentry_key= and through the envelope's dsn, deflate bodies,
keep-alive, Expect: 100-continue, /_health/, auth.ip-rate-limit on the read API,
a read API request stuck on a hung Redis while ingestion goes on, a full
in-process task queue (503 with Retry-After), and a node
on PostgreSQL (db.url = $VIGIL_TEST_PG_URL, which tests/run_all.py exports).

Run: /usr/bin/python3 tests/interop/test_ingest_input.py (VIGIL_BIN).
"""

import gzip
import http.client
import json
import os
import signal
import socket
import sys
import threading
import uuid
import zlib

import redis

from harness import Proc, free_port, skip, tmp_root, wait_until
from ingest_common import (KEY_A, KEY_D, KEY_L, LIMIT, Node, raw_exchange,
                           run_node_checks, status_of, wait_for_event)

NODE = None


def node():
    global NODE
    if NODE is None:
        NODE = Node("input-node").start()
    return NODE


AUTH = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={KEY_A}"}


def post(path, body, headers=None):
    h = dict(AUTH)
    h.update(headers or {})
    return node().request("POST", path, body, h)


def detail_of(body):
    doc = json.loads(body)
    assert isinstance(doc.get("detail"), str) and doc["detail"], doc
    return doc["detail"]


def still_serving():
    status, _, body = node().store({"message": "still here"})
    assert status == 200, (status, body)


def expect(status_code, resp, contains=None):
    status, _, body = resp
    assert status == status_code, (status, body)
    detail = detail_of(body)
    if contains:
        assert contains in detail.lower(), detail
    still_serving()


def check_malformed_json():
    expect(400, post("/api/1/store/", b'{"message": "x",'), "json")
    expect(400, post("/api/1/store/", b'[1, 2, 3]'), "object")


def check_gzip_bomb():
    # 64 MiB of zeros is ~64 KiB gzipped: under the body limit, far over the
    # event limit once inflated.
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    assert len(bomb) < 262144
    expect(413, post("/api/1/store/", bomb, {"Content-Encoding": "gzip"}))


def check_malformed_gzip():
    expect(400, post("/api/1/store/", b"\x1f\x8b\x08garbage",
                     {"Content-Encoding": "gzip"}), "gzip")
    expect(400, post("/api/1/store/", b"{}", {"Content-Encoding": "br"}))


def check_truncated_envelope():
    body = (b'{"event_id":"' + uuid.uuid4().hex.encode() + b'"}\n'
            b'{"type":"event","length":500}\n{"message":"short"}\n')
    expect(400, post("/api/1/envelope/", body), "envelope")


def check_body_over_limit():
    big = json.dumps({"message": "x" * 300000}).encode()
    status, _, body = post("/api/1/store/", big)
    assert status == 413, (status, body[:200])
    detail_of(body)
    still_serving()


def check_keys():
    event = json.dumps({"message": "k"}).encode()
    expect(401, node().request("POST", "/api/1/store/", event, {
        "X-Sentry-Auth": "Sentry sentry_key=" + "f" * 32}), "unknown")
    expect(403, node().request("POST", "/api/1/store/", event, {
        "X-Sentry-Auth": "Sentry sentry_key=" + KEY_D}), "disabled")
    expect(401, node().request("POST", "/api/1/store/", event, {
        "X-Sentry-Auth": "Sentry sentry_key=" + KEY_L}), "project")
    expect(401, node().request("POST", "/api/1/store/", event, {}),
           "authentication")


def check_oversized_headers():
    status, _, body = node().request("POST", "/api/1/store/", b"{}", {
        **AUTH, "X-Padding": "p" * 20000})
    assert status == 431, (status, body)
    still_serving()


def check_slow_client():
    # Half a request, then silence: the node closes the connection (after
    # web.read-timeout, 2 s); the client would have waited 60 s.
    out, closed = raw_exchange(node().port, b"POST /api/1/store/ HTTP/1.1\r\n"
                               b"Host: x\r\nContent-Length: 100\r\n\r\n{",
                               60, report_close=True)
    assert closed, "the node kept a slow client's connection open"
    assert status_of(out) in (None, 408), out[:200]
    still_serving()


def check_envelope_items():
    event_id = uuid.uuid4().hex
    event = json.dumps({"message": "from an envelope", "level": "info"})
    attachment = b"hello attachment"
    body = b"\n".join([
        json.dumps({"event_id": event_id,
                    "dsn": node().dsn(KEY_A, 1)}).encode(),
        json.dumps({"type": "event"}).encode(),
        event.encode(),
        json.dumps({"type": "attachment", "length": len(attachment),
                    "filename": "a.txt"}).encode(),
        attachment,
        json.dumps({"type": "client_report"}).encode(),
        b'{"discarded_events":[]}',
        json.dumps({"type": "brand_new_item_type"}).encode(),
        b'{"x":1}',
    ]) + b"\n"
    # Auth from the envelope header's dsn alone.
    status, _, resp = node().request("POST", "/api/1/envelope/", body, {})
    assert status == 200, (status, resp)
    assert json.loads(resp)["id"] == event_id, resp
    ev = wait_for_event(node(), event_id)
    assert ev["message"] == "from an envelope", ev
    _, _, health = node().request("GET", "/_health/")
    health = json.loads(health)
    dropped = health["ingest"]["unknown_items_dropped"]
    assert dropped >= 1, health  # the unknown type
    # A client report is accepted and counted, in no quota's category.
    reports = int(health["pipeline"].get("accepted.client_report", 0))
    assert reports >= 1, health


def check_query_auth_and_deflate():
    event_id = uuid.uuid4().hex
    body = zlib.compress(json.dumps({"event_id": event_id,
                                     "message": "deflated"}).encode())
    status, _, resp = node().request(
        "POST", f"/api/1/store/?sentry_key={KEY_A}&sentry_version=7", body,
        {"Content-Encoding": "deflate"})
    assert status == 200, (status, resp)
    assert json.loads(resp)["id"] == event_id
    wait_for_event(node(), event_id)


def check_keep_alive():
    conn = http.client.HTTPConnection("127.0.0.1", node().port, timeout=10)
    try:
        for i in range(20):
            conn.request("POST", "/api/1/store/",
                         json.dumps({"message": f"keep-alive {i}"}), AUTH)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
            assert resp.getheader("Connection", "").lower() != "close"
    finally:
        conn.close()


def check_health_and_routes():
    status, _, body = node().request("GET", "/_health/")
    doc = json.loads(body)
    assert status == 200 and doc["status"] == "ok", body
    # The answer comes from the pipeline itself, restarts included.
    assert doc["pipeline"]["restarts"] == 0, doc
    assert "queued_bytes" in doc, doc
    expect(404, node().request("GET", "/nope"))
    expect(405, node().request("GET", "/api/1/store/"))


def check_expect_continue():
    # curl and others send Expect: 100-continue and wait for the go-ahead.
    body = json.dumps({"message": "after a 100 Continue"}).encode()
    head = (f"POST /api/1/store/?sentry_key={KEY_A} HTTP/1.1\r\nHost: x\r\n"
            f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", node().port), timeout=10) as s:
        s.sendall(head.encode())
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(body)
        answer = b""
        while b"}" not in answer:
            chunk = s.recv(4096)
            assert chunk, answer
            answer += chunk
        assert status_of(answer) == 200, answer
    # Over the body limit: 413 at once, no go-ahead.
    out = raw_exchange(node().port, (
        "POST /api/1/store/ HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        "Content-Length: 999999999\r\n\r\n").encode(), 5)
    assert status_of(out) == 413, out[:200]
    still_serving()


def check_api_ip_rate_limit():
    # auth.ip-rate-limit counts read API requests per address per minute
    # through the rate limiter actor (memory backend here).
    limited = Node("ratelimit-node", extra="auth.ip-rate-limit: 4").start()
    try:
        statuses = [limited.api("projects/acme/backend/issues/")[0]
                    for _ in range(6)]
        assert statuses[:4] == [200] * 4, statuses
        assert statuses[4:] == [429, 429], statuses
        status, headers, body = limited.request(
            "GET", "/api/0/projects/acme/backend/issues/",
            headers={"Authorization": "Bearer x"})
        assert status == 429 and headers.get("Retry-After"), (status, body)
        detail_of(body)
    finally:
        assert limited.stop() == 0


def check_read_api_off_http_threads():
    # A read API request blocks while it waits (here on the rate limiter,
    # whose Redis is hung). Each HTTP thread serves its own connections, so
    # the read API runs on a thread of its own: events sent meanwhile, on
    # new connections that the node deals out to both HTTP threads, are
    # answered at once.
    port = free_port()
    hung = Proc(f"redis-hung-{port}",
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no"], cwd=str(tmp_root()))
    client = redis.Redis(host="127.0.0.1", port=port,
                         socket_connect_timeout=0.5)

    def pong():
        try:
            return client.ping()
        except redis.RedisError:
            return False
    wait_until(pong, 10, "a private redis-server")
    slow = Node("slow-api-node", extra=(
        "auth.ip-rate-limit: 1000\n"
        "ratelimiter: {backend: redis}\n"
        f'redis: {{clusters: {{default: {{hosts: '
        f'["redis://127.0.0.1:{port}/0"]}}}}}}\n')).start()
    waiting = None
    try:
        assert slow.api("projects/acme/backend/issues/")[0] == 200
        hung.send_signal(signal.SIGSTOP)
        answer = {}
        waiting = threading.Thread(target=lambda: answer.update(
            api=slow.api("projects/acme/backend/issues/")))
        waiting.start()
        # Proof that the API request is held at Redis: its rate-limit
        # command sits unread in the stopped server's socket.
        wait_until(lambda: unread_bytes_at(port) > 0, 10,
                   "the API request's command to reach the stopped Redis")
        for i in range(8):
            status, _, body = slow.store({"message": f"beside the api {i}"})
            assert status == 200, (status, body)
        # The events were answered before the API request was (it waits for
        # the rate limiter's 2 s Redis timeout).
        assert "api" not in answer, \
            f"the API request was answered before the events: {answer}"
        hung.send_signal(signal.SIGCONT)
        waiting.join(10)
        # The rate limiter fails open: the API answered once Redis timed out.
        assert answer.get("api", (None,))[0] == 200, answer
    finally:
        hung.send_signal(signal.SIGCONT)
        if waiting is not None:
            waiting.join(10)
        assert slow.stop() == 0
        hung.stop(timeout=5)


def unread_bytes_at(port):
    """Bytes received and not yet read by the sockets listening side of
    127.0.0.1:port (the receive queues of /proc/net/tcp)."""
    total = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "01" and int(local.split(":")[1], 16) == port:
                total += int(queues.split(":")[1], 16)
    return total


def check_task_queue_full():
    # The in-process broker is bounded (memory://?max-messages=N). Here no
    # worker consumes the post_process queue (the workers take another), so
    # after N events the node answers 503 with Retry-After and says why,
    # and keeps serving.
    full = Node("full-queue-node", extra=(
        'broker.url: "memory://?max-messages=5"\n'
        "tasks.queues: [elsewhere]\n")).start()
    try:
        for i in range(5):
            status, _, body = full.store({"message": f"queued {i}"})
            assert status == 200, (i, status, body)
        status, headers, body = full.store({"message": "one too many"})
        assert status == 503, (status, body)
        assert headers.get("Retry-After"), headers
        assert "task queue is full" in detail_of(body), body
        status, _, _ = full.request("GET", "/_health/")
        assert status == 200
    finally:
        assert full.stop() == 0


def check_postgresql_nodestore():
    # The same node on PostgreSQL (db.url): stored, grouped, read back.
    pg = os.environ.get("VIGIL_TEST_PG_URL")
    if not pg:
        skip("VIGIL_TEST_PG_URL is not set")
    on_pg = Node("pg-node", extra=f'db.url: "{pg}"').start()
    try:
        fingerprint = uuid.uuid4().hex
        ids = []
        for i in range(3):
            status, _, body = on_pg.store({"message": f"on postgres {i}",
                                           "fingerprint": [fingerprint]})
            assert status == 200, (status, body)
            ids.append(json.loads(body)["id"])
        for event_id in ids:
            assert wait_for_event(on_pg, event_id)["message"].startswith(
                "on postgres")
        groups = [g for g in on_pg.issues()
                  if g["title"] == "on postgres 0"]
        assert groups and groups[0]["times_seen"] == 3, groups
    finally:
        assert on_pg.stop() == 0


def check_redis_quotas():
    # Quotas in Redis (the ingest actor asks the quota actor; the in-process
    # default is decided on the ingest actor's thread): a key limited to
    # LIMIT per hour gets LIMIT 200s, then 429 with X-Sentry-Rate-Limits.
    redis_url = os.environ.get("VIGIL_TEST_REDIS_URL")
    if not redis_url:
        skip("VIGIL_TEST_REDIS_URL is not set")
    # A database of its own, emptied, so that counters of an earlier run
    # in the same window do not count.
    redis_url = redis_url.rsplit("/", 1)[0] + "/9"
    redis.Redis.from_url(redis_url).flushdb()
    on_redis = Node("redis-quota-node", extra=(
        "quotas: {backend: redis}\n"
        f'redis: {{clusters: {{default: {{hosts: ["{redis_url}"]}}}}}}\n'
    )).start()
    try:
        statuses = []
        for i in range(LIMIT + 3):
            status, headers, body = on_redis.store(
                {"message": f"limited {i}"}, key=KEY_L, project=2)
            statuses.append(status)
            if status == 429:
                assert headers.get("X-Sentry-Rate-Limits"), headers
                assert headers.get("Retry-After"), headers
        assert statuses == [200] * LIMIT + [429] * 3, statuses
    finally:
        assert on_redis.stop() == 0


def main():
    return run_node_checks([
        ("health_and_routes", check_health_and_routes),
        ("malformed_json", check_malformed_json),
        ("gzip_bomb", check_gzip_bomb),
        ("malformed_gzip", check_malformed_gzip),
        ("truncated_envelope", check_truncated_envelope),
        ("body_over_limit", check_body_over_limit),
        ("keys", check_keys),
        ("oversized_headers", check_oversized_headers),
        ("slow_client", check_slow_client),
        ("envelope_items", check_envelope_items),
        ("query_auth_and_deflate", check_query_auth_and_deflate),
        ("keep_alive", check_keep_alive),
        ("expect_continue", check_expect_continue),
        ("api_ip_rate_limit", check_api_ip_rate_limit),
        ("read_api_off_http_threads", check_read_api_off_http_threads),
        ("task_queue_full", check_task_queue_full),
        ("postgresql_nodestore", check_postgresql_nodestore),
        ("redis_quotas", check_redis_quotas),
    ], lambda: NODE)


if __name__ == "__main__":
    sys.exit(main())
