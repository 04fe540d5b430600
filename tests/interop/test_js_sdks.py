#!/usr/bin/python3
"""The JavaScript Sentry clients against a vigil node: @sentry/browser in
Debian's chromium, @sentry/node 11 and sentry-cli (npm's @sentry/cli), all
pinned by tests/js/package-lock.json (installed by scripts/js-deps.sh).

Browser (a page served by python's http.server on another origin, with
@sentry/browser bundled by esbuild into a temp dir; chromium driven by
playwright-core, tests/js/browser_run.mjs):

* cors_headers: OPTIONS preflights of the store and envelope endpoints, and
  200, 401, 403, 405 and 429 answers, carry the Access-Control-* headers.
* browser_events: an exception (stack frames) and a message from the page
  are stored and readable.
* browser_rate_limit: a key limited to one event: the SDK's second send
  gets 429 and can read X-Sentry-Rate-Limits (exposed by CORS), the third
  is held back by the SDK; the node stored one.
* browser_preflight: a fetch with X-Sentry-Auth (preflighted) is answered.
* browser_no_cors_error: no console message, page error or failed request
  about CORS on either page.
* browser_refused_origin: a page on an origin the project's allowed-domains
  do not list gets 403, and the page can read the JSON detail.

Node SDK (tests/js/node_sdk.mjs) and sentry-cli: the checks of
test_sentry_sdk.py (message, exception, fingerprint groups, rate-limited
key), plus a transaction (stored, readable, no issue), SDK 11's streamed
span items, a session and an attachment (answered, counted per category,
not against the key's limit).

Needs node (and chromium for the browser checks): prints a SKIP line for
what it cannot run when they are absent. Prints PASS/FAIL lines.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

from harness import Proc, free_port, tmp_root, wait_until
from ingest_common import (KEY_A, KEY_L, LIMIT, Node, run_node_checks,
                           wait_for_event)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
JS = os.path.join(ROOT, "tests", "js")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE_JS = shutil.which("node")

KEY_W = "b" * 32     # project 13 "web": allowed-domains 127.0.0.1, *.example.com
KEY_WL = "e" * 32    # project 14 "web-limited": one event an hour
KEY_NL = "2" * 32    # project 15 "node-limited": LIMIT an hour
KEY_NC = "3" * 32    # project 16 "categories": one event an hour
KEY_CL = "4" * 32    # project 17 "cli-limited": LIMIT an hour
KEY_CA = "5" * 32    # project 18 "cli-categories": one event an hour

# Appended to ingest_common's `projects:` list.
EXTRA = f"""  - id: 13
    organization: 1
    slug: web
    allowed-domains: ["127.0.0.1", "*.example.com"]
    keys:
      - {{id: 14, public: "{KEY_W}"}}
  - id: 14
    organization: 1
    slug: web-limited
    allowed-domains: ["127.0.0.1"]
    keys:
      - {{id: 15, public: "{KEY_WL}", rate-limit: {{count: 1, window: 3600}}}}
  - id: 15
    organization: 1
    slug: node-limited
    keys:
      - {{id: 16, public: "{KEY_NL}", rate-limit: {{count: {LIMIT}, window: 3600}}}}
  - id: 16
    organization: 1
    slug: categories
    keys:
      - {{id: 17, public: "{KEY_NC}", rate-limit: {{count: 1, window: 3600}}}}
  - id: 17
    organization: 1
    slug: cli-limited
    keys:
      - {{id: 18, public: "{KEY_CL}", rate-limit: {{count: {LIMIT}, window: 3600}}}}
  - id: 18
    organization: 1
    slug: cli-categories
    keys:
      - {{id: 19, public: "{KEY_CA}", rate-limit: {{count: 1, window: 3600}}}}
"""

NODE = None
BROWSER = {}


def node():
    global NODE
    if NODE is None:
        NODE = Node("js-node", extra=EXTRA).start()
    return NODE


# --------------------------------------------------------------------------
# the JavaScript side

def js_deps():
    """npm ci in tests/js unless node_modules matches the lock (the same
    stamp scripts/js-deps.sh writes)."""
    stamp = os.path.join(JS, "node_modules", ".vigil-lock.sha256")
    with open(os.path.join(JS, "package-lock.json"), "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    try:
        with open(stamp) as f:
            if f.read().strip() == want:
                return
    except OSError:
        pass
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "js-deps.sh")],
                   check=True, timeout=240)


def run_js(argv, timeout=90, env=None):
    """Runs a node script from tests/js; returns its last stdout line as
    JSON."""
    proc = subprocess.run([NODE_JS] + argv, cwd=JS, capture_output=True,
                          text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))
    lines = [x for x in proc.stdout.splitlines() if x.startswith(("{", "["))]
    assert proc.returncode == 0 and lines, (
        f"node {' '.join(argv)} exited {proc.returncode}:\n"
        f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def node_sdk(scenario, key, project, *args):
    return run_js(["node_sdk.mjs", scenario, node().dsn(key, project)]
                  + [str(a) for a in args])


def cli_bin():
    return os.path.join(JS, "node_modules", ".bin", "sentry-cli")


def sentry_cli(args, key=KEY_A, project=1, check=True):
    env = dict(os.environ, SENTRY_DSN=node().dsn(key, project),
               SENTRY_LOG_LEVEL="info")
    env.pop("SENTRY_AUTH_TOKEN", None)
    proc = subprocess.run([cli_bin()] + args, capture_output=True, text=True,
                          timeout=60, env=env, cwd=str(tmp_root()))
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, f"sentry-cli {args}: {proc.returncode}\n{out}"
    return proc.returncode, out


def dispatched_ids(text):
    """The event ids sentry-cli reports ("Event id: <uuid>")."""
    return [m.replace("-", "") for m in
            re.findall(r"^Event id: ([0-9a-f-]{32,36})\s*$", text, re.M)]


# --------------------------------------------------------------------------
# node helpers

def health():
    status, _, data = node().request("GET", "/_health/")
    assert status == 200, (status, data)
    return json.loads(data)


def category_count(doc, category):
    """Items of `category` the pipeline accepted, from /_health/'s
    `pipeline["accepted.<category>"]`, or None when it reports none."""
    value = (doc.get("pipeline") or {}).get("accepted." + category)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def groups(project):
    return node().issues(project=project)


def titled(project, title):
    return [g for g in groups(project) if g["title"] == title]


def crumbs_of(ev):
    crumbs = ev.get("breadcrumbs") or []
    return crumbs["values"] if isinstance(crumbs, dict) else crumbs


def cors_of(headers):
    return {k.lower(): v for k, v in headers.items()
            if k.lower().startswith("access-control-")}


def assert_cors(headers, origin):
    h = cors_of(headers)
    assert h.get("access-control-allow-origin") == origin, headers
    assert h.get("access-control-allow-methods") == "GET, POST, OPTIONS", h
    allow = h.get("access-control-allow-headers", "")
    for name in ("x-sentry-auth", "x-requested-with", "content-type", "origin",
                 "accept", "authorization", "sentry-trace", "baggage"):
        assert name in allow, (name, allow)
    assert h.get("access-control-expose-headers") == \
        "x-sentry-error, x-sentry-rate-limits, retry-after", h
    assert int(h.get("access-control-max-age", "0")) > 0, h


# --------------------------------------------------------------------------
# CORS, straight over HTTP

def check_cors_headers():
    origin = "http://app.example.com:8080"
    for path in ("/api/1/store/", "/api/1/envelope/", "/api/13/store/"):
        status, headers, body = node().request("OPTIONS", path, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-sentry-auth, content-type"})
        assert status == 200, (path, status, body)
        assert_cors(headers, origin)
    # No Origin: "*".
    status, headers, _ = node().request("OPTIONS", "/api/1/store/")
    assert status == 200 and cors_of(headers)[
        "access-control-allow-origin"] == "*", (status, headers)
    # 200, 401 and 405 alike.
    status, headers, body = node().store({"message": "cors 200"},
                                         headers={"Origin": origin})
    assert status == 200, (status, body)
    assert_cors(headers, origin)
    status, headers, body = node().store({"message": "cors 401"},
                                         key="e" * 32,
                                         headers={"Origin": origin})
    assert status == 401 and b"detail" in body, (status, body)
    assert_cors(headers, origin)
    status, headers, _ = node().request("GET", "/api/1/store/",
                                        headers={"Origin": origin})
    assert status == 405, status
    assert_cors(headers, origin)
    # 403: an origin project 13 does not allow; a Referer stands in for a
    # missing Origin; a listed subdomain passes.
    status, headers, body = node().store({"message": "cors 403"}, key=KEY_W,
                                         project=13,
                                         headers={"Origin": "http://evil.test"})
    assert status == 403, (status, body)
    assert "not allowed" in json.loads(body)["detail"], body
    assert_cors(headers, "http://evil.test")
    status, _, body = node().store({"message": "cors referer"}, key=KEY_W,
                                   project=13, headers={
                                       "Referer": "http://evil.test/page"})
    assert status == 403, (status, body)
    status, _, body = node().store({"message": "cors subdomain"}, key=KEY_W,
                                   project=13, headers={
                                       "Origin": "https://shop.example.com"})
    assert status == 200, (status, body)
    # 429: the limits a browser can read.
    for _ in range(LIMIT + 1):
        status, headers, body = node().store({"message": "cors limited"},
                                             key=KEY_CL, project=17,
                                             headers={"Origin": origin})
        if status == 429:
            break
    assert status == 429, (status, body)
    assert_cors(headers, origin)
    assert headers.get("X-Sentry-Rate-Limits"), headers


# --------------------------------------------------------------------------
# the browser SDK

def browser_run():
    """Bundles @sentry/browser, serves the page on another origin and runs
    both pages (allowed and refused) in chromium, once for all checks."""
    if BROWSER:
        return BROWSER
    web = tmp_root() / "web"
    web.mkdir(parents=True, exist_ok=True)
    subprocess.run([os.path.join(JS, "node_modules", ".bin", "esbuild"),
                    os.path.join(JS, "browser_entry.js"), "--bundle",
                    "--format=iife", "--log-level=warning",
                    f"--outfile={web / 'sentry.js'}"],
                   check=True, timeout=120, cwd=JS)
    shutil.copy(os.path.join(JS, "browser_page.html"), web / "index.html")
    port = free_port()
    server = Proc("page-server", ["/usr/bin/python3", "-m", "http.server",
                                  str(port), "--bind", "127.0.0.1",
                                  "--directory", str(web)])
    try:
        def serving():
            import http.client
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/index.html")
                return c.getresponse().status == 200
            except OSError:
                return False
        wait_until(serving, 20, "the page server", procs=[server])
        n = node()
        base = f"http://127.0.0.1:{n.port}"
        from urllib.parse import urlencode
        allowed = f"http://127.0.0.1:{port}/index.html?" + urlencode({
            "mode": "allowed", "dsn": n.dsn(KEY_W, 13),
            "limited_dsn": n.dsn(KEY_WL, 14), "key": KEY_W,
            "envelope_url": f"{base}/api/13/envelope/"})
        # localhost is the same machine but another origin, which project
        # 3's allowed-domains do not list.
        refused = f"http://localhost:{port}/index.html?" + urlencode({
            "mode": "refused", "dsn": n.dsn(KEY_W, 13),
            "store_url": f"{base}/api/13/store/?sentry_key={KEY_W}"
                         "&sentry_version=7"})
        pages = run_js(["browser_run.mjs", allowed, refused], timeout=180,
                       env={"CHROMIUM": CHROMIUM})
    finally:
        server.stop()
    BROWSER["allowed"], BROWSER["refused"] = pages
    for p in pages:
        assert not p["result"]["errors"], p["result"]["errors"]
    return BROWSER


def cors_complaints(page):
    text = [m["text"] for m in page["console"]] + page["page_errors"] + \
        [f"{r['method']} {r['url']}: {r['failure']}"
         for r in page["failed_requests"]]
    return [t for t in text
            if re.search(r"cors|access-control|cross-origin", t, re.I)
            or "/api/" in t and "net::" in t]


def check_browser_events():
    page = browser_run()["allowed"]
    res = page["result"]
    assert res["flushed"], res
    ev = wait_for_event(node(), res["exception_id"], project="web")
    exc = ev["exception"]["values"][-1]
    assert exc["type"] == "SyntaxError", exc
    functions = [f.get("function") for f in exc["stacktrace"]["frames"]]
    assert "parseCart" in functions and "checkout" in functions, functions
    tags = ev.get("tags")
    tags = dict(tags) if isinstance(tags, list) else tags
    assert tags.get("page") == "checkout", tags
    crumbs = [c.get("message") for c in crumbs_of(ev)]
    assert "pay button" in crumbs, crumbs
    msg = wait_for_event(node(), res["message_id"], project="web")
    assert msg["level"] == "warning", msg
    sends = [s for s in res["sends"] if s["label"] == "web"]
    assert sends and all(s["status"] == 200 for s in sends), sends


def check_browser_rate_limit():
    res = browser_run()["allowed"]["result"]
    sends = [s for s in res["sends"] if s["label"] == "limited"]
    statuses = [s["status"] for s in sends]
    assert statuses[:2] == [200, 429], sends
    # Read by the page itself: only possible because CORS exposes it.
    limits = sends[1]["rate_limits"] or ""
    assert "error" in limits and "key" in limits, sends[1]
    assert sends[1]["retry_after"], sends[1]
    # The third event never left the page (the SDK honoured the limit).
    assert statuses[2:] in ([], ["not sent"]), sends
    wait_for_event(node(), res["limited_first_id"], project="web-limited")
    total = sum(g["times_seen"] for g in groups("web-limited"))
    assert total == 1, groups("web-limited")


def check_browser_preflight():
    res = browser_run()["allowed"]["result"]
    pre = res["preflighted"]
    assert pre["status"] == 200 and pre["body"].get("id"), pre
    ev = wait_for_event(node(), pre["body"]["id"], project="web")
    assert ev.get("message") == "preflighted envelope from the browser" or \
        ev.get("logentry", {}).get("formatted") == \
        "preflighted envelope from the browser", ev


def check_browser_no_cors_error():
    for name, page in browser_run().items():
        bad = cors_complaints(page)
        assert not bad, f"{name} page: {bad}"


def check_browser_refused_origin():
    page = browser_run()["refused"]
    res = page["result"]
    assert res["origin"].startswith("http://localhost:"), res
    statuses = [s["status"] for s in res["sends"]]
    assert statuses == [403], res["sends"]
    assert res["refused"]["status"] == 403, res["refused"]
    assert "not allowed" in res["refused"]["body"]["detail"], res["refused"]
    # Seen as a 403 by the browser, not as a CORS failure.
    seen = [r["status"] for r in page["responses"] if r["method"] == "POST"]
    assert seen and set(seen) == {403}, page["responses"]
    assert health()["ingest"]["origin_rejected"] >= 2, health()


# --------------------------------------------------------------------------
# @sentry/node

def check_node_message():
    out = node_sdk("message", KEY_A, 1)
    ev = wait_for_event(node(), out["event_id"])
    assert ev["level"] == "warning", ev.get("level")
    tags = ev.get("tags")
    tags = dict(tags) if isinstance(tags, list) else tags
    assert tags.get("region") == "eu-west", tags
    assert tags.get("release-train") == "42", tags
    crumbs = crumbs_of(ev)
    msgs = [c.get("message") for c in crumbs if c.get("category") in
            ("auth", "db")]
    assert msgs == ["user logged in", "SELECT 1"], crumbs
    assert ev["extra"]["attempt"] == 3, ev.get("extra")
    assert ev["user"]["id"] == "u-17", ev.get("user")
    assert ev.get("release") == "vigil-node-check@1.0.0", ev.get("release")
    g = titled("backend", "node: disk almost full on db-3")
    assert g and g[0]["times_seen"] >= 1, groups("backend")


def check_node_exception():
    out = node_sdk("exception", KEY_A, 1)
    ev = wait_for_event(node(), out["event_id"])
    exc = ev["exception"]["values"][-1]
    assert exc["type"] == "RangeError", exc
    functions = [f.get("function") for f in exc["stacktrace"]["frames"]]
    assert "divide" in functions and "handler" in functions, functions
    g = titled("backend", "RangeError: division by zero")
    assert len(g) == 1, groups("backend")
    assert "divide" in g[0]["culprit"] or "node_sdk" in g[0]["culprit"], g[0]


def check_node_fingerprint():
    out = node_sdk("fingerprint", KEY_A, 1)
    for event_id in out["ids"]:
        wait_for_event(node(), event_id)
    seen = {g["title"]: g["times_seen"] for g in groups("backend")
            if g["title"].startswith("node gateway timeout #")}
    assert sorted(seen.values()) == [1, 3], seen


def check_node_transaction():
    out = node_sdk("transaction", KEY_A, 1)
    assert out.get("transaction_id"), out
    assert [s["status"] for s in out["sends"]] == [200], out["sends"]
    ev = wait_for_event(node(), out["transaction_id"])
    assert ev.get("type") == "transaction", ev.get("type")
    assert ev.get("transaction") == "GET /node-checkout", ev.get("transaction")
    assert [s.get("description") for s in ev.get("spans", [])] == \
        ["SELECT cart"], ev.get("spans")
    # Stored (and so grouped, if it were grouped) before it was readable.
    assert not titled("backend", "GET /node-checkout"), groups("backend")


def check_node_spans():
    # SDK 11's default: spans streamed as span items, no transaction event.
    out = node_sdk("spans", KEY_A, 1)
    assert [s["type"] for s in out["sends"]] == ["span"], out["sends"]
    assert [s["status"] for s in out["sends"]] == [200], out["sends"]
    count = category_count(health(), "span")
    assert count, f"no span counted in /_health/: {health()}"


def check_node_session():
    before = category_count(health(), "session") or 0
    # Two sessions and then an error on a key limited to one event: the
    # sessions take nothing from the key's limit.
    for _ in range(2):
        out = node_sdk("session", KEY_NC, 16)
        assert out["sends"] and {s["type"] for s in out["sends"]} == \
            {"session"}, out["sends"]
        assert {s["status"] for s in out["sends"]} == {200}, out["sends"]
    out = node_sdk("exception", KEY_NC, 16)
    assert [s["status"] for s in out["sends"]] == [200], out["sends"]
    after = category_count(health(), "session")
    assert after is not None and after >= before + 2, \
        f"sessions counted in /_health/: {before} -> {after}: {health()}"


def check_node_attachment():
    out = node_sdk("attachment", KEY_A, 1)
    sends = out["sends"]
    assert len(sends) == 1 and sends[0]["type"] == "event,attachment" \
        and sends[0]["status"] == 200, sends
    ev = wait_for_event(node(), out["event_id"])
    assert ev["exception"]["values"][-1]["value"] == \
        "node error with an attachment", ev["exception"]
    count = category_count(health(), "attachment")
    assert count, f"no attachment counted in /_health/: {health()}"


def check_node_rate_limited_key():
    out = node_sdk("ratelimit", KEY_NL, 15, LIMIT + 7)
    # Only the events: the SDK also reports what it dropped (client_report).
    out["sends"] = [s for s in out["sends"] if s["type"] == "event"]
    statuses = [s["status"] for s in out["sends"]]
    assert statuses[:LIMIT + 1] == [200] * LIMIT + [429], out["sends"]
    assert set(statuses[LIMIT + 1:]) <= {"not sent"}, out["sends"]
    limits = out["sends"][LIMIT]["rate_limits"] or ""
    assert limits.split(":")[1] == "error" and "key" in limits, limits
    wait_until(lambda: sum(g["times_seen"] for g in groups("node-limited"))
               == LIMIT, 10, "the limited events stored")
    wait_for_event(node(), out["ids"][LIMIT - 1], project="node-limited")
    total = sum(g["times_seen"] for g in groups("node-limited"))
    assert total == LIMIT, f"stored {total}, limit {LIMIT}"


# --------------------------------------------------------------------------
# sentry-cli

def check_cli_send_event():
    _, out = sentry_cli(["send-event", "--no-environ", "-m",
                         "cli: deploy failed on web-2", "-l", "warning",
                         "-t", "region:eu-west", "-e", "attempt:3",
                         "-u", "id:u-9", "-r", "cli@2.0.0"])
    ids = dispatched_ids(out)
    assert len(ids) == 1, out
    ev = wait_for_event(node(), ids[0])
    assert ev["level"] == "warning", ev.get("level")
    tags = ev.get("tags")
    tags = dict(tags) if isinstance(tags, list) else tags
    assert tags.get("region") == "eu-west", tags
    assert ev["extra"]["attempt"] == "3", ev.get("extra")
    assert ev["user"]["id"] == "u-9", ev.get("user")
    assert ev.get("release") == "cli@2.0.0", ev.get("release")
    assert titled("backend", "cli: deploy failed on web-2"), groups("backend")


def check_cli_exception_file():
    event = {
        "event_id": uuid.uuid4().hex, "platform": "python", "level": "error",
        "exception": {"values": [{
            "type": "ValueError", "value": "bad invoice total",
            "stacktrace": {"frames": [
                {"function": "main", "filename": "billing.py", "lineno": 3,
                 "in_app": True},
                {"function": "total", "filename": "billing.py", "lineno": 9,
                 "in_app": True}]}}]}}
    path = tmp_root() / "cli-event.json"
    path.write_text(json.dumps(event))
    _, out = sentry_cli(["send-event", str(path)])
    ev = wait_for_event(node(), event["event_id"])
    frames = ev["exception"]["values"][-1]["stacktrace"]["frames"]
    assert [f["function"] for f in frames] == ["main", "total"], frames
    g = titled("backend", "ValueError: bad invoice total")
    assert len(g) == 1 and "total" in g[0]["culprit"], groups("backend")


def check_cli_fingerprint():
    ids = []
    for i in range(3):
        _, out = sentry_cli(["send-event", "--no-environ", "-m",
                             f"cli gateway timeout #{i}", "-f",
                             "cli-payment-gateway"])
        ids += dispatched_ids(out)
    _, out = sentry_cli(["send-event", "--no-environ", "-m",
                         "cli gateway timeout #x", "-f", "cli-other"])
    ids += dispatched_ids(out)
    assert len(ids) == 4, ids
    for event_id in ids:
        wait_for_event(node(), event_id)
    seen = {g["title"]: g["times_seen"] for g in groups("backend")
            if g["title"].startswith("cli gateway timeout #")}
    assert sorted(seen.values()) == [1, 3], seen


def rfc3339(t):
    """sentry-cli wants transaction timestamps as RFC 3339 text."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
        f".{int(t * 1e6) % 1000000:06d}Z"


def envelope_file(name, header, items):
    """Writes an envelope: a header line, then a header and payload per
    item."""
    parts = [json.dumps(header).encode()]
    for item_header, payload in items:
        if not isinstance(payload, bytes):
            payload = json.dumps(payload).encode()
        h = dict(item_header, length=len(payload))
        parts += [json.dumps(h).encode(), payload]
    path = tmp_root() / name
    path.write_bytes(b"\n".join(parts) + b"\n")
    return path


def check_cli_send_envelope():
    error_id = uuid.uuid4().hex
    path = envelope_file("cli-error.envelope", {"event_id": error_id}, [
        ({"type": "event"}, {"event_id": error_id,
                             "message": "cli: envelope with an attachment",
                             "level": "error"}),
        ({"type": "attachment", "filename": "log.txt",
          "content_type": "text/plain"}, b"y" * 1024)])
    sentry_cli(["send-envelope", str(path)])
    ev = wait_for_event(node(), error_id)
    assert titled("backend", "cli: envelope with an attachment"), ev


def check_cli_transaction():
    now = time.time()
    tx_id = uuid.uuid4().hex
    path = envelope_file("cli-tx.envelope", {"event_id": tx_id}, [
        ({"type": "transaction"}, {
            "event_id": tx_id, "type": "transaction",
            "transaction": "cli-nightly-job", "start_timestamp": rfc3339(now - 2),
            "timestamp": rfc3339(now), "contexts": {"trace": {
                "trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16],
                "op": "task"}}, "spans": []})])
    sentry_cli(["send-envelope", str(path)])
    tx = wait_for_event(node(), tx_id)
    assert tx.get("type") == "transaction", tx
    # Stored (and so grouped, if it were grouped) before it was readable.
    assert not titled("backend", "cli-nightly-job"), groups("backend")


def check_cli_attachment_not_key_limited():
    # Two attachment-only envelopes on a key limited to one event, then the
    # one event: all taken, the attachments counted in their category.
    before = category_count(health(), "attachment") or 0
    for i in range(2):
        path = envelope_file(f"cli-att-{i}.envelope",
                             {"event_id": uuid.uuid4().hex}, [
                                 ({"type": "attachment", "filename": "a.bin"},
                                  b"z" * 1024)])
        sentry_cli(["send-envelope", str(path)], key=KEY_CA, project=18)
    event_id = uuid.uuid4().hex
    path = envelope_file("cli-after.envelope", {"event_id": event_id}, [
        ({"type": "event"}, {"event_id": event_id,
                             "message": "cli: the key's one event"})])
    sentry_cli(["send-envelope", str(path)], key=KEY_CA, project=18)
    wait_for_event(node(), event_id, project="cli-categories")
    count = category_count(health(), "attachment") or 0
    assert count >= before + 2, f"attachments counted: {before} -> {count}"


def check_cli_rate_limited_key():
    runs = []
    for i in range(LIMIT + 3):
        rc, out = sentry_cli(["send-event", "--no-environ", "-m",
                              f"cli limited event {i}", "-f", "cli-limited"],
                             key=KEY_L, project=2, check=False)
        runs.append((rc, out))
    # Taken up to the limit; then sentry-cli fails, saying why.
    assert [rc for rc, _ in runs[:LIMIT]] == [0] * LIMIT, runs[:LIMIT]
    for rc, out in runs[LIMIT:]:
        assert rc != 0 and "429" in out, (rc, out[-500:])
    ids = [i for _, out in runs[:LIMIT] for i in dispatched_ids(out)]
    assert len(ids) == LIMIT, runs
    for event_id in ids:
        wait_for_event(node(), event_id, project="limited")
    total = sum(g["times_seen"] for g in groups("limited"))
    assert total == LIMIT, f"stored {total}, limit {LIMIT}"


def main():
    if NODE_JS is None:
        print("SKIP js_sdks: node is not installed (scripts/setup.sh "
              "installs nodejs)", flush=True)
        return 0
    js_deps()
    checks = [("cors_headers", check_cors_headers)]
    if os.path.exists(CHROMIUM):
        checks += [
            ("browser_events", check_browser_events),
            ("browser_rate_limit", check_browser_rate_limit),
            ("browser_preflight", check_browser_preflight),
            ("browser_no_cors_error", check_browser_no_cors_error),
            ("browser_refused_origin", check_browser_refused_origin),
        ]
    else:
        print(f"SKIP browser checks: {CHROMIUM} is not installed "
              "(scripts/setup.sh installs chromium)", flush=True)
    checks += [
        ("node_message", check_node_message),
        ("node_exception", check_node_exception),
        ("node_fingerprint", check_node_fingerprint),
        ("node_transaction", check_node_transaction),
        ("node_spans", check_node_spans),
        ("node_session", check_node_session),
        ("node_attachment", check_node_attachment),
        ("node_rate_limited_key", check_node_rate_limited_key),
        ("cli_send_event", check_cli_send_event),
        ("cli_exception_file", check_cli_exception_file),
        ("cli_fingerprint", check_cli_fingerprint),
        ("cli_send_envelope", check_cli_send_envelope),
        ("cli_transaction", check_cli_transaction),
        ("cli_attachment_not_key_limited",
         check_cli_attachment_not_key_limited),
        ("cli_rate_limited_key", check_cli_rate_limited_key),
    ]
    return run_node_checks(checks, lambda: NODE)


if __name__ == "__main__":
    sys.exit(main())
