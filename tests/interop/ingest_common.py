"""Helpers for the ingestion tests: a vigil node with organizations,
projects and DSN keys in its config, and small HTTP clients.

Run the tests with /usr/bin/python3 (Debian's python3-sentry-sdk)."""

import gzip
import http.client
import json
import os
import signal
import socket
import threading
import time
import urllib.request
import uuid

from harness import Proc, free_port, run_checks, tmp_root, vigil_bin, wait_until

TOKEN = "test-api-token-0123456789"
# project 1 (org acme): key A open, key D disabled; project 2: key L limited.
KEY_A = "a" * 32
KEY_D = "d" * 32
KEY_L = "1" * 32
# project 3 (org acme, slug sdk): key C limited like L, for the category
# checks (they must not disturb project 2's counts).
KEY_C = "c" * 32
LIMIT = 5


def node_config(port, data_dir, extra=""):
    return f"""
web.bind: "127.0.0.1:{port}"
web.threads: 2
web.read-timeout: 2
web.idle-timeout: 5
web.max-body-size: 262144
web.max-event-size: 131072
web.max-envelope-size: 262144
web.max-header-size: 8192
node.data-dir: "{data_dir}"
api.token: "{TOKEN}"
log.level: info
organizations:
  - {{id: 1, slug: acme}}
projects:
  - id: 1
    organization: 1
    slug: backend
    keys:
      - {{id: 1, public: "{KEY_A}"}}
      - {{id: 2, public: "{KEY_D}", enabled: false}}
  - id: 2
    organization: 1
    slug: limited
    keys:
      - id: 3
        public: "{KEY_L}"
        rate-limit: {{count: {LIMIT}, window: 3600}}
  - id: 3
    organization: 1
    slug: sdk
    keys:
      - id: 4
        public: "{KEY_C}"
        rate-limit: {{count: {LIMIT}, window: 3600}}
{extra}
"""


class Node:
    """A `vigil run node` on a free port with its own data directory."""

    def __init__(self, name, data_dir=None, extra="", port=None):
        self.port = port or free_port()
        self.dir = tmp_root() / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir or (self.dir / "data")
        self.config = self.dir / "config.yml"
        self.config.write_text(node_config(self.port, self.data_dir, extra))
        self.name = name
        self.proc = None

    def start(self):
        self.proc = Proc(self.name, [vigil_bin(), "--config", str(self.config),
                                     "run", "node", "-c", "2"],
                         cwd=str(self.dir))
        wait_until(self.healthy, 30, f"{self.name} answering /_health/")
        return self

    def healthy(self):
        if not self.proc.alive():
            raise AssertionError(f"{self.name} exited:\n{self.proc.log_tail()}")
        try:
            status, _, _ = self.request("GET", "/_health/")
            return status == 200
        except OSError:
            return False

    def dsn(self, key, project):
        return f"http://{key}@127.0.0.1:{self.port}/{project}"

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict(resp.getheaders()), data
        finally:
            conn.close()

    def api(self, path):
        status, _, data = self.request(
            "GET", "/api/0/" + path,
            headers={"Authorization": f"Bearer {TOKEN}"})
        return status, (json.loads(data) if data else None)

    def event(self, event_id, org="acme", project="backend"):
        return self.api(f"projects/{org}/{project}/events/{event_id}/")

    def issues(self, org="acme", project="backend"):
        status, body = self.api(f"projects/{org}/{project}/issues/")
        assert status == 200, f"issues: {status} {body}"
        return body

    def envelope(self, body, key=KEY_A, project=1, headers=None):
        """POSTs a raw envelope (bytes or str)."""
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": "application/x-sentry-envelope",
             "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}, "
                              "sentry_client=vigil-test/1.0"}
        h.update(headers or {})
        return self.request("POST", f"/api/{project}/envelope/", body, h)

    def health(self):
        status, _, data = self.request("GET", "/_health/")
        assert status == 200, f"/_health/: {status} {data[:300]}"
        return json.loads(data)

    def store(self, event, key=KEY_A, project=1, gzip_body=False,
              headers=None):
        body = json.dumps(event).encode()
        h = {"Content-Type": "application/json",
             "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}, "
                              "sentry_client=vigil-test/1.0"}
        if gzip_body:
            body = gzip.compress(body)
            h["Content-Encoding"] = "gzip"
        h.update(headers or {})
        return self.request("POST", f"/api/{project}/store/", body, h)

    def stop(self):
        if self.proc:
            return self.proc.stop(timeout=20)
        return None


def wait_for_event(node, event_id, timeout=10, **kw):
    """The event as the read API returns it, waiting until it is there."""
    found = {}

    def there():
        status, body = node.event(event_id, **kw)
        if status == 200:
            found["body"] = body
            return True
        return False
    wait_until(there, timeout, f"event {event_id} readable")
    return found["body"]


def raw_exchange(port, data, read_timeout=10, report_close=False):
    """Sends raw bytes, returns what the server answered before closing
    (or before read_timeout); with report_close, (answer, closed): closed
    is True when the server closed the connection (or reset it) rather
    than read_timeout ending the wait."""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + read_timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
    return (out, closed) if report_close else out


def status_of(raw):
    """The status code of a raw HTTP answer, or None."""
    if not raw.startswith(b"HTTP/1."):
        return None
    return int(raw.split(b" ", 2)[1])


def run_node_checks(checks, current_node):
    """run_checks, then stops the node the checks shared (current_node()
    returns it, or None if no check started it); an unclean exit of the
    node fails the run."""
    try:
        return run_checks(checks)
    finally:
        node = current_node()
        if node is not None:
            rc = node.stop()
            if rc != 0:
                print(f"FAIL node_clean_exit: exit status {rc}\n"
                      f"{node.proc.log_tail()}", flush=True)


def burst_body(event_id, title="burst"):
    """An error event of the issue `title`, padded to about 1.5 kB."""
    return json.dumps({"event_id": event_id, "message": title,
                       "fingerprint": [title],
                       "extra": {"pad": "x" * 1500}})


def _burst_poster(port, body, sent, answered, stop, errors):
    """Posts events on one keep-alive connection until `stop` or the node
    is gone; ids go to `sent` before posting and to `answered` on a 200."""
    auth = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={KEY_A}",
            "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        event_id = uuid.uuid4().hex
        sent.append(event_id)
        try:
            conn.request("POST", "/api/1/store/", body(event_id), auth)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            return  # the node is gone
        if resp.status == 200:
            answered.append(json.loads(data)["id"])
        else:
            errors.append((resp.status, data[:200]))


def burst_then_kill(node, want, body=burst_body, sent=None):
    """Posts from 8 threads (project 1, key A) until `want` events were
    answered, kills the node with SIGKILL mid-burst, and returns the ids
    answered 200; `sent`, when given, gets every id posted."""
    sent = [] if sent is None else sent
    answered, errors = [], []
    stop = threading.Event()
    threads = [threading.Thread(target=_burst_poster,
                                args=(node.port, body, sent, answered, stop,
                                      errors))
               for _ in range(8)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(answered) >= want, 60,
                   f"{want} answered events")
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.expected_exit = True
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    node.proc.wait(10)
    assert not errors, f"non-200 answers before the kill: {errors[:5]}"
    return list(answered)
