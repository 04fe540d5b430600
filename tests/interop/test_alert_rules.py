#!/usr/bin/python3
"""Alert rules (config `projects[].alert-rules`) and the issue status API
against `vigil run node`, events posted over HTTP.

Project acme/backend has these rules (docs/ALERTS.md):
  default   first_seen (Sentry's default rule)
  regressed regression
  busy      event_frequency {value: 3, interval: 1h}
  loud      every_event, filter level >= fatal
  marker    every_event, filter tag marker = yes
  marker2   every_event, filter tag marker2 = yes (a second fence)

Firings are read from the node's log ("alert rule {id} fired for issue {g}
(project {p}) by event {e}"). The node runs one worker, so post_process
tasks run in the order their events were stored: a check that a rule did
NOT fire sends a later event that fires `marker` for the same issue, waits
for that line, and then looks at what came before it (never an absence
after a sleep).

* status_api: PUT /api/0/issues/{id}/ sets resolved, ignored, unresolved
  and answers the issue; a bad body or status is 400 with a detail; an
  unknown issue 404.
* first_seen_once: each new issue fires `default` once, by its first event.
* regression_after_resolve: an event of a resolved issue reopens it and
  fires `regressed`.
* event_frequency_passes: `busy` does not fire while the issue has 3
  events, fires once it has more, and only once (its frequency).
* level_filter_blocks: an error event does not fire `loud`, a fatal one
  does.
* postgresql_rules: first_seen, regression and the fence on a node whose
  event store is PostgreSQL (VIGIL_TEST_PG_URL, exported by
  tests/run_all.py; skipped without it).

Run: /usr/bin/python3 tests/interop/test_alert_rules.py (VIGIL_BIN: the
binary). Prints PASS/FAIL lines.
"""

import json
import os
import re
import sys
import uuid

from harness import Proc, skip, vigil_bin, wait_until
from ingest_common import TOKEN, Node, run_node_checks

NODE = None
TIMEOUT = 30

RULES = """
    alert-rules:
      - id: default
        label: Send a notification for new issues
        conditions: [first_seen]
      - id: regressed
        conditions: [regression]
      - id: busy
        conditions:
          - event_frequency: {value: 3, interval: 1h}
      - id: loud
        conditions: [every_event]
        filters:
          - level: {match: gte, level: fatal}
      - id: marker
        conditions: [every_event]
        filters:
          - tags: {key: marker, value: "yes"}
      - id: marker2
        conditions: [every_event]
        filters:
          - tags: {key: marker2, value: "yes"}
"""

FIRED = re.compile(r"alert rule (\S+) fired for issue (\d+) \(project (\d+)\)"
                   r" by event ([0-9a-f]{32})")


class OneWorkerNode(Node):
    """A node with one task worker: post_process runs in event order."""

    def start(self):
        self.proc = Proc(self.name, [vigil_bin(), "--config", str(self.config),
                                     "run", "node", "-c", "1"],
                         cwd=str(self.dir))
        wait_until(self.healthy, 30, f"{self.name} answering /_health/")
        return self


def node():
    global NODE
    if NODE is None:
        n = OneWorkerNode("alert-rules-node")
        text = n.config.read_text()
        marker = "    slug: backend\n"
        assert marker in text
        n.config.write_text(text.replace(marker, marker + RULES.lstrip("\n")))
        NODE = n.start()
    return NODE


def firings(n=None):
    """Every firing logged so far, in order: (rule, issue, event)."""
    return [(m.group(1), int(m.group(2)), m.group(4))
            for m in FIRED.finditer((n or node()).proc.log_text())]


def send(title, level="error", tags=None, n=None):
    ev = {"event_id": uuid.uuid4().hex, "message": title, "level": level,
          "platform": "python", "fingerprint": [title]}
    if tags:
        ev["tags"] = tags
    status, _, body = (n or node()).store(ev)
    assert status == 200, f"{title}: {status} {body[:300]}"
    return ev["event_id"]


def issue_id(title, n=None):
    def found():
        for i in (n or node()).issues():
            if i["title"] == title:
                return int(i["id"])
        return None
    return wait_until(found, TIMEOUT, f"issue '{title}' listed")


def wait_fired(rule, issue, event=None, n=None):
    """Waits for `rule` to fire for `issue` (by `event` if given); returns
    the firings logged up to and including that one."""
    def seen():
        fs = firings(n)
        for i, (r, g, e) in enumerate(fs):
            if r == rule and g == issue and (event is None or e == event):
                return fs[:i + 1]
        return None
    return wait_until(seen, TIMEOUT,
                      f"rule {rule} firing for issue {issue}"
                      + (f" by event {event}" if event else ""),
                      procs=[(n or node()).proc])


def fence(title, issue, n=None, rule="marker"):
    """Sends an event that fires `rule` (marker or marker2: once per issue
    each) for the issue; returns every firing logged before it: all events
    sent earlier were processed, and the fence's own firings of the rules
    listed before `rule` are there too."""
    ev = send(title, tags={rule: "yes"}, n=n)
    return wait_fired(rule, issue, ev, n=n)[:-1]


def put_status(issue, body, n=None):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    status, _, data = (n or node()).request(
        "PUT", f"/api/0/issues/{issue}/", raw,
        {"Authorization": f"Bearer {TOKEN}",
         "Content-Type": "application/json"})
    return status, (json.loads(data) if data else None)


def check_status_api():
    send("status api")
    g = issue_id("status api")
    for status in ("resolved", "ignored", "unresolved"):
        code, doc = put_status(g, {"status": status})
        assert code == 200, (code, doc)
        assert doc["id"] == str(g) and doc["status"] == status, doc
        code, got = node().api(f"issues/{g}/")
        assert code == 200 and got["status"] == status, (code, got)
    for bad in ({"status": "closed"}, {"status": 3}, {}, "[1]", "{not json"):
        code, doc = put_status(g, bad)
        assert code == 400, (bad, code, doc)
        assert isinstance(doc.get("detail"), str) and doc["detail"], doc
    code, doc = put_status(987654321, {"status": "resolved"})
    assert code == 404 and "detail" in doc, (code, doc)
    code, doc = put_status("abc", {"status": "resolved"})
    assert code == 400, (code, doc)
    # Without the token: refused.
    status, _, _ = node().request("PUT", f"/api/0/issues/{g}/",
                                  json.dumps({"status": "resolved"}))
    assert status == 401, status


def check_first_seen_once():
    first = send("first seen")
    g = issue_id("first seen")
    wait_fired("default", g, first)
    for _ in range(3):
        send("first seen")
    before = fence("first seen", g)
    defaults = [f for f in before if f[0] == "default" and f[1] == g]
    assert defaults == [("default", g, first)], defaults
    # Another new issue fires it too.
    other = send("first seen, other")
    wait_fired("default", issue_id("first seen, other"), other)


def check_regression_after_resolve():
    send("regressing")
    g = issue_id("regressing")
    wait_fired("default", g)
    code, doc = put_status(g, {"status": "resolved"})
    assert code == 200 and doc["status"] == "resolved", (code, doc)
    again = send("regressing")
    wait_fired("regressed", g, again)
    code, doc = node().api(f"issues/{g}/")
    assert code == 200 and doc["status"] == "unresolved", (code, doc)
    # Unresolved again: the next event is no regression.
    send("regressing")
    before = fence("regressing", g)
    assert [f for f in before if f[0] == "regressed" and f[1] == g] == \
        [("regressed", g, again)], before


def check_event_frequency_passes():
    send("busy issue")
    g = issue_id("busy issue")
    send("busy issue")
    # Three events in all, the fence the third: the count (which may run
    # ahead of the task, never beyond the events sent) is not above 3.
    before = fence("busy issue", g)
    assert not [f for f in before if f[0] == "busy" and f[1] == g], before
    for _ in range(7):
        send("busy issue")
    fired = wait_fired("busy", g)[-1]
    # Later events pass the condition too; the rule's frequency (30 min)
    # holds them back.
    before = fence("busy issue", g, rule="marker2")
    busy = [f for f in before if f[0] == "busy" and f[1] == g]
    assert busy == [fired], busy


def check_level_filter_blocks():
    error_event = send("loud issue", level="error")
    g = issue_id("loud issue")
    fatal_event = send("loud issue", level="fatal")
    before = wait_fired("loud", g, fatal_event)
    # Had the error event fired it, the frequency would have held the
    # fatal one back: the error event did not pass the filter.
    assert not [f for f in before if f[0] == "loud" and f[2] == error_event], \
        before


def check_postgresql_rules():
    # The same rules with the event store on PostgreSQL (db.url): schema
    # version 5, the GroupRuleStatus upsert and the reopening update.
    pg = os.environ.get("VIGIL_TEST_PG_URL")
    if not pg:
        skip("VIGIL_TEST_PG_URL is not set")
    on_pg = OneWorkerNode("alert-rules-pg-node", extra=f'db.url: "{pg}"\n')
    text = on_pg.config.read_text()
    on_pg.config.write_text(text.replace(
        "    slug: backend\n", "    slug: backend\n" + RULES.lstrip("\n")))
    on_pg.start()
    try:
        title = "on postgres " + uuid.uuid4().hex
        first = send(title, n=on_pg)
        g = issue_id(title, n=on_pg)
        wait_fired("default", g, first, n=on_pg)
        code, doc = put_status(g, {"status": "resolved"}, n=on_pg)
        assert code == 200 and doc["status"] == "resolved", (code, doc)
        again = send(title, n=on_pg)
        wait_fired("regressed", g, again, n=on_pg)
        send(title, n=on_pg)
        before = fence(title, g, n=on_pg)
        mine = [f[0] for f in before
                if f[1] == g and f[0] in ("default", "regressed")]
        assert mine == ["default", "regressed"], before
    finally:
        assert on_pg.stop() == 0


def main():
    return run_node_checks([
        ("status_api", check_status_api),
        ("first_seen_once", check_first_seen_once),
        ("regression_after_resolve", check_regression_after_resolve),
        ("event_frequency_passes", check_event_frequency_passes),
        ("level_filter_blocks", check_level_filter_blocks),
        ("postgresql_rules", check_postgresql_rules),
    ], lambda: NODE)


if __name__ == "__main__":
    sys.exit(main())
