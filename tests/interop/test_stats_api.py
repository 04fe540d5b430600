#!/usr/bin/python3
"""The stats API and the group counts after events from the real Python
Sentry SDK (Debian's python3-sentry-sdk) against `vigil run node`.

The SDK sends six errors of one fingerprint to project 1 (acme/backend)
from three distinct users (an id, an email, an IP address), and eight to
project 2 (acme/limited), whose key takes five an hour: three of them get
429. Then the read API is read, waiting (bounded) until the figures are
there, never sleeping:

* group_counts: the issue list and GET /api/0/issues/{id}/ show the group
  as Sentry's serializer: count "6" (a string), times_seen 6, firstSeen
  and lastSeen in ISO 8601 with Z, stats {"24h": 24 hourly buckets}.
* stats_api_bad_input: 400 with a JSON detail for a bad stat, resolution,
  since > until, non-numeric since/until; 404 for an unknown project or
  organization.
* group_users_and_stats: userCount 3 and the 24 h stats summing to 6 (the
  TSDB's models 300 and 4, written by ingestion).
* project_stats: received/rejected of both projects, as
  [[timestamp, count], ...] at 10 s, 1 h and 1 d resolution.
* organization_stats: error accepted 11 and rate_limited 3 in the
  organization's totals; Sentry's v1 stat=received/rejected series.
* group_environments: an issue with two events in "staging" and one in
  "production" (the SDK's environment option): ?environment=staging gives
  count "2", production "1", an unknown name 404; the project's
  stat=generated series of staging sums to 2.

The last three read what ingestion records into the TSDB.

Run: /usr/bin/python3 tests/interop/test_stats_api.py (VIGIL_BIN: the
binary). Prints PASS/FAIL lines.
"""

import sys
import time

import sentry_sdk

from harness import wait_until
from ingest_common import KEY_A, KEY_L, LIMIT, Node, run_node_checks

NODE = None
TIMEOUT = 20

GROUP_EVENTS = 6
USERS = [{"id": "u-1"}, {"id": "u-1"}, {"email": "ann@example.com"},
         {"ip_address": "10.0.0.7"}, {"id": "u-1"},
         {"email": "ann@example.com"}]
LIMITED_SENT = LIMIT + 3
REJECTED = LIMITED_SENT - LIMIT

TSDB_GAP = "the TSDB does not hold the counts ingestion recorded"

SENT = {}


def node():
    global NODE
    if NODE is None:
        NODE = Node("stats-node").start()
    return NODE


def sdk(key, project, environment="production"):
    sentry_sdk.init(dsn=node().dsn(key, project), default_integrations=False,
                    auto_enabling_integrations=False, shutdown_timeout=5,
                    debug=False, environment=environment)
    return sentry_sdk.Hub.current.client


def send_events():
    """Sends the events once (the checks share them); returns the time
    range they were sent in."""
    if SENT:
        return SENT
    # Since the start of today: a boundary of every rollup. Sentry's series
    # walk back from `until` in whole buckets while not before `since`, so a
    # `since` inside a bucket would leave out that bucket when a boundary
    # falls between it and `until`.
    SENT["since"] = int(time.time()) // 86400 * 86400
    sdk(KEY_A, 1)
    for i, user in enumerate(USERS):
        with sentry_sdk.push_scope() as scope:
            scope.fingerprint = ["stats-api-group"]
            scope.user = user
            sentry_sdk.capture_message(f"checkout failed #{i}",
                                       level="error")
        sentry_sdk.flush(timeout=10)
    # A fresh client per event: the SDK stops sending after a 429, and
    # each of these must reach the node to be counted as rejected.
    for i in range(LIMITED_SENT):
        sdk(KEY_L, 2)
        with sentry_sdk.push_scope() as scope:
            scope.fingerprint = ["stats-api-limited"]
            scope.user = {"id": f"l-{i}"}
            sentry_sdk.capture_message(f"limited #{i}", level="error")
        sentry_sdk.flush(timeout=10)
    SENT["until"] = int(time.time()) + 1
    return SENT


def the_group(project="backend"):
    for g in node().issues(project=project):
        if g["title"].startswith("checkout failed") or \
                g["title"].startswith("limited"):
            return g
    return None


def api_ok(path):
    status, body = node().api(path)
    assert status == 200, f"{path}: {status} {body}"
    return body


def total(series):
    return sum(n for _, n in series)


def check_group_counts():
    send_events()
    group = wait_until(
        lambda: (lambda g: g if g and g["times_seen"] == GROUP_EVENTS
                 else None)(the_group()),
        TIMEOUT, f"the group counted {GROUP_EVENTS} times")
    assert group["count"] == str(GROUP_EVENTS), group
    assert isinstance(group["count"], str), group
    assert isinstance(group["userCount"], int), group
    for field in ("firstSeen", "lastSeen"):
        assert group[field].endswith("Z") and "T" in group[field], group
    assert group["firstSeen"] <= group["lastSeen"], group
    hours = group["stats"]["24h"]
    assert len(hours) == 24, hours
    assert all(b[0] - a[0] == 3600 for a, b in zip(hours, hours[1:])), hours
    assert hours[-1][0] == int(time.time()) // 3600 * 3600 or \
        hours[-1][0] == (int(time.time()) // 3600 - 1) * 3600, hours
    one = api_ok(f"issues/{group['id']}/")
    for field in ("id", "title", "count", "firstSeen", "lastSeen",
                  "times_seen"):
        assert one[field] == group[field], (field, one, group)
    assert len(one["stats"]["24h"]) == 24, one
    # The limited project stored its five.
    limited = wait_until(
        lambda: (lambda g: g if g and g["times_seen"] == LIMIT else None)(
            the_group("limited")),
        TIMEOUT, f"the limited group counted {LIMIT} times")
    assert limited["count"] == str(LIMIT), limited


def check_stats_api_bad_input():
    base = "projects/acme/backend/stats/"
    for query, needle in [
            ("stat=bogus", "Invalid stat"),
            ("resolution=7s", "Invalid resolution"),
            ("resolution=1w", "Invalid resolution"),
            ("since=20&until=10", "start must be before or equal to end"),
            ("until=tomorrow", "until must be a numeric timestamp"),
            ("since=abc", "since must be a numeric timestamp")]:
        status, body = node().api(f"{base}?{query}")
        assert status == 400, (query, status, body)
        assert needle in body["detail"], (query, body)
    status, body = node().api("organizations/acme/stats/?category=nope")
    assert status == 400 and "detail" in body, (status, body)
    status, body = node().api("projects/acme/nope/stats/")
    assert status == 404 and "detail" in body, (status, body)
    status, body = node().api("organizations/nope/stats/")
    assert status == 404 and "detail" in body, (status, body)
    status, body = node().api("issues/not-a-number/")
    assert status == 400 and "detail" in body, (status, body)


def check_group_users_and_stats():
    send_events()

    def counted():
        g = the_group()
        if g and g["userCount"] == 3 and \
                total(g["stats"]["24h"]) == GROUP_EVENTS:
            return g
        return None
    try:
        group = wait_until(counted, TIMEOUT,
                           "userCount 3 and 24h stats summing to "
                           f"{GROUP_EVENTS}")
    except AssertionError:
        raise AssertionError(f"{TSDB_GAP}; group: {the_group()}")
    one = api_ok(f"issues/{group['id']}/")
    assert one["userCount"] == 3, one
    assert total(one["stats"]["24h"]) == GROUP_EVENTS, one


def check_project_stats():
    sent = send_events()
    rng = f"since={sent['since']}&until={sent['until']}"

    def received(project):
        return total(api_ok(f"projects/acme/{project}/stats/?{rng}"
                            "&resolution=10s"))

    def counted():
        return received("backend") == GROUP_EVENTS and \
            received("limited") >= LIMIT
    try:
        wait_until(counted, TIMEOUT, "received counts in the project stats")
    except AssertionError:
        raise AssertionError(f"{TSDB_GAP}; received "
                             f"{received('backend')}/{received('limited')}")
    rejected = total(api_ok(f"projects/acme/limited/stats/?{rng}"
                            "&stat=rejected"))
    assert rejected == REJECTED, rejected
    # Sentry counts every event received, rejected or not; an accepted-only
    # count is LIMIT.
    assert received("limited") in (LIMITED_SENT, LIMIT), received("limited")
    # The same counts at every resolution, and the shape Sentry answers.
    for res in ("10s", "1h", "1d"):
        series = api_ok(f"projects/acme/backend/stats/?{rng}"
                        f"&resolution={res}")
        assert all(isinstance(p, list) and len(p) == 2 for p in series)
        assert total(series) == GROUP_EVENTS, (res, series)
    # Defaults: the last day in hours.
    day = api_ok("projects/acme/backend/stats/")
    assert len(day) == 24 and total(day) == GROUP_EVENTS, day
    assert total(api_ok("projects/acme/backend/stats/?stat=blacklisted")) \
        == 0


def check_organization_stats():
    sent = send_events()
    rng = f"since={sent['since']}&until={sent['until']}"
    accepted = GROUP_EVENTS + LIMIT

    def totals():
        doc = api_ok(f"organizations/acme/stats/?{rng}")
        return {(g["by"]["category"], g["by"]["outcome"]):
                g["totals"]["sum(quantity)"] for g in doc["groups"]}
    try:
        got = wait_until(
            lambda: (lambda t: t if t.get(("error", "accepted")) == accepted
                     and t.get(("error", "rate_limited")) == REJECTED
                     else None)(totals()),
            TIMEOUT, "the organization's outcomes")
    except AssertionError:
        raise AssertionError(f"{TSDB_GAP}; totals {totals()}")
    assert ("error", "filtered") not in got, got
    series = api_ok(f"organizations/acme/stats/?{rng}&stat=rejected")
    assert total(series) == REJECTED, series
    by_project = api_ok(f"organizations/acme/stats/?{rng}&stat=rejected"
                        "&group=project")
    assert total(by_project["2"]) == REJECTED, by_project
    assert total(by_project["1"]) == 0, by_project


def check_group_environments():
    since = int(time.time()) // 86400 * 86400
    for env in ("staging", "production", "staging"):
        sdk(KEY_A, 1, environment=env)
        with sentry_sdk.push_scope() as scope:
            scope.fingerprint = ["stats-api-environments"]
            scope.user = {"id": f"{env}-user"}
            sentry_sdk.capture_message(f"environment check in {env}",
                                       level="error")
        sentry_sdk.flush(timeout=10)
    until = int(time.time()) + 1

    def the_env_group():
        for g in node().issues():
            if g["title"].startswith("environment check"):
                return g if g["times_seen"] == 3 else None
        return None
    group = wait_until(the_env_group, TIMEOUT, "the environments' group")

    def counted(env, n):
        one = api_ok(f"issues/{group['id']}/?environment={env}")
        return one if one["count"] == str(n) else None
    staging = wait_until(lambda: counted("staging", 2), TIMEOUT,
                         "count 2 in staging")
    assert staging["userCount"] == 1, staging
    assert total(staging["stats"]["24h"]) == 2, staging
    production = wait_until(lambda: counted("production", 1), TIMEOUT,
                            "count 1 in production")
    assert production["userCount"] == 1, production
    status, body = node().api(f"issues/{group['id']}/?environment=nowhere")
    assert status == 404 and "Environment does not exist" in body["detail"], \
        (status, body)
    listed = api_ok("projects/acme/backend/issues/?environment=staging")
    mine = [g for g in listed if g["id"] == group["id"]]
    assert mine and mine[0]["count"] == "2", listed
    series = api_ok(f"projects/acme/backend/stats/?stat=generated&since="
                    f"{since}&until={until}&environment=staging")
    assert total(series) == 2, series


def main():
    return run_node_checks([
        ("group_counts", check_group_counts),
        ("stats_api_bad_input", check_stats_api_bad_input),
        ("group_users_and_stats", check_group_users_and_stats),
        ("project_stats", check_project_stats),
        ("organization_stats", check_organization_stats),
        ("group_environments", check_group_environments),
    ], lambda: NODE)


if __name__ == "__main__":
    sys.exit(main())
