#!/usr/bin/python3
"""The web console (/console/ on the web bind, docs/CONSOLE.md) against a
`vigil run node` on a Redis broker (db 52), in Debian's chromium driven by
playwright-core (tests/js/console_run.mjs):

* console_assets: the page, its script, styles and icon are served by vigil
  (content types, ETag and 304, the Content-Security-Policy), need no
  token and hold no data; /console redirects to /console/.
* console_api_401: GET /console/api/cluster and /console/api/dead-letters
  answer 401 with a JSON detail without the token, with a wrong one, and
  with another scheme than Bearer; POST is 405.
* console_api_cluster: with the token, every node's snapshot: this node,
  reachable, its actors (tasks among them).
* console_cluster_nodes: a `vigil run worker` on the same Redis joins:
  both nodes are listed, reachable, with their actors.
* console_browser: a page given a wrong token goes back to the sign-in
  form with the server's detail and forgets the token; signed in through
  the form, the table lists the node's actors; tasks are sent (vigil
  send-task) and the processed count shown grows without a reload (bounded
  wait in the browser); an actor's drill-down opens; the dead-letters list
  shows the unknown task sent; no console error, no page error, no failed
  request, and no request to another host than vigil's. The screenshot is
  kept in build/test-artifacts/console.png ($VIGIL_TEST_ARTIFACTS, or
  test-artifacts beside $VIGIL_BIN).
* console_sections: the same page given a cluster answer that has every
  section (intercepted in the browser: the page and files are vigil's)
  draws queues, dead letters, buffer, digests, quotas and rate limits with
  their usage, the cron lock holder and next ticks, a not-answering actor,
  a node that is not reachable, and rates from two snapshots; no error, no
  outside request. Screenshot: build/test-artifacts/console-sections.png.
* console_node_killed: the worker, killed with SIGKILL, is listed as not
  reachable (with an error) or, once its membership expired, not at all.

Needs node and chromium for console_browser (a SKIP line without them).
Prints PASS/FAIL lines.
"""

import json
import os
import shutil
import subprocess
import sys
import time

from harness import start_redis, run_checks, skip, vigil_bin, wait_until
from ingest_common import TOKEN, Node, run_node_checks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
JS = os.path.join(ROOT, "tests", "js")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE_JS = shutil.which("node")
DB = 52
UNKNOWN_TASK = "vigil.console-test.no-such-task"

NODE = None


def artifacts_dir():
    """Where the screenshot is kept after the run (the temp dir is not)."""
    path = os.environ.get("VIGIL_TEST_ARTIFACTS")
    if not path:
        bin_path = os.environ.get("VIGIL_BIN")
        build = os.path.dirname(bin_path) if bin_path \
            else os.path.join(ROOT, "build")
        path = os.path.join(build, "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return path


def node():
    global NODE
    if NODE is None:
        redis = start_redis()
        redis.fresh_db(DB)
        url = redis.url(DB)
        from harness import free_port
        extra = f"""broker.url: "{url}"
redis.clusters:
  default:
    hosts: ["{url}"]
inspect.bind: "127.0.0.1:{free_port()}"
"""
        NODE = Node("console-node", extra=extra).start()
    return NODE


def get(path, token=None, scheme="Bearer", method="GET", headers=None):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"{scheme} {token}"
    return node().request(method, path, headers=h)


def header(headers, name):
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


def send_task(name):
    proc = subprocess.run([vigil_bin(), "--config", str(node().config),
                           "send-task", name], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, \
        f"send-task {name}: {proc.returncode} {proc.stderr[-500:]}"


# --------------------------------------------------------------------------

def console_assets():
    status, headers, body = get("/console")
    assert status in (301, 308), (status, body[:200])
    assert header(headers, "Location") == "/console/", headers
    status, headers, page = get("/console/")
    assert status == 200, (status, page[:300])
    assert header(headers, "Content-Type").startswith("text/html"), headers
    csp = header(headers, "Content-Security-Policy") or ""
    assert "default-src 'self'" in csp and "script-src 'self'" in csp, csp
    text = page.decode()
    assert 'src="console.js"' in text and 'href="console.css"' in text, \
        text[:500]
    # The page is the same for everyone: it holds no figure of the node.
    assert TOKEN not in text and "tasks.worker" not in text, text[:500]
    for name, ctype in (("console.js", "text/javascript"),
                        ("console.css", "text/css"),
                        ("favicon.svg", "image/svg+xml")):
        status, headers, body = get("/console/" + name)
        assert status == 200 and body, (name, status)
        assert header(headers, "Content-Type").startswith(ctype), \
            (name, headers)
        etag = header(headers, "ETag")
        assert etag, (name, headers)
        status, _, body = get("/console/" + name,
                              headers={"If-None-Match": etag})
        assert status == 304 and not body, (name, status, body[:100])
    # The script is plain JS: no module loader, no outside URL.
    status, _, js = get("/console/console.js")
    assert b"http://" not in js and b"https://" not in js, \
        "console.js names an outside URL"
    status, _, body = get("/console/no-such-file.js")
    assert status == 404 and "detail" in json.loads(body), (status, body)


def console_api_401():
    for path in ("/console/api/cluster", "/console/api/dead-letters"):
        for token, scheme in ((None, "Bearer"), ("wrong-token", "Bearer"),
                              (TOKEN, "Basic")):
            status, headers, body = get(path, token, scheme)
            assert status == 401, (path, token, scheme, status, body[:200])
            doc = json.loads(body)
            assert doc.get("detail"), (path, doc)
            assert header(headers, "Content-Type").startswith(
                "application/json"), headers
        status, _, body = get(path, TOKEN, method="POST")
        assert status == 405, (path, status, body[:200])


def cluster():
    status, headers, body = get("/console/api/cluster", TOKEN)
    assert status == 200, (status, body[:500])
    assert header(headers, "Cache-Control") == "no-store", headers
    return json.loads(body)


def console_api_cluster():
    doc = cluster()
    nodes = doc.get("nodes")
    assert isinstance(nodes, list) and nodes, doc
    me = [n for n in nodes if (n.get("node") or {}).get("web", "").endswith(
        f":{node().port}")]
    assert len(me) == 1, [n.get("node") for n in nodes]
    me = me[0]
    assert me.get("reachable") is True, me
    names = {(a.get("service"), a.get("name")) for a in me.get("actors", [])}
    assert ("tasks", "tasks.worker") in names, names
    assert all(a.get("answering") for a in me["actors"]), me["actors"]


WORKER = {}


def worker_node():
    """A `vigil run worker` on the same Redis (broker and membership), so
    that the cluster has two nodes."""
    if "proc" not in WORKER:
        from harness import Proc, free_port
        node()
        text = node().config.read_text()
        cfg = node().dir / "worker.yml"
        lines = [x for x in text.splitlines()
                 if not x.startswith(("inspect.bind:", "web.bind:"))]
        lines.append(f'inspect.bind: "127.0.0.1:{free_port()}"')
        lines.append(f'web.bind: "127.0.0.1:{free_port()}"')
        cfg.write_text("\n".join(lines) + "\n")
        WORKER["proc"] = Proc("console-worker",
                              [vigil_bin(), "--config", str(cfg), "run",
                               "worker", "-c", "1"], cwd=str(node().dir))
    return WORKER["proc"]


def listed_worker():
    """The worker's entry in the console's cluster answer, or None."""
    pid = worker_node().pid
    for n in cluster().get("nodes", []):
        if (n.get("node") or {}).get("pid") == pid:
            return n
    return None


def console_cluster_nodes():
    """Both nodes listed, each reachable with its actors (the worker's
    snapshot fetched by this node's inspector)."""
    proc = worker_node()
    entry = wait_until(lambda: (lambda n: n if n and n.get("reachable")
                                and n.get("actors") else None)(
                                    listed_worker()),
                       40, "the worker listed by the console, reachable",
                       procs=[proc])
    assert entry["node"].get("mode") == "worker", entry["node"]
    assert any(a.get("service") == "tasks" for a in entry["actors"]), entry
    assert len(cluster()["nodes"]) == 2, [n.get("node")
                                          for n in cluster()["nodes"]]


def console_node_killed():
    """A node killed with SIGKILL is listed as not reachable (with the
    error) until its membership expires, then no more: either is right at
    any moment, never a reachable snapshot of a dead process."""
    proc = worker_node()
    proc.kill()

    def settled():
        n = listed_worker()
        if n is None:
            return "gone"
        if n.get("reachable") is False:
            assert n.get("error"), n
            return "not reachable"
        return None
    wait_until(settled, 40, "the killed worker shown as not reachable or "
               "gone")


def dead_letters():
    status, _, body = get("/console/api/dead-letters", TOKEN)
    assert status == 200, (status, body[:500])
    return json.loads(body)


def console_browser():
    if not NODE_JS:
        skip("node is not installed (scripts/setup.sh)")
    if not os.path.exists(CHROMIUM):
        skip(f"{CHROMIUM} is not installed (scripts/setup.sh)")
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "js-deps.sh")],
                   check=True, timeout=240, stdout=subprocess.DEVNULL)
    shot = os.path.join(artifacts_dir(), "console.png")
    if os.path.exists(shot):
        os.unlink(shot)
    base = f"http://127.0.0.1:{node().port}/console/"
    proc = subprocess.Popen([NODE_JS, "console_run.mjs", base, TOKEN, shot],
                            cwd=JS, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        ready = read_event(proc)
        assert ready.get("event") == "ready", ready
        assert ready["stored_after_refusal"] is None, ready
        assert "token" in ready["login_error"], ready
        assert ready["refused"]["page_errors"] == [], ready["refused"]
        assert ("tasks", "tasks.worker") in {
            tuple(x.split(":", 1)) for x in ready["actors"]}, ready["actors"]
        assert ready["tasks_rows"] > 0, ready
        # Work for the table to show: pings, and one task no node knows
        # (dead-lettered), listed before the browser looks for it.
        send_task(UNKNOWN_TASK)
        for _ in range(5):
            send_task("vigil.ping")
        wait_until(lambda: any(d.get("task") == UNKNOWN_TASK
                               for d in dead_letters()["dead_letters"]),
                   30, "the unknown task dead-lettered")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        done = read_event(proc)
        assert done.get("event") == "done", done
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert done["after"]["processed"] > done["before"]["processed"], done
    assert done["after"]["updates"] > done["before"]["updates"], done
    assert "Figures" in done["detail"] and "Last error" in done["detail"], \
        done["detail"]
    assert UNKNOWN_TASK in done["dead_letters"], done["dead_letters"]
    assert done["nodes"] >= 1, done
    assert done["console_errors"] == [], done["console_errors"]
    assert done["page_errors"] == [], done["page_errors"]
    assert done["failed_requests"] == [], done["failed_requests"]
    assert done["external_requests"] == [], done["external_requests"]
    assert os.path.getsize(shot) > 10000, f"{shot} is too small"
    print(f"console screenshot: {shot}", flush=True)


def read_event(proc, timeout=180):
    """The next JSON line console_run.mjs prints (bounded: its own steps
    time out well within `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read()[-3000:] if proc.poll() is not None \
                else ""
            raise AssertionError(f"console_run.mjs ended: {err}")
        if line.startswith("{"):
            doc = json.loads(line)
            if doc.get("event") == "error":
                raise AssertionError(f"console_run.mjs: {doc}")
            return doc
    raise AssertionError("console_run.mjs printed nothing in time")


# A cluster that runs every section (docs/INSPECT.md's format), one actor
# that did not answer and one node that is not reachable.
FIXTURE = {"nodes": [
    {"node": {"id": "vigil@fixture.1", "host": "fixture", "pid": 1,
              "version": "0.1.0", "mode": "node", "queues": ["default"],
              "started": 1765100000.5, "inspect": "127.0.0.1:9002",
              "web": "127.0.0.1:9001"},
     "time": 1765100010.25, "reachable": True,
     "actors": [
         {"service": "tasks", "id": 42, "name": "tasks.worker",
          "answering": True, "mailbox": 3, "processed": 120, "errors": 1,
          "restarts": 0, "last_error": "vigil.flaky: retry (<b>1</b>)",
          "extra": {"running": "1"}},
         {"service": "cron", "id": 43, "name": "cron.scheduler",
          "answering": False}],
     "queues": [{"name": "default", "broker": "redis", "ready": 3,
                 "unacked": 1},
                {"name": "celery", "broker": "redis", "ready": 0,
                 "unacked": 0}],
     "dead_letters": {"count": 4, "url": "/console/api/dead-letters"},
     "quotas": [{"project": 1, "id": "pq", "limit": 100, "window": 60,
                 "used": 12}],
     "rate_limits": [{"key": "api:user", "limit": 10, "window": 1,
                      "used": 3}],
     "buffer": {"pending_keys": 5},
     "digests": {"timelines": 2, "due": 1},
     "cron": {"lock_holder": "vigil@fixture.1",
              "entries": [{"name": "flush-buffers", "task": "vigil.flush",
                           "next": 4102444800.0}]}},
    {"node": {"id": "vigil@gone.2", "inspect": "127.0.0.1:9"},
     "reachable": False, "error": "connection refused"}]}


def console_sections():
    """Every section of the fixture drawn, with vigil's own page and files
    (only the cluster answer is replaced, inside the browser)."""
    if not NODE_JS or not os.path.exists(CHROMIUM):
        skip("node or chromium is not installed (scripts/setup.sh)")
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "js-deps.sh")],
                   check=True, timeout=240, stdout=subprocess.DEVNULL)
    path = os.path.join(str(node().dir), "fixture.json")
    with open(path, "w") as f:
        json.dump(FIXTURE, f)
    shot = os.path.join(artifacts_dir(), "console-sections.png")
    base = f"http://127.0.0.1:{node().port}/console/"
    proc = subprocess.run([NODE_JS, "console_run.mjs", "--fixture", path,
                           base, TOKEN, shot], cwd=JS, capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    assert proc.returncode == 0 and lines, \
        f"console_run.mjs: {proc.returncode} {proc.stdout[-2000:]} " \
        f"{proc.stderr[-2000:]}"
    done = json.loads(lines[-1])
    assert done.get("event") == "done", done
    assert done["nodes"] == 2, done
    assert len(done["unreachable"]) == 1 and \
        "connection refused" in done["unreachable"][0], done["unreachable"]
    for panel in ("Queues", "Dead letters", "Buffer", "Digests", "Quotas",
                  "Rate limits", "Cron"):
        assert panel in done["panels"], (panel, done["panels"])
    assert done["not_answering"] == 1, done
    # Two snapshots 10 processed apart: the worker has a rate.
    assert any(r not in ("", "–", "0") for r in done["rates"]), done["rates"]
    assert len(done["queues"]) == 2, done["queues"]
    assert done["lock_holder"] == ["vigil@fixture.1"], done
    assert "12 / 100" in done["usage"] and "3 / 10" in done["usage"], done
    assert any("flush-buffers" in r for r in done["cron"]), done["cron"]
    assert "5" in done["buffer_digests"], done["buffer_digests"]
    assert done["console_errors"] == [], done["console_errors"]
    assert done["page_errors"] == [], done["page_errors"]
    assert done["external_requests"] == [], done["external_requests"]
    assert os.path.getsize(shot) > 10000, f"{shot} is too small"


CHECKS = [
    ("console_assets", console_assets),
    ("console_api_401", console_api_401),
    ("console_api_cluster", console_api_cluster),
    ("console_cluster_nodes", console_cluster_nodes),
    ("console_browser", console_browser),
    ("console_sections", console_sections),
    ("console_node_killed", console_node_killed),
]


if __name__ == "__main__":
    sys.exit(run_node_checks(CHECKS, lambda: NODE))
