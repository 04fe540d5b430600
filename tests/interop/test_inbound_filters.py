#!/usr/bin/python3
"""A project's inbound filters (config `projects[].filters`, Relay's rules)
against `vigil run node`, through the real HTTP server.

Project acme/backend filters releases "0.9.*", error messages
"*ConnectionResetError*", the addresses 203.0.113.0/24 (the client's, read
from X-Forwarded-For: the node trusts it here), localhost and web crawlers.
Events each filter matches are posted to /store/ and /envelope/ beside
events no filter matches, then:

* filtered_answered_not_stored: every filtered event is answered 200 with
  its id, as Sentry does, and is not stored (read after a later, unfiltered
  event of the same connection is readable: the pipeline passed them);
  the unfiltered ones are stored.
* filtered_counted: the project's stat=blacklisted series counts the
  filtered events and stat=received the accepted ones; the organization's
  stats show them under the outcome "filtered"; the issue list has no
  issue made from a filtered event.
* other_project_unfiltered: the same events sent to acme/limited (no
  filters) are accepted.

Run: /usr/bin/python3 tests/interop/test_inbound_filters.py (VIGIL_BIN:
the binary). Prints PASS/FAIL lines.
"""

import json
import sys
import time
import uuid

from harness import wait_until
from ingest_common import KEY_A, KEY_L, Node, run_node_checks, wait_for_event

NODE = None
TIMEOUT = 20

FILTERS = """
    filters:
      localhost: true
      web-crawlers: true
      releases: ["0.9.*"]
      error-messages: ["*ConnectionResetError*"]
      blacklisted-ips: ["203.0.113.0/24"]
"""

PASSING_IP = "198.51.100.7"


def node():
    global NODE
    if NODE is None:
        n = Node("filters-node", extra="web.trust-forwarded-for: true\n")
        text = n.config.read_text()
        marker = "    slug: backend\n"
        assert marker in text
        n.config.write_text(text.replace(marker, marker + FILTERS.lstrip("\n")))
        NODE = n.start()
    return NODE


def event(title, **fields):
    ev = {"event_id": uuid.uuid4().hex, "message": title, "level": "error",
          "platform": "python", "fingerprint": [title],
          "user": {"ip_address": PASSING_IP},
          "request": {"url": "https://shop.example.com/cart",
                      "headers": {"User-Agent": "Mozilla/5.0 (X11; Linux)"}}}
    ev.update(fields)
    return ev


# Each filter, with an event it drops and how the event is sent.
def filtered_events():
    reset = {"values": [{"type": "ConnectionResetError",
                         "value": "peer went away"}]}
    return [
        ("release-version", event("filtered release", release="0.9.4"), {}),
        ("error-message", event("filtered message", exception=reset), {}),
        ("ip-address", event("filtered address"),
         {"X-Forwarded-For": "203.0.113.40"}),
        ("localhost", event("filtered localhost",
                            user={"ip_address": "127.0.0.1"}), {}),
        ("localhost-url", event("filtered localhost url", request={
            "url": "http://localhost:8000/pay"}), {}),
        ("web-crawlers", event("filtered crawler", request={
            "url": "https://shop.example.com/",
            "headers": {"User-Agent": "Mozilla/5.0 (compatible; "
                                      "Googlebot/2.1)"}}), {}),
    ]


def passing_events():
    return [event("kept release", release="1.0.0"),
            event("kept message", exception={"values": [
                {"type": "ValueError", "value": "bad cart"}]})]


def envelope_of(ev):
    header = json.dumps({"event_id": ev["event_id"]})
    item = json.dumps(ev)
    return f'{header}\n{{"type": "event", "length": {len(item.encode())}}}' \
           f'\n{item}\n'


SENT = {}


def send():
    if SENT:
        return SENT
    SENT["since"] = int(time.time()) // 86400 * 86400
    n = node()
    SENT["filtered"] = []
    for name, ev, headers in filtered_events():
        status, _, body = n.store(ev, headers=headers)
        assert status == 200, f"{name}: {status} {body[:300]}"
        assert json.loads(body)["id"] == ev["event_id"], body
        SENT["filtered"].append(ev)
    # One through an envelope.
    ev = event("filtered envelope release", release="0.9.0")
    status, _, body = n.envelope(envelope_of(ev))
    assert status == 200, f"envelope: {status} {body[:300]}"
    SENT["filtered"].append(ev)
    SENT["kept"] = []
    for ev in passing_events():
        status, _, body = n.store(ev, headers={"X-Forwarded-For": PASSING_IP})
        assert status == 200, f"kept: {status} {body[:300]}"
        SENT["kept"].append(ev)
    SENT["until"] = int(time.time()) + 1
    return SENT


def check_filtered_answered_not_stored():
    sent = send()
    # The unfiltered events were sent last: once they are readable, the
    # pipeline has handled every event before them.
    for ev in sent["kept"]:
        wait_for_event(node(), ev["event_id"], TIMEOUT)
    for ev in sent["filtered"]:
        status, body = node().event(ev["event_id"])
        assert status == 404, (ev["message"], status, body)


def check_filtered_counted():
    sent = send()
    rng = f"since={sent['since']}&until={sent['until']}"
    n_filtered = len(sent["filtered"])
    n_kept = len(sent["kept"])

    def series_total(stat):
        status, body = node().api(
            f"projects/acme/backend/stats/?{rng}&stat={stat}&resolution=10s")
        assert status == 200, (stat, status, body)
        return sum(c for _, c in body)
    wait_until(lambda: series_total("blacklisted") == n_filtered, TIMEOUT,
               f"{n_filtered} blacklisted in the project's stats")
    # Sentry's received counts every event that arrived, filtered or not;
    # an accepted-only count is n_kept.
    assert series_total("received") in (n_kept, n_kept + n_filtered), \
        series_total("received")
    assert series_total("rejected") == 0

    def outcomes():
        status, doc = node().api(f"organizations/acme/stats/?{rng}")
        assert status == 200, (status, doc)
        return {(g["by"]["category"], g["by"]["outcome"]):
                g["totals"]["sum(quantity)"] for g in doc["groups"]}
    got = wait_until(
        lambda: (lambda t: t if t.get(("error", "filtered")) == n_filtered
                 and t.get(("error", "accepted")) == n_kept else None)(
            outcomes()),
        TIMEOUT, "the organization's filtered and accepted outcomes")
    assert ("error", "rate_limited") not in got, got
    titles = {i["title"] for i in node().issues()}
    assert titles == {"kept release", "ValueError: bad cart"}, titles


def check_other_project_unfiltered():
    send()
    ev = event("unfiltered elsewhere", release="0.9.4")
    status, _, body = node().store(ev, key=KEY_L, project=2)
    assert status == 200, (status, body)
    wait_for_event(node(), ev["event_id"], TIMEOUT, project="limited")


def main():
    return run_node_checks([
        ("filtered_answered_not_stored", check_filtered_answered_not_stored),
        ("filtered_counted", check_filtered_counted),
        ("other_project_unfiltered", check_other_project_unfiltered),
    ], lambda: NODE)


if __name__ == "__main__":
    sys.exit(main())
