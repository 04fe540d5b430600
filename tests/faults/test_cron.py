#!/usr/bin/python3
"""Fault tests for the cron scheduler (`vigil run cron`, docs/CRON.md).

One scenario in phases, on redis db 13 (the broker, the lock and the fired
ticks), with a 1 s interval entry sending vigil.ping to a queue nobody
consumes, and a lock TTL of 1 s:

one_sender_of_two: two schedulers run until the queue holds 10 messages:
  every tick (header vigil_cron_tick) exactly once, one second apart.
takeover_after_kill: the lock holder (its pid is in the lock's token) is
  kill -9'd; the other takes the lock (the lock's TTL runs out), messages
  keep coming one second apart, and no tick is doubled.
release_on_sigterm: the new holder exits 0 on SIGTERM and deletes the lock
  at once (compare-and-delete), leaving the last fired tick recorded.
no_burst_after_downtime: after 3.5 s with no scheduler, a new one sends
  only the latest missed tick (and says how many it skipped), then one per
  tick again.
dry_run: `vigil run cron --dry-run` prints every entry's next fire times
  and exits 0 without connecting to the broker (a listener of the test's
  own sees no connection).

The phases assert what the messages and the lock say (tick values, pids),
never how long something took: they wait for an event (a message, the lock
changing hands), bounded generously only so that a broken scheduler cannot
hang the run.
config_validate: `vigil config validate` rejects bad entries, naming the
  key, the entry and what is wrong.

Run: /usr/bin/python3 tests/faults/test_cron.py
(VIGIL_BIN: the vigil binary, default <repo>/build/vigil;
 VIGIL_TEST_REDIS_URL: use that redis server (db 13) instead of a private
 one.)

Prints "PASS name" or "FAIL name: reason" and exits 1 on failure.
"""

import datetime
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))

import harness  # noqa: E402
from harness import CheckEnv, Proc, wait_until  # noqa: E402

DB = 13                    # interop: 0 and 16+; test_kill_worker: 14, 15
QUEUE = "cron.nobody"      # no worker consumes it
LOCK_KEY = "vigil.cron.lock"
LAST_KEY = "vigil.cron.last"
LOCK_TTL = 1.0
RUN_MESSAGES = 10

SCHEDULE = f"""\
cron.schedule:
  - name: ping
    task: vigil.ping
    every: 1
    options: {{queue: {QUEUE}, expires: 30}}
    kwargs: {{}}
cron.lock-ttl: {LOCK_TTL}
"""


class Scenario:
    """State the phases share: one CheckEnv, the schedulers started."""

    def __init__(self):
        self.env = CheckEnv("cron", DB, DB)
        self.config = self.env.dir / "cron.yml"
        self.config.write_text(SCHEDULE)
        self.n = 0
        self.killed_tick = None

    def start(self):
        self.n += 1
        name = f"vigil-cron-{self.n}"
        p = Proc(name, [harness.vigil_bin(), "--config", str(self.config),
                        "run", "cron"],
                 env=self.env.vigil_env(VIGIL_LOG_LEVEL="info"),
                 cwd=str(self.env.dir),
                 log_path=self.env.dir / f"{name}.log")
        self.env.procs.append(p)
        self.env.vigil_workers.append(p)     # must exit 0 on SIGTERM
        return p

    def messages(self):
        """[(tick_ms, envelope headers)] in the queue, oldest tick first."""
        out = []
        for raw in self.env.broker.lrange(QUEUE, 0, -1):
            headers = json.loads(raw)["headers"]
            out.append((headers["vigil_cron_tick"], headers))
        return sorted(out, key=lambda x: x[0])

    def ticks(self):
        return [t for t, _ in self.messages()]

    def holder_pid(self):
        token = self.env.broker.get(LOCK_KEY)
        if token is None:
            return None
        return int(token.decode().split("/")[1])

    def close(self):
        self.env.close()


SCENARIO = None


def scenario():
    if SCENARIO is None:
        raise AssertionError("not run: an earlier phase failed")
    return SCENARIO


def run_vigil(*args, timeout=10):
    """Runs the vigil CLI with no VIGIL_* variables (so only the file
    counts) in this run's temp dir; returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    return subprocess.run([harness.vigil_bin(), *args], env=env,
                          cwd=str(harness.tmp_root()), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def check_doubles(ticks):
    doubled = sorted({t for t in ticks if ticks.count(t) > 1})
    assert not doubled, \
        f"tick(s) sent more than once: {[t / 1000 for t in doubled[:5]]}"


def gaps(ticks):
    """Consecutive tick differences in seconds."""
    return [(b - a) / 1000 for a, b in zip(ticks, ticks[1:])]


# --------------------------------------------------------------------------

def check_one_sender_of_two():
    global SCENARIO
    SCENARIO = None
    s = Scenario()
    try:
        a, b = s.start(), s.start()
        wait_until(lambda: s.holder_pid() in (a.pid, b.pid), 10,
                   "one scheduler to take the lock", procs=[a, b])
        wait_until(lambda: s.env.broker.llen(QUEUE) >= 1, 5,
                   "the first message", procs=[a, b])
        # Two senders would double ticks: the tick values show it.
        wait_until(lambda: s.env.broker.llen(QUEUE) >= RUN_MESSAGES,
                   RUN_MESSAGES * 3 + 10, f"{RUN_MESSAGES} messages",
                   interval=0.25, procs=[a, b])
        ticks = s.ticks()
        takes = sum(p.log_text().count("took the scheduler lock")
                    for p in (a, b))
        print(f"  {len(ticks)} messages from two schedulers; "
              f"lock taken {takes} time(s)", flush=True)
        check_doubles(ticks)
        assert all(g == 1.0 for g in gaps(ticks)), \
            f"ticks not one second apart: gaps {gaps(ticks)}"
        assert all(t % 1000 == 0 for t in ticks), \
            f"ticks not on whole seconds: {ticks[:3]}"
        _, headers = s.messages()[-1]
        assert headers["task"] == "vigil.ping", headers
        assert headers["vigil_cron_entry"] == "ping", headers
        assert headers["expires"], f"options.expires not sent: {headers}"
        SCENARIO = s
    except BaseException:
        s.close()
        raise


def check_takeover_after_kill():
    s = scenario()
    procs = [p for p in s.env.procs if p.alive()]
    holder_pid = s.holder_pid()
    holder = next((p for p in procs if p.pid == holder_pid), None)
    assert holder is not None, \
        f"lock token names pid {holder_pid}, none of {[p.pid for p in procs]}"
    other = next(p for p in procs if p is not holder)
    before = s.ticks()
    holder.kill()                            # SIGKILL: no release
    wait_until(lambda: s.holder_pid() == other.pid, LOCK_TTL * 10 + 10,
               "the standby to take the lock", interval=0.02, procs=[other])
    wait_until(lambda: len([t for t in s.ticks() if t > before[-1]]) >= 4,
               30, "4 messages from the new holder", interval=0.1,
               procs=[other])
    ticks = s.ticks()
    after = [t for t in ticks if t > before[-1]]
    check_doubles(ticks)
    missed = [x for x in gaps(ticks) if x != 1.0]
    print(f"  {len(after)} messages since the kill; tick gaps other than "
          f"1 s: {missed}", flush=True)
    # The new holder sends the latest tick it missed, then one per second.
    assert all(x == 1.0 for x in gaps(after)), \
        f"after the takeover ticks are not 1 s apart: {gaps(after)}"


def check_release_on_sigterm():
    s = scenario()
    holder = next(p for p in s.env.procs if p.alive())
    assert s.holder_pid() == holder.pid
    rc = holder.stop(timeout=10)
    assert rc == 0, f"exit status {rc} on SIGTERM:\n{holder.log_tail()}"
    assert not s.env.broker.exists(LOCK_KEY), \
        "the lock is still there after the holder stopped " \
        f"(ttl {s.env.broker.pttl(LOCK_KEY)} ms)"
    last = int(s.env.broker.hget(LAST_KEY, "ping"))
    assert last == s.ticks()[-1], \
        f"{LAST_KEY}[ping] = {last}, last sent tick {s.ticks()[-1]}"
    assert "released the scheduler lock" in holder.log_text()


def check_no_burst_after_downtime():
    s = scenario()
    last = s.ticks()[-1]
    # At least 3 ticks pass with no scheduler.
    time.sleep(max(0.0, last / 1000 + 3.5 - time.time()))
    t_start = time.time()
    c = s.start()
    wait_until(lambda: len([t for t in s.ticks() if t > last]) >= 4, 30,
               "4 messages from the new scheduler", interval=0.02, procs=[c])
    ticks = s.ticks()
    new = [t for t in ticks if t > last]
    check_doubles(ticks)
    catch_up = new[0]
    print(f"  down from {last / 1000:.0f} to {t_start:.2f}; first tick sent "
          f"after: {catch_up / 1000:.0f}; then {len(new) - 1} more",
          flush=True)
    # Ticks missed before the scheduler started are not sent: the latest
    # one at its start is the oldest that may be.
    assert catch_up >= math.floor(t_start) * 1000, \
        f"sent missed tick {catch_up / 1000} (started at {t_start:.2f})"
    assert catch_up - last >= 3000, \
        f"the downtime did not skip ticks ({last} -> {catch_up})"
    assert all(x == 1.0 for x in gaps(new)), \
        f"after the restart ticks are not 1 s apart: {gaps(new)}"
    m = re.search(r"missed (\d+) tick", c.log_text())
    assert m and int(m.group(1)) >= 2, \
        f"no 'missed N tick(s)' warning in the log:\n{c.log_tail()}"
    rc = c.stop(timeout=10)
    assert rc == 0, f"exit status {rc} on SIGTERM:\n{c.log_tail()}"


def check_dry_run():
    cfg = harness.tmp_root() / "dry.yml"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    cfg.write_text(f"""\
broker.url: redis://127.0.0.1:{port}/0
# Only the two entries below (no digests: no schedule-digests entry).
digests.backend: dummy
cron.schedule:
  - name: flush-buffers
    task: vigil.buffer.process_pending
    every: 10
    options: {{queue: celery, expires: 10}}
    kwargs: {{}}
  - name: nightly
    task: sentry.tasks.cleanup
    crontab: "30 4 * * mon-fri"
""")
    cp = run_vigil("--config", str(cfg), "run", "cron", "--dry-run")
    assert cp.returncode == 0, f"exit {cp.returncode}: {cp.stderr}"
    # The dry run has exited: a connection it made would be queued now.
    listener.setblocking(False)
    try:
        listener.accept()
        raise AssertionError("the dry run connected to the broker")
    except BlockingIOError:
        pass
    finally:
        listener.close()
    out = cp.stdout
    times = re.findall(r"^  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$", out, re.M)
    assert len(times) == 10, f"expected 5 fire times per entry:\n{out}"
    assert "flush-buffers" in out and "every 10 s" in out, out
    assert "nightly" in out and "'30 4 * * mon-fri' (UTC)" in out, out
    parsed = [datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ")
              for t in times]
    every = parsed[:5]
    assert all((b - a).total_seconds() == 10 for a, b in zip(every, every[1:])), \
        f"interval times not 10 s apart: {times[:5]}"
    assert all(t.second % 10 == 0 for t in every), times[:5]
    nightly = parsed[5:]
    assert all(t.hour == 4 and t.minute == 30 and t.weekday() < 5
               for t in nightly), f"crontab times wrong: {times[5:]}"
    cp = run_vigil("--config", str(cfg), "run", "cron", "--dry-run",
                   "--count", "2")
    assert cp.returncode == 0, f"exit {cp.returncode}: {cp.stderr}"
    assert len(re.findall(r"^  \d{4}-", cp.stdout, re.M)) == 4, cp.stdout


def check_config_validate():
    cfg = harness.tmp_root() / "bad.yml"
    cfg.write_text("""\
cron.schedule:
  - name: no-task
    every: 10
  - name: bad-cron
    task: vigil.ping
    crontab: "*/5 25 * * *"
  - name: both
    task: vigil.ping
    every: 5
    crontab: "* * * * *"
  - name: typo
    task: vigil.ping
    every: 5
    opitons: {queue: x}
""")
    cp = run_vigil("--config", str(cfg), "config", "validate")
    err = cp.stderr
    assert cp.returncode == 1, f"exit {cp.returncode}: {err}{cp.stdout}"
    for want in ("cron.schedule: entry 1 ('no-task'): missing 'task'",
                 "entry 2 ('bad-cron'): crontab '*/5 25 * * *': hour field "
                 "'25': 25 is out of range 0-23",
                 "entry 3 ('both'): give either 'every' or 'crontab', not "
                 "both",
                 "entry 4 ('typo'): unknown key 'opitons' (did you mean "
                 "'options'?)"):
        assert want in err, f"missing {want!r} in:\n{err}"
    # A running command refuses the file too.
    cp = run_vigil("--config", str(cfg), "run", "cron", "--dry-run")
    assert cp.returncode == 2, f"exit {cp.returncode}"


CHECKS = [
    ("one_sender_of_two", check_one_sender_of_two),
    ("takeover_after_kill", check_takeover_after_kill),
    ("release_on_sigterm", check_release_on_sigterm),
    ("no_burst_after_downtime", check_no_burst_after_downtime),
    ("dry_run", check_dry_run),
    ("config_validate", check_config_validate),
]


def main():
    rc = 1
    try:
        rc = harness.run_checks(CHECKS)
    finally:
        if SCENARIO is not None:
            try:
                SCENARIO.close()        # stops whatever still runs
            except AssertionError as e:
                print(f"FAIL cleanup: {e}", flush=True)
                rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
