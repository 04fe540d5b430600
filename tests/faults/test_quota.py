#!/usr/bin/python3
"""Fault and exactness tests for quotas against a real redis-server.

exact_limit_<L>: four vigil processes check at full speed against the same
  key quota (limit L) in the same window; the accepted total must equal L
  and the Redis counter must read L (key quota:k{777}1:<slot>).
validate_<case>: `vigil config validate` rejects a bad quota config (negative
  limit, window 0 with a limit, unknown scope) and names the key once.

Run: /usr/bin/python3 tests/faults/test_quota.py
(VIGIL_BIN: the vigil binary; VIGIL_TEST_REDIS_URL: the server, db 40 used.)
Prints "PASS name" or "FAIL name: reason" and exits 1 on failure.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("VIGIL_BIN", os.path.join(ROOT, "build", "vigil"))
BASE = os.environ.get("VIGIL_TEST_REDIS_URL")
DB = 40


BAD_CONFIGS = [
    ("negative_key_limit",
     "projects:\n  - {id: 1, organization: 1, keys: [{id: 3, rate-limit: "
     "{count: -5, window: 60}}]}\n",
     "projects: entry 1 (id 1), key 1 (id 3): rate-limit.count: "
     "expected an integer >= 0", "projects"),
    ("negative_quota_limit",
     "quotas: {extra: [{id: g, scope: global, limit: -5, window: 60}]}\n",
     "quotas.extra: entry 1 (id 'g'): limit: expected an integer >= 0",
     "quotas.extra"),
    ("window_0_with_limit",
     "quotas: {extra: [{id: g, limit: 10, window: 0}]}\n",
     "quotas.extra: entry 1 (id 'g'): window: expected an integer >= 1",
     "quotas.extra"),
    ("key_window_0_with_count",
     "projects:\n  - {id: 1, organization: 1, keys: [{id: 3, rate-limit: "
     "{count: 5, window: 0}}]}\n",
     "rate-limit.window: expected an integer >= 1", "projects"),
    ("unknown_scope",
     "quotas: {extra: [{id: t, scope: team, limit: 1, window: 60}]}\n",
     "quotas.extra: entry 1 (id 't'): scope: unknown scope 'team'",
     "quotas.extra"),
]


def check_validate():
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name, text, expected, key in BAD_CONFIGS:
            path = os.path.join(tmp, name + ".yml")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([BIN, "--config", path, "config", "validate"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=30)
            msg = p.stderr.strip()
            if p.returncode == 0:
                print("FAIL validate_%s: accepted" % name)
                failed = True
            elif expected not in msg or msg.count(key) != 1:
                print("FAIL validate_%s: %r" % (name, msg))
                failed = True
            else:
                print("PASS validate_%s" % name)
        # --config is accepted after the subcommand too.
        name, text, expected, key = BAD_CONFIGS[0]
        path = os.path.join(tmp, "after.yml")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([BIN, "config", "validate", "--config", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        good = os.path.join(tmp, "good.yml")
        with open(good, "w") as f:
            f.write("web:\n  bind: 127.0.0.1:9333\n")
        q = subprocess.run([BIN, "config", "get", "web.bind", "--config", good],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        if p.returncode == 0 or expected not in p.stderr:
            print("FAIL config_after_subcommand: %r" % p.stderr)
            failed = True
        elif q.returncode != 0 or "127.0.0.1:9333" not in q.stdout:
            print("FAIL config_after_subcommand: get said %r %r"
                  % (q.stdout, q.stderr))
            failed = True
        else:
            print("PASS config_after_subcommand")
    return failed


def main():
    failed = check_validate()
    if not BASE:
        print("SKIP redis_quotas: VIGIL_TEST_REDIS_URL is not set")
        return 1 if failed else 0
    url = BASE.rsplit("/", 1)[0] + "/%d" % DB
    r = redis.Redis.from_url(url)
    window = 3600
    for limit in (1, 37, 1000, 5000):
        name = "exact_limit_%d" % limit
        r.flushdb()
        procs = [subprocess.Popen(
            [BIN, "bench", "quota", "--backend", "redis", "--url", url,
             "--limit", str(limit), "--window", str(window),
             "--count", str(limit * 2 + 500), "--clients", "1",
             "--in-flight", "256", "--baseline-count", "0", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)]
        total = 0
        try:
            for p in procs:
                out, err = p.communicate(timeout=120)
                total += json.loads(out.strip().splitlines()[-1])["accepted"]
        except Exception as e:  # noqa: BLE001
            print("FAIL %s: %s" % (name, e))
            failed = True
            continue
        now = int(time.time())
        shift = 777 % window
        keys = [k.decode() for k in r.keys("quota:k{777}1:*")]
        counter = sum(int(r.get(k)) for k in keys)
        slot = (now - shift) // window
        if total != limit:
            print("FAIL %s: accepted %d, expected %d" % (name, total, limit))
            failed = True
        elif counter != limit or "quota:k{777}1:%d" % slot not in keys:
            print("FAIL %s: redis counter %d in %s" % (name, counter, keys))
            failed = True
        else:
            print("PASS %s" % name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
