#!/usr/bin/python3
"""vigil's internal metrics (metrics.backend) against real receivers, after
events sent through a real `vigil run node` (POSTed to the store endpoint;
their post_process tasks run on the node's workers):

* statsd_datagrams: datagrams captured on a UDP socket parse as pystatsd's
  lines (`key:value|c|ms|g`, no tags), each at most 1432 bytes, and
  vigil.events.processed sums to the events sent.
* dogstatsd_datagrams: DogStatsD lines (`|#k:v`, the constant tag of
  metrics.options tags on every line, `|d` for distributions); jobs.finished
  tagged with the task and its status; every directory actor's mailbox
  gauge tagged with its name.
* statsd_daemon: the real statsd daemon (npm's statsd, tests/js) counts
  them: its management interface's `counters` shows
  vigil.events.processed, and no bad lines.
* datadog_series: POST /api/v1/series to a local capture server, with the
  DD-API-KEY header; the series hold the events; the key is in no line of
  the node's log.
* prometheus_page: GET /metrics parsed by prometheus_client's text parser
  (Debian's python3-prometheus-client): counters, gauges, a histogram with
  buckets, _sum and _count; `promtool check metrics` (Debian's prometheus)
  accepts it.
* prometheus_worker_bind: `vigil run worker` serves /metrics on
  metrics.options bind.
* statsd_missing_daemon: with nothing listening on the statsd port, events
  are still accepted and the node exits cleanly.

Every wait is bounded and waits for a condition; nothing asserts on time.
Run: /usr/bin/python3 tests/interop/test_metrics.py (VIGIL_BIN: the binary).
"""

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid

from harness import Proc, free_port, run_checks, skip, tmp_root, vigil_bin, \
    wait_until
from ingest_common import Node

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
JS = os.path.join(ROOT, "tests", "js")
EVENTS = 5
TIMEOUT = 30
STATSD_LINE = re.compile(
    r"^([^:|@#\s]+):(-?[0-9.e+-]+)\|(c|ms|g)(\|@([0-9.e-]+))?$")
DOG_LINE = re.compile(
    r"^([^:|@#\s]+):(-?[0-9.e+-]+)\|(c|ms|g|d)(\|@([0-9.e-]+))?"
    r"(\|#([^|\s]+))?$")


def metrics_extra(backend, options="{}", interval=0.2):
    return (f"metrics.backend: {backend}\n"
            f"metrics.options: {options}\n"
            f"metrics.interval: {interval}\n")


def send_events(node, n=EVENTS):
    for i in range(n):
        status, _, body = node.store({"event_id": uuid.uuid4().hex,
                                      "message": f"metrics {i}",
                                      "fingerprint": ["metrics"]})
        assert status == 200, (status, body)


class UdpSink:
    """Collects the datagrams sent to a free UDP port."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.datagrams = []
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.datagrams.append(data)

    def lines(self):
        with self.lock:
            return [line for d in self.datagrams
                    for line in d.decode().split("\n")]

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def counter_sum(lines, regex, key):
    """The sum of counter `key`'s values, each scaled by its rate."""
    total = 0.0
    for line in lines:
        m = regex.match(line)
        if m and m.group(1) == key and m.group(3) == "c":
            rate = float(m.group(5)) if m.group(5) else 1.0
            total += float(m.group(2)) / rate
    return total


def with_node(name, extra, body, cmd="node"):
    node = Node(name, extra=extra)
    if cmd != "node":
        raise AssertionError("use run_worker for other modes")
    node.start()
    try:
        return body(node)
    finally:
        rc = node.stop()
        assert rc == 0, f"{name} exit status {rc}\n{node.proc.log_tail()}"


def check_statsd_datagrams():
    sink = UdpSink()
    try:
        def body(node):
            send_events(node)
            wait_until(lambda: counter_sum(sink.lines(), STATSD_LINE,
                                           "vigil.events.processed")
                       >= EVENTS, TIMEOUT, "vigil.events.processed in the "
                       "datagrams")
            wait_until(lambda: any(line.startswith("vigil.jobs.duration:")
                                   for line in sink.lines()), TIMEOUT,
                       "a jobs.duration timing")
        with_node("metrics-statsd",
                  metrics_extra("statsd", f"{{port: {sink.port}}}"), body)
        lines = sink.lines()
        bad = [line for line in lines if not STATSD_LINE.match(line)]
        assert not bad, f"not statsd lines: {bad[:5]}"
        with sink.lock:
            sizes = [len(d) for d in sink.datagrams]
        assert max(sizes) <= 1432, max(sizes)
        assert counter_sum(lines, STATSD_LINE,
                           "vigil.events.processed") == EVENTS
        # Distributions fall back to timings on statsd.
        assert any(line.startswith("vigil.ingest.batch_size:")
                   and line.split("|")[1] == "ms" for line in lines), lines
    finally:
        sink.close()


def check_dogstatsd_datagrams():
    sink = UdpSink()
    try:
        def finished_tagged():
            for line in sink.lines():
                m = DOG_LINE.match(line)
                if m and m.group(1) == "vigil.jobs.finished" and m.group(7):
                    tags = m.group(7).split(",")
                    if "status:success" in tags and any(
                            t.startswith("task:") for t in tags):
                        return True
            return False

        def body(node):
            send_events(node)
            wait_until(lambda: counter_sum(sink.lines(), DOG_LINE,
                                           "vigil.events.processed")
                       >= EVENTS, TIMEOUT, "vigil.events.processed")
            wait_until(finished_tagged, TIMEOUT,
                       "jobs.finished with task and status tags")
            wait_until(lambda: any(
                line.startswith("vigil.actors.mailbox_size:")
                and "actor:ingest.actor" in line for line in sink.lines()),
                TIMEOUT, "the ingest actor's mailbox gauge")
        with_node("metrics-dogstatsd",
                  metrics_extra("dogstatsd", f"{{port: {sink.port}, "
                                "tags: {env: interop}}"), body)
        lines = sink.lines()
        bad = [line for line in lines if not DOG_LINE.match(line)]
        assert not bad, f"not DogStatsD lines: {bad[:5]}"
        assert all(line.endswith("env:interop") for line in lines), \
            [line for line in lines if not line.endswith("env:interop")][:5]
        assert any(DOG_LINE.match(line).group(3) == "d"
                   and line.startswith("vigil.ingest.batch_size:")
                   for line in lines), "no |d distribution"
    finally:
        sink.close()


def statsd_counters(mgmt_port):
    """The daemon's counters, from its management interface."""
    with socket.create_connection(("127.0.0.1", mgmt_port), timeout=5) as s:
        s.sendall(b"counters\n")
        data = b""
        while b"END" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    # util.inspect's object literal: { 'name': 3, ... }
    return {k: float(v) for k, v in re.findall(
        r"'([^']+)':\s*(-?[0-9.e+-]+)", data.decode())}


def check_statsd_daemon():
    binary = os.path.join(JS, "node_modules", "statsd", "bin", "statsd")
    if not os.path.exists(binary):
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "js-deps.sh")],
                       check=True, timeout=240)
    port, mgmt = free_port(), free_port()
    conf = tmp_root() / "statsd-config.js"
    # Flushed once an hour: the counters add up until the test reads them.
    conf.write_text(json.dumps({
        "port": port, "address": "127.0.0.1", "mgmt_port": mgmt,
        "mgmt_address": "127.0.0.1", "flushInterval": 3600000,
        "backends": ["./backends/console"]}))
    daemon = Proc("statsd-daemon", [shutil.which("node") or "node", binary,
                                    str(conf)], cwd=os.path.join(
                                        JS, "node_modules", "statsd"))
    try:
        def answering():
            try:
                return statsd_counters(mgmt) is not None
            except OSError:
                return False
        wait_until(answering, TIMEOUT, "statsd's management port",
                   procs=[daemon])

        def body(node):
            send_events(node)
            wait_until(lambda: statsd_counters(mgmt).get(
                "vigil.events.processed", 0) >= EVENTS, TIMEOUT,
                "statsd counting vigil.events.processed", procs=[daemon])
        with_node("metrics-statsd-daemon",
                  metrics_extra("statsd", f"{{port: {port}}}"), body)
        counters = statsd_counters(mgmt)
        assert counters["vigil.events.processed"] == EVENTS, counters
        assert counters.get("statsd.bad_lines_seen", 0) == 0, counters
        assert counters.get("vigil.jobs.started", 0) >= 1, counters
    finally:
        daemon.stop()


class Capture(http.server.BaseHTTPRequestHandler):
    posts = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Capture.lock:
            Capture.posts.append((self.path, dict(self.headers.items()),
                                  body))
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args):
        pass


def series_sum(metric):
    total = 0.0
    with Capture.lock:
        posts = list(Capture.posts)
    for _, _, body in posts:
        for s in json.loads(body)["series"]:
            if s["metric"] == metric:
                total += sum(p[1] for p in s["points"])
    return total


def check_datadog_series():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = "dd-api-key-" + uuid.uuid4().hex
    try:
        node_box = []

        def body(node):
            node_box.append(node)
            send_events(node)
            wait_until(lambda: series_sum("vigil.events.processed")
                       >= EVENTS, TIMEOUT, "the series of the events")
        with_node("metrics-datadog",
                  metrics_extra("datadog",
                                f"{{api-key: {key}, app-key: app-{key}, url: "
                                f"'http://127.0.0.1:{server.server_port}', "
                                "tags: ['env:interop']}", interval=0.5),
                  body)
        with Capture.lock:
            posts = list(Capture.posts)
        for path, headers, raw in posts:
            assert path == "/api/v1/series", path
            lower = {k.lower(): v for k, v in headers.items()}
            assert lower.get("dd-api-key") == key, headers
            assert lower.get("content-type") == "application/json", headers
            for s in json.loads(raw)["series"]:
                assert s["type"] in ("count", "gauge", "rate"), s
                assert "env:interop" in s["tags"], s
                assert isinstance(s["points"][0][0], int), s
        assert series_sum("vigil.events.processed") == EVENTS
        log = node_box[0].proc.log_path.read_text(errors="replace")
        assert key not in log, "the api-key is in the node's log"
    finally:
        server.shutdown()
        server.server_close()


def scrape(port, path="/metrics"):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), \
            resp.read().decode()
    finally:
        conn.close()


def families(text):
    from prometheus_client.parser import text_string_to_metric_families
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_value(fams, family, sample, **labels):
    f = fams.get(family)
    if f is None:
        return None
    for s in f.samples:
        if s.name == sample and all(s.labels.get(k) == v
                                    for k, v in labels.items()):
            return s.value
    return None


def check_prometheus_page():
    try:
        import prometheus_client.parser  # noqa: F401
    except ImportError:
        skip("python3-prometheus-client is not installed")
    promtool = shutil.which("promtool")
    if not promtool:
        skip("promtool (Debian's prometheus) is not installed")
    page = {}

    def body(node):
        send_events(node)

        def ready():
            status, ctype, text = scrape(node.port)
            assert status == 200, (status, text[:300])
            fams = families(text)
            done = (sample_value(fams, "vigil_events_processed",
                                 "vigil_events_processed_total") == EVENTS
                    and sample_value(fams, "vigil_jobs_duration_seconds",
                                     "vigil_jobs_duration_seconds_count")
                    and sample_value(fams, "vigil_actors_mailbox_size",
                                     "vigil_actors_mailbox_size",
                                     actor="ingest.actor") is not None)
            if done:
                page.update(text=text, ctype=ctype, fams=fams)
            return done
        wait_until(ready, TIMEOUT, "the events, a job timing and the "
                   "actors' gauges on /metrics")
    with_node("metrics-prometheus", metrics_extra("prometheus"), body)
    assert page["ctype"].startswith("text/plain; version=0.0.4"), page["ctype"]
    fams = page["fams"]
    assert fams["vigil_events_processed"].type == "counter"
    assert fams["vigil_actors_mailbox_size"].type == "gauge"
    hist = fams["vigil_jobs_duration_seconds"]
    assert hist.type == "histogram", hist.type
    names = {s.name for s in hist.samples}
    assert {"vigil_jobs_duration_seconds_bucket",
            "vigil_jobs_duration_seconds_sum",
            "vigil_jobs_duration_seconds_count"} <= names, names
    inf = [s for s in hist.samples if s.labels.get("le") == "+Inf"]
    count = [s for s in hist.samples
             if s.name == "vigil_jobs_duration_seconds_count"]
    assert sum(s.value for s in inf) == sum(s.value for s in count)
    proc = subprocess.run([promtool, "check", "metrics"], input=page["text"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, \
        f"promtool check metrics: {proc.stdout}{proc.stderr}"


def check_prometheus_worker_bind():
    bind = free_port()
    node = Node("metrics-worker",
                extra=metrics_extra("prometheus",
                                    f"{{bind: '127.0.0.1:{bind}'}}"))
    proc = Proc("metrics-worker", [vigil_bin(), "--config", str(node.config),
                                   "run", "worker", "-c", "1"],
                cwd=str(node.dir))
    try:
        def served():
            try:
                status, _, text = scrape(bind)
            except OSError:
                return False
            # The task supervisor joins the directory after the metrics
            # actor's first poll may have run: wait for its gauges.
            return status == 200 and 'service="tasks"' in text and text
        text = wait_until(served, TIMEOUT, "the tasks' gauges on /metrics "
                          "on metrics.options bind", procs=[proc])
        fams = families(text)
        assert sample_value(fams, "vigil_actors_mailbox_size",
                            "vigil_actors_mailbox_size",
                            service="tasks") is not None, text[:2000]
        status, _, _ = scrape(bind, "/other")
        assert status == 404, status
    finally:
        rc = proc.stop(timeout=20)
        assert rc == 0, f"worker exit status {rc}\n{proc.log_tail()}"


def check_statsd_missing_daemon():
    port = free_port()  # a UDP port with (very likely) nothing on it

    def body(node):
        send_events(node, 20)
        assert node.health()
    with_node("metrics-nodaemon", metrics_extra("statsd", f"{{port: {port}}}"),
              body)


def main():
    return run_checks([
        ("statsd_datagrams", check_statsd_datagrams),
        ("dogstatsd_datagrams", check_dogstatsd_datagrams),
        ("statsd_daemon", check_statsd_daemon),
        ("datadog_series", check_datadog_series),
        ("prometheus_page", check_prometheus_page),
        ("prometheus_worker_bind", check_prometheus_worker_bind),
        ("statsd_missing_daemon", check_statsd_missing_daemon),
    ])


if __name__ == "__main__":
    sys.exit(main())
