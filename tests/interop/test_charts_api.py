#!/usr/bin/python3
"""Charts in the read API of `vigil run node`, drawn from the TSDB, and
Sentry's generate_chart over HTTP (the PNG kept in the filestore).

* issue_chart: events of one issue, then GET /api/0/issues/{id}/chart.png
  gives a 450x150 PNG (decoded) with the style's bar colour in the
  right-most slot only (the events are all in now's hour); period=7d
  and width=600&height=200 change the chart; 400 for a bad period or a
  lone width, 404 for an unknown issue, 401 without the token.
* project_chart: GET /api/0/projects/acme/backend/chart.png?stat=received
  &period=7d is a PNG with the area colour; a bad stat 400, an unknown
  project 404.
* generated_chart: POST /api/0/charts/ {style, data} answers 201 with a
  url under system.url-prefix; the URL serves the PNG without a token;
  `vigil filestore ls charts/` lists it; an unknown or malformed name
  404; a bad style 400 with a detail; no token 401.

Run: /usr/bin/python3 tests/interop/test_charts_api.py (VIGIL_BIN).
"""

import json
import subprocess
import sys
import time
import urllib.parse
import uuid

from harness import vigil_bin, wait_until
from ingest_common import TOKEN, Node, run_node_checks
from png_decode import decode_png

NODE = None
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BAR = (0x6c, 0x5f, 0xc7)
AREA = (0x3c, 0x74, 0xdd)


def node():
    global NODE
    if NODE is None:
        NODE = Node("charts-api-node").start()
    return NODE


def get(path, headers=AUTH):
    status, hdr, body = node().request("GET", path, headers=headers)
    return status, hdr, body


def detail(body):
    doc = json.loads(body)
    assert isinstance(doc.get("detail"), str) and doc["detail"], doc
    return doc["detail"]


def colour_columns(rows, colour):
    return sorted({x for row in rows for x, px in enumerate(row)
                   if px == colour})


def the_issue():
    """Sends five events of one fingerprint (once), returns the issue."""
    if getattr(the_issue, "group", None):
        return the_issue.group
    for i in range(5):
        event = {"event_id": uuid.uuid4().hex, "message": f"chart me #{i}",
                 "level": "error", "fingerprint": ["charts-api"],
                 "platform": "python", "timestamp": time.time()}
        status, _, body = node().store(event)
        assert status == 200, (status, body)

    def counted():
        for g in node().issues():
            if g["title"].startswith("chart me") and g["times_seen"] == 5 \
                    and sum(n for _, n in g["stats"]["24h"]) == 5:
                return g
        return None
    the_issue.group = wait_until(counted, 20, "the issue counted 5 times")
    return the_issue.group


def check_issue_chart():
    group = the_issue()
    path = f"/api/0/issues/{group['id']}/chart.png"
    status, hdr, body = get(path + "?period=24h")
    assert status == 200, (status, body[:300])
    assert hdr.get("Content-Type") == "image/png", hdr
    w, h, rows = decode_png(body)
    assert (w, h) == (450, 150), (w, h)
    cols = colour_columns(rows, BAR)
    assert cols, "the bar colour is nowhere"
    # All five events are in now's hour: the last of 24 slots, and only it.
    assert cols[0] > w * 22 / 24, cols[:5]
    assert cols[-1] - cols[0] < w / 24, (cols[0], cols[-1])
    status, _, body = get(path)
    assert status == 200 and decode_png(body)[:2] == (450, 150)
    status, _, body = get(path + "?period=7d&width=600&height=200")
    assert status == 200, body[:300]
    assert decode_png(body)[:2] == (600, 200)
    for query in ("?period=banana", "?period=365d", "?width=600",
                  "?width=5&height=5", "?environment=nope"):
        status, _, body = get(path + query)
        want = 404 if "environment" in query else 400
        assert status == want, (query, status, body[:200])
        detail(body)
    status, _, body = get("/api/0/issues/999999/chart.png")
    assert status == 404, status
    detail(body)
    status, _, body = get("/api/0/issues/x/chart.png")
    assert status == 400, status
    status, _, body = get(path, headers={})
    assert status == 401, status


def check_project_chart():
    the_issue()
    path = "/api/0/projects/acme/backend/chart.png"
    status, hdr, body = get(path + "?stat=received&period=7d")
    assert status == 200, (status, body[:300])
    assert hdr.get("Content-Type") == "image/png", hdr
    w, h, rows = decode_png(body)
    assert (w, h) == (450, 150), (w, h)
    assert colour_columns(rows, AREA), "the area colour is nowhere"
    status, _, body = get(path + "?stat=bananas")
    assert status == 400, status
    assert "Invalid stat" in detail(body)
    status, _, body = get("/api/0/projects/acme/nope/chart.png")
    assert status == 404, status


def post_chart(doc, headers=AUTH):
    h = dict(headers)
    h["Content-Type"] = "application/json"
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return node().request("POST", "/api/0/charts/", data, h)


def check_generated_chart():
    series = [{"seriesName": "count()",
               "data": [{"name": (1796256000 + i * 3600) * 1000,
                         "value": 10 + i % 5} for i in range(24)]}]
    status, _, body = post_chart({"style": "slack:discover.totalPeriod",
                                  "data": series})
    assert status == 201, (status, body[:300])
    made = json.loads(body)
    rid = made["requestId"]
    assert len(rid) == 32 and all(c in "0123456789abcdef" for c in rid), rid
    prefix = f"http://127.0.0.1:{node().port}/charts/"
    assert made["url"] == prefix + rid + ".png", made
    path = urllib.parse.urlparse(made["url"]).path
    status, hdr, png = get(path, headers={})
    assert status == 200, (status, png[:200])
    assert hdr.get("Content-Type") == "image/png", hdr
    assert decode_png(png)[:2] == (450, 150)
    # A second chart gets another name.
    status, _, body = post_chart({"style": "slack:discover.totalPeriod",
                                  "data": series, "width": 600,
                                  "height": 200})
    assert status == 201, body[:300]
    other = json.loads(body)["requestId"]
    assert other != rid
    status, _, png2 = get(f"/charts/{other}.png", headers={})
    assert status == 200 and decode_png(png2)[:2] == (600, 200)
    ls = subprocess.run([vigil_bin(), "--config", str(node().config),
                         "filestore", "ls", "charts/"],
                        capture_output=True, text=True, timeout=30,
                        cwd=str(node().dir))
    assert ls.returncode == 0, ls.stderr
    listed = [line.split(" ", 1) for line in ls.stdout.splitlines()]
    keys = {k: int(n) for n, k in listed}
    assert keys.get(f"charts/{rid}.png") == len(png), (keys, len(png))
    assert f"charts/{other}.png" in keys, keys
    for name in ("0" * 32 + ".png", "nothing.png", "..%2Fvigil.db",
                 rid.upper() + ".png", rid + ".PNG"):
        status, _, body = get("/charts/" + name, headers={})
        assert status == 404, (name, status)
    status, _, body = post_chart({"style": "no:such.style", "data": series})
    assert status == 400, status
    assert "unknown style" in detail(body), body
    for bad in (b"not json", {"data": series}, {"style": "x"}):
        status, _, body = post_chart(bad)
        assert status == 400, (bad, status)
        detail(body)
    status, _, body = post_chart({"style": "x", "data": []}, headers={})
    assert status == 401, status
    status, _, _ = get("/api/0/charts/")
    assert status == 405, status


if __name__ == "__main__":
    sys.exit(run_node_checks([
        ("issue_chart", check_issue_chart),
        ("project_chart", check_project_chart),
        ("generated_chart", check_generated_chart),
    ], lambda: NODE))
