#!/usr/bin/python3
"""Chartcuterie's HTTP API against `vigil run chartcuterie` on a free port.

* builtin_styles: every built-in style renders a 450x150 PNG that decodes
  (zlib + struct, no PIL), with X-Config-Version and Content-Disposition.
* single_bucket: a bar chart of one non-zero bucket has its series colour
  in that bucket's column only.
* bad_input: 400 with a JSON detail for an unknown style, a missing field,
  non-JSON; an over-limit body gets 413 (or 400); the server keeps serving.
* config_versions: started with a config file that does not exist yet:
  503 and ready 503 NOT CONFIGURED; the file appears: 200 with version
  v1; the file changes: X-Config-Version becomes v2.

Run: /usr/bin/python3 tests/interop/test_chartcuterie.py (VIGIL_BIN).
"""

import json
import os
import sys
import urllib.error
import urllib.request

from harness import Proc, free_port, run_checks, tmp_root, vigil_bin, \
    wait_until
from png_decode import decode_png

STYLES = ["slack:discover.totalPeriod", "slack:discover.totalDaily",
          "slack:discover.top5Period", "slack:discover.top5PeriodLine",
          "slack:discover.top5Daily", "slack:discover.previousPeriod",
          "vigil:issue.eventsOverTime", "vigil:project.received"]
T0 = 1796256000
SERVERS = {}


def start(name, **env):
    port = free_port()
    e = dict(os.environ)
    e["VIGIL_CHART_RENDERING_BIND"] = f"127.0.0.1:{port}"
    e["VIGIL_CHART_RENDERING_THREADS"] = "2"
    e.update(env)
    p = Proc(name, [vigil_bin(), "run", "chartcuterie"], env=e,
             cwd=str(tmp_root()))
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: get(base + "/api/chartcuterie/healthcheck/live")[0]
               == 200, 20, "chartcuterie live", procs=[p])
    return p, base


def builtin():
    if "builtin" not in SERVERS:
        SERVERS["builtin"] = start("chartcuterie")
    return SERVERS["builtin"]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)
    except OSError:
        return 0, b"", {}


def post(url, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def stats(n, value=lambda i: 100 + 37 * (i % 7)):
    return {"data": [[T0 + i * 3600, [{"count": value(i)}]]
                     for i in range(n)]}


def data_for(style):
    if "top5" in style:
        return {"stats": {f"s{k}": stats(24, lambda i, k=k: 10 * k + i)
                          for k in range(5)}}
    return {"seriesName": "count()", "stats": stats(48)}


def check_builtin_styles():
    _, base = builtin()
    for style in STYLES:
        st, body, hdr = post(base + "/render", {
            "requestId": "r1", "style": style, "data": data_for(style)})
        assert st == 200, (style, st, body[:200])
        assert hdr.get("Content-Type") == "image/png", hdr
        assert hdr.get("X-Config-Version") == "vigil-builtin-1", hdr
        assert hdr.get("Content-Disposition") == \
            'attachment; filename="chart.png"', hdr
        w, h, _ = decode_png(body)
        assert (w, h) == (450, 150), (style, w, h)
        (tmp_root() / (style.replace(":", "_") + ".png")).write_bytes(body)
    st, body, _ = post(base + "/render", {
        "requestId": "r2", "style": STYLES[0], "data": data_for(STYLES[0]),
        "width": 600, "height": 200})
    assert st == 200 and decode_png(body)[:2] == (600, 200)


def check_single_bucket():
    _, base = builtin()
    n, hot = 24, 9
    st, body, _ = post(base + "/render", {
        "requestId": "r3", "style": "vigil:issue.eventsOverTime",
        "data": {"stats": stats(n, lambda i: 50 if i == hot else 0)}})
    assert st == 200, body[:200]
    w, h, rows = decode_png(body)
    colour = (0x6c, 0x5f, 0xc7)
    cols = sorted({x for row in rows for x, px in enumerate(row)
                   if px == colour})
    assert cols, "the series colour is nowhere"
    # The plot spans at most the canvas; the hot bucket is slot 9 of 24.
    first, last = cols[0], cols[-1]
    assert last - first < w / n, (first, last)
    centre = (first + last) / 2
    assert w * (hot / n) - 10 < centre < w * ((hot + 1) / n) + 10, centre


def check_bad_input():
    _, base = builtin()
    cases = [({"requestId": "r", "style": "nope", "data": []}, "unknown"),
             ({"style": STYLES[0], "data": []}, "requestId"),
             ({"requestId": "r", "data": []}, "style"),
             ({"requestId": "r", "style": STYLES[0]}, "data"),
             ({"requestId": "r", "style": STYLES[0], "data": {"x": 1}},
              "shapes")]
    for body, word in cases:
        st, out, hdr = post(base + "/render", body)
        assert st == 400, (body, st, out)
        assert word in json.loads(out)["detail"], (word, out)
    st, out, _ = post(base + "/render", b"{not json")
    assert st == 400, st
    st, out, _ = post(base + "/render", b"x" * (21 * 1024 * 1024))
    assert st in (413, 400), st
    st, _, _ = post(base + "/render", {"requestId": "r", "style": STYLES[1],
                                       "data": data_for(STYLES[1])})
    assert st == 200, "the server stopped serving"


def config_doc(version, colour):
    return json.dumps({"version": version, "styles": {
        "test:bars": {"kind": "bar", "colors": [colour]}}})


def check_config_versions():
    path = tmp_root() / "charts-config.json"
    p, base = start("chartcuterie-config",
                    VIGIL_CHART_RENDERING_CONFIG=str(path),
                    VIGIL_CHART_RENDERING_CONFIG_REFRESH="0.5")
    req = {"requestId": "c", "style": "test:bars", "data": stats(10)}
    st, _, hdr = post(base + "/render", req)
    assert st == 503, st
    assert get(base + "/api/chartcuterie/healthcheck/ready")[:2] == \
        (503, b"NOT CONFIGURED")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(config_doc("v1", "#ff0000"))
    tmp.rename(path)
    wait_until(lambda: post(base + "/render", req)[0] == 200, 30,
               "the configuration to load", procs=[p])
    assert get(base + "/api/chartcuterie/healthcheck/ready")[:2] == \
        (200, b"OK")
    assert post(base + "/render", req)[2].get("X-Config-Version") == "v1"
    tmp.write_text(config_doc("v2", "#00ff00"))
    tmp.rename(path)
    wait_until(lambda: post(base + "/render", req)[2].get(
        "X-Config-Version") == "v2", 30, "version v2", procs=[p])
    st, body, _ = post(base + "/render", req)
    _, _, rows = decode_png(body)
    assert any(px == (0, 255, 0) for row in rows for px in row)


if __name__ == "__main__":
    sys.exit(run_checks([
        ("builtin_styles", check_builtin_styles),
        ("single_bucket", check_single_bucket),
        ("bad_input", check_bad_input),
        ("config_versions", check_config_versions),
    ]))
