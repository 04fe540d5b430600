#!/usr/bin/python3
"""Cluster membership and inspection across three vigil processes on one
Redis (`vigil run node` and two `vigil run worker`, the Redis broker,
redis.clusters.default): `vigil nodes` and `vigil inspect --json` list all
three with their actors; an actor blocked in a task shows as not
answering; the management endpoint's bearer token; a public bind without
inspect.token refuses to start; the live terminal view driven in tmux;
a node killed with SIGKILL drops out within the TTL.

Run: /usr/bin/python3 tests/interop/test_inspect.py [check ...]
Prints "PASS name" / "FAIL name: reason"; exits 1 if any failed.
"""

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import CheckEnv, Proc, fmt, vigil_bin, wait_until  # noqa: E402

BROKER_DB = 30      # 30 and 31 are free in tests/interop (see the others)
MEMBERS_DB = 31
TOKEN = "inspect-secret-token"
NODE, W1, W2 = "inspect-node@test", "inspect-w1@test", "inspect-w2@test"


class Cluster:
    """The three processes, started once for the checks that share them."""

    env = None

    @classmethod
    def get(cls):
        if cls.env is not None:
            return cls.env
        env = CheckEnv("inspect", BROKER_DB, MEMBERS_DB)
        env.extra = {
            "VIGIL_REDIS_CLUSTERS":
                '{default: {hosts: ["' + env.redis.url(MEMBERS_DB) + '"]}}',
            "VIGIL_INSPECT_TOKEN": TOKEN,
            "VIGIL_INSPECT_TIMEOUT": "1",
            "VIGIL_TASKS_RESULT_BACKEND": "",
        }
        env.nodes = {}
        for name, argv in ((NODE, ["run", "node", "-c", "2"]),
                           (W1, ["run", "worker", "-Q", "slow", "-c", "1"]),
                           (W2, ["run", "worker", "-Q", "celery", "-c", "2"])):
            d = env.dir / name.split("@")[0]
            d.mkdir(exist_ok=True)
            p = Proc(name.split("@")[0], [vigil_bin(), *argv],
                     env=env.vigil_env(VIGIL_WORKER_HOSTNAME=name,
                                       VIGIL_WEB_BIND="127.0.0.1:0",
                                       **env.extra),
                     cwd=str(d), log_path=env.dir / f"{name}.log")
            env.procs.append(p)
            env.nodes[name] = p
        cls.env = env
        return env

    @classmethod
    def close(cls):
        if cls.env is not None:
            cls.env.close(check_exit=False)
            cls.env = None


def cli(env, *args, timeout=30, check=True):
    return env.vigil(*args, timeout=timeout, check=check, **env.extra)


def members(env):
    return {m["id"]: m for m in json.loads(cli(env, "nodes", "--json").stdout)}


def wait_members(env, ids, timeout=30):
    procs = [env.nodes[i] for i in ids]
    return wait_until(lambda: (lambda m: m if set(ids) <= set(m) else None)(
        members(env)), timeout, f"{ids} in `vigil nodes`", interval=0.3,
        procs=procs)


def get(url, token=None, timeout=10):
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def check_nodes_and_snapshots():
    env = Cluster.get()
    got = wait_members(env, [NODE, W1, W2])
    assert got[NODE]["mode"] == "node" and got[W1]["mode"] == "worker", \
        fmt(got)
    assert got[W1]["queues"] == ["slow"], fmt(got[W1])
    for m in got.values():
        assert m["inspect"].startswith("127.0.0.1:") and \
            not m["inspect"].endswith(":0"), fmt(m)
        assert m["pid"] == env.nodes[m["id"]].pid, fmt(m)
    table = cli(env, "nodes").stdout
    for name in (NODE, W1, W2):
        assert name in table, table
    snap = json.loads(cli(env, "inspect", "--json").stdout)
    by_id = {n["node"]["id"]: n for n in snap["nodes"]}
    assert {NODE, W1, W2} <= set(by_id), fmt(list(by_id))
    for name in (NODE, W1, W2):
        n = by_id[name]
        assert n["reachable"] is True, fmt(n)
        names = {a["name"] for a in n["actors"]}
        assert {"tasks.supervisor", "tasks.consumer",
                "tasks.worker"} <= names, fmt(names)
        assert all(a["answering"] for a in n["actors"]), fmt(n["actors"])
    node = by_id[NODE]
    assert "pending_keys" in node["buffer"], fmt(node.get("buffer"))
    assert {e["name"] for e in node["cron"]["entries"]} >= {"flush-buffers"}, \
        fmt(node["cron"])
    # The node's scheduler takes the cron lock (in broker.url's Redis).
    addr = got[NODE]["inspect"]
    wait_until(lambda: json.loads(get(f"http://{addr}/snapshot", TOKEN)[1])
               ["cron"].get("lock_holder"), 15, "the cron lock holder",
               interval=0.3)
    assert "buffer" not in by_id[W1], fmt(by_id[W1])
    node_names = {a["name"] for a in by_id[NODE]["actors"]}
    assert {"buffer.actor", "tsdb.actor", "ingest.actor"} <= node_names, \
        fmt(node_names)
    # One node through --node, and the cluster through any node's /cluster.
    one = json.loads(cli(env, "inspect", "--json", "--node",
                         got[W2]["inspect"]).stdout)
    assert [n["node"]["id"] for n in one["nodes"]] == [W2], fmt(one)
    status, body = get(f"http://{got[W1]['inspect']}/cluster", TOKEN)
    assert status == 200, body
    ids = {n["node"]["id"] for n in json.loads(body)["nodes"]}
    assert {NODE, W1, W2} <= ids, fmt(ids)


def check_blocked_worker_not_answering():
    env = Cluster.get()
    got = wait_members(env, [W1])
    env.send_task("vigil.sleep", kwargs={"seconds": 20}, queue="slow",
                  **env.extra)

    def blocked():
        t0 = time.monotonic()
        status, body = get(f"http://{got[W1]['inspect']}/snapshot", TOKEN)
        took = time.monotonic() - t0
        assert status == 200, body
        # inspect.timeout is 1 s: the view never waits for a blocked actor.
        assert took < 8, f"/snapshot took {took:.1f} s"
        actors = json.loads(body)["actors"]
        workers = [a for a in actors if a["service"] == "tasks"
                   and a["name"] == "tasks.worker"]
        if workers and not workers[0]["answering"]:
            return actors
        return None

    actors = wait_until(blocked, 30, "the blocked worker listed as not "
                        "answering", interval=0.3, procs=[env.nodes[W1]])
    silent = [a for a in actors if not a["answering"]]
    assert len(silent) == 1, fmt(actors)
    assert "timeout" in silent[0]["last_error"], fmt(silent)
    consumer = [a for a in actors if a["name"] == "tasks.consumer"]
    assert consumer and consumer[0]["answering"], fmt(actors)
    # The queue figures: the sleeping task is held (kombu's unacked hash
    # names its queue), a second one waits in the list.
    env.send_task("vigil.sleep", kwargs={"seconds": 0}, queue="slow",
                  **env.extra)

    def queue_row():
        status, body = get(f"http://{got[W1]['inspect']}/snapshot", TOKEN)
        snap = json.loads(body)
        rows = [q for q in snap.get("queues", []) if q["name"] == "slow"]
        return (rows[0], snap) if rows and rows[0].get("unacked", 0) >= 1 \
            else None

    row, snap = wait_until(queue_row, 15, "the slow queue's unacked count",
                           interval=0.3)
    assert row["broker"] == "redis" and row["ready"] + row["unacked"] >= 2, \
        fmt(row)
    assert snap["dead_letters"]["count"] == 0, fmt(snap["dead_letters"])


def check_token_required():
    env = Cluster.get()
    addr = wait_members(env, [W2])[W2]["inspect"]
    status, body = get(f"http://{addr}/snapshot")
    assert status == 401 and "detail" in json.loads(body), (status, body)
    status, body = get(f"http://{addr}/snapshot", "wrong-token")
    assert status == 401 and "inspect.token" in json.loads(body)["detail"], \
        (status, body)
    status, body = get(f"http://{addr}/cluster", "wrong-token")
    assert status == 401, (status, body)
    status, body = get(f"http://{addr}/snapshot", TOKEN)
    assert status == 200 and json.loads(body)["node"]["id"] == W2, body
    status, body = get(f"http://{addr}/nothing-here", TOKEN)
    assert status == 404 and "detail" in json.loads(body), (status, body)
    cp = env.vigil("inspect", "--json", "--node", addr, "--token", "nope",
                   check=False, **env.extra)
    assert cp.returncode == 1 and "401" in cp.stderr, (cp.returncode,
                                                       cp.stderr)
    cp = env.vigil("inspect", "--json", "--node", "not-an-address",
                   check=False, **env.extra)
    assert cp.returncode == 2 and "--node" in cp.stderr, cp.stderr
    cp = env.vigil("inspect", "--json", "--node", f"127.0.0.1:{harness.free_port()}",
                   check=False, **env.extra)
    assert cp.returncode == 1 and "unreachable" in cp.stderr, cp.stderr


def check_public_bind_needs_token():
    with CheckEnv("inspect_public_bind", BROKER_DB, MEMBERS_DB) as env:
        for mode in ("worker", "node"):
            cp = env.vigil("run", mode, check=False, timeout=30,
                           VIGIL_INSPECT_BIND="0.0.0.0:0",
                           VIGIL_INSPECT_TOKEN="",
                           VIGIL_WEB_BIND="127.0.0.1:0")
            out = cp.stdout + cp.stderr
            assert cp.returncode == 2, (cp.returncode, out)
            assert "inspect.token" in out and "inspect.bind" in out, out


def tmux(*args, check=True):
    return subprocess.run(["tmux", "-L", "vigil-inspect-test", *args],
                          capture_output=True, text=True, timeout=10,
                          check=check)


def check_terminal_view_in_tmux():
    if shutil.which("tmux") is None:
        harness.skip("tmux is not installed (scripts/setup.sh installs it)")
    env = Cluster.get()
    wait_members(env, [NODE, W1, W2])
    envs = []
    for k, v in {**env.vigil_env(**env.extra)}.items():
        if k.startswith("VIGIL_"):
            envs += ["-e", f"{k}={v}"]
    tmux("kill-server", check=False)
    tmux("new-session", "-d", "-s", "top", "-x", "220", "-y", "50", *envs,
         vigil_bin(), "inspect", "--interval", "0.5")
    try:
        def screen():
            return tmux("capture-pane", "-p", "-t", "top").stdout

        def shows(*texts):
            return wait_until(lambda: (lambda s: s if all(t in s for t in texts)
                                       else None)(screen()), 20,
                              f"{texts} on the screen", interval=0.2)

        s = shows("vigil inspect", "sort: mailbox", NODE, W1, W2,
                  "tasks.supervisor", "MAILBOX")
        tmux("send-keys", "-t", "top", "e")
        shows("sort: errors")
        tmux("send-keys", "-t", "top", "r")
        shows("sort: rate")
        # Pick a node by its number in the node list.
        lines = [line for line in s.splitlines() if W2 in line and
                 line[:3].strip()[:1].isdigit()]
        assert lines, s
        number = lines[0].split()[0].lstrip("*")
        tmux("send-keys", "-t", "top", number)
        s = shows(f"showing {W2}")
        rows = [line for line in s.splitlines() if "tasks." in line]
        assert rows and all(W2 in r for r in rows), s
        tmux("send-keys", "-t", "top", "Enter")
        shows(f"on {W2}", "Esc/b back", "processed:")
        tmux("send-keys", "-t", "top", "b")
        shows("MAILBOX")
        tmux("send-keys", "-t", "top", "q")
        wait_until(lambda: tmux("has-session", "-t", "top",
                                check=False).returncode != 0, 10,
                   "the view to quit on q")
    finally:
        tmux("kill-server", check=False)


def check_sigkill_drops_out():
    env = Cluster.get()
    wait_members(env, [NODE, W1, W2])
    env.nodes[W2].send_signal(signal.SIGKILL)
    env.nodes[W2].wait(10)
    # The entry lasts its 15 s TTL after the last heartbeat (5 s apart).
    wait_until(lambda: W2 not in members(env), 40,
               f"{W2} gone from `vigil nodes` after SIGKILL", interval=0.5)
    left = members(env)
    assert NODE in left and W1 in left, fmt(left)
    snap = json.loads(cli(env, "inspect", "--json").stdout)
    assert W2 not in {n["node"]["id"] for n in snap["nodes"]}, fmt(snap)


def check_clean_stop_leaves():
    env = Cluster.get()
    wait_members(env, [W1])
    env.nodes[W1].stop(timeout=30)
    # A clean stop deletes the entry itself (no TTL wait); bounded poll.
    wait_until(lambda: W1 not in members(env), 10,
               f"{W1} gone after SIGTERM", interval=0.2)


def check_amqp_queue_counts():
    """RabbitMQ's counts come from a passive queue.declare: with prefetch 1
    a worker blocked in a task leaves the rest ready in the queue."""
    rabbit = harness.start_rabbitmq()
    rabbit.purge_queues("inspect_aq")
    with CheckEnv("inspect_amqp", BROKER_DB, MEMBERS_DB) as env:
        env.broker_url = rabbit.url()
        extra = {"VIGIL_INSPECT_TOKEN": "", "VIGIL_TASKS_RESULT_BACKEND": "",
                 "VIGIL_BROKER_PREFETCH": "1", "VIGIL_INSPECT_TIMEOUT": "1"}
        port = harness.free_port()
        w = env.start_vigil_worker(queues="inspect_aq", concurrency=1,
                                   VIGIL_INSPECT_BIND=f"127.0.0.1:{port}",
                                   **extra)
        for seconds in (15, 0, 0):
            env.send_task("vigil.sleep", kwargs={"seconds": seconds},
                          queue="inspect_aq", **extra)

        def counted():
            try:
                status, body = get(f"http://127.0.0.1:{port}/snapshot")
            except OSError:
                return None
            rows = [q for q in json.loads(body).get("queues", [])
                    if q["name"] == "inspect_aq"]
            return rows[0] if rows and rows[0].get("ready") == 2 else None

        row = wait_until(counted, 30, "2 ready in inspect_aq", interval=0.3,
                         procs=[w])
        assert row["broker"] == "amqp", fmt(row)
        w.send_signal(signal.SIGKILL)


def check_cron_and_chartcuterie_announce():
    env = Cluster.get()
    procs = {}
    for name, argv in (("inspect-cron@test", ["run", "cron"]),
                       ("inspect-charts@test", ["run", "chartcuterie"])):
        d = env.dir / name.split("@")[0]
        d.mkdir(exist_ok=True)
        p = Proc(name.split("@")[0], [vigil_bin(), *argv],
                 env=env.vigil_env(VIGIL_WORKER_HOSTNAME=name,
                                   VIGIL_CHART_RENDERING_BIND="127.0.0.1:0",
                                   **env.extra),
                 cwd=str(d), log_path=env.dir / f"{name}.log")
        env.procs.append(p)
        procs[name] = p
    got = wait_until(lambda: (lambda m: m if set(procs) <= set(m) else None)(
        members(env)), 30, "cron and chartcuterie in `vigil nodes`",
        interval=0.3, procs=list(procs.values()))
    assert got["inspect-cron@test"]["mode"] == "cron", fmt(got)
    assert got["inspect-charts@test"]["mode"] == "chartcuterie", fmt(got)
    status, body = get(f"http://{got['inspect-cron@test']['inspect']}"
                       "/snapshot", TOKEN)
    snap = json.loads(body)
    assert [a["name"] for a in snap["actors"]
            if a["service"] == "cron"] == ["cron.scheduler"], fmt(snap)
    assert snap["cron"]["entries"], fmt(snap["cron"])
    for p in procs.values():
        p.stop(timeout=20)
    wait_until(lambda: not set(procs) & set(members(env)), 10,
               "cron and chartcuterie gone after SIGTERM", interval=0.2)


CHECKS = [
    ("nodes_and_snapshots", check_nodes_and_snapshots),
    ("token_required", check_token_required),
    ("terminal_view_in_tmux", check_terminal_view_in_tmux),
    ("blocked_worker_not_answering", check_blocked_worker_not_answering),
    ("public_bind_needs_token", check_public_bind_needs_token),
    ("cron_and_chartcuterie_announce", check_cron_and_chartcuterie_announce),
    ("amqp_queue_counts", check_amqp_queue_counts),
    ("sigkill_drops_out", check_sigkill_drops_out),
    ("clean_stop_leaves", check_clean_stop_leaves),
]


def main(argv):
    wanted = set(argv[1:])
    checks = [c for c in CHECKS if not wanted or c[0] in wanted]
    try:
        return harness.run_checks(checks)
    finally:
        Cluster.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
