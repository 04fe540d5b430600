#!/usr/bin/python3
"""An event answered 200 is never lost: kill -9 of the node right after a
burst, and every answered event is in the nodestore after the restart.

kill_after_burst: 8 keep-alive clients post 200+ events to a node (SQLite
  nodestore in its data dir); while they still post, the node gets SIGKILL.
  A second node started on the same data dir serves every event that was
  answered 200, through the read API, and counts it once in its group.

kill_memory_tasks: the same burst on the embedded memory:// broker (whose
  queues die with the process); SIGKILL right after the 200s. After the
  restart every answered event is stored and its post_process task has run
  (in the first node before the kill, or in the second from the outbox the
  first left): each run logs "post_process: event '<id>'" at debug level.
  (once with the first node's workers on another queue, so that every
  task is still queued at the kill, once with them running).
kill_redis_tasks: the same on a redis:// broker (visibility timeout 2 s,
  so the tasks the killed node had taken come back to the second).

Run: /usr/bin/python3 tests/faults/test_ingest_kill.py (VIGIL_BIN).
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "interop"))

from harness import run_checks, start_redis, wait_until  # noqa: E402
from ingest_common import Node, burst_then_kill  # noqa: E402


def check_kill_after_burst():
    first = Node("kill-node-1").start()
    ids = burst_then_kill(first, 200)
    second = Node("kill-node-2", data_dir=first.data_dir).start()
    try:
        missing = [i for i in ids if second.event(i)[0] != 200]
        assert not missing, (f"{len(missing)} of {len(ids)} answered events "
                             f"lost, e.g. {missing[:3]}")
        groups = [g for g in second.issues() if g["title"] == "burst"]
        assert len(groups) == 1, groups
        seen = groups[0]["times_seen"]
        # Events stored but not yet answered when the kill landed count too.
        assert seen >= len(ids), (seen, len(ids))
        print(f"  {len(ids)} answered before the kill, all readable after "
              f"the restart; group counts {seen}", flush=True)
    finally:
        rc = second.stop()
        assert rc == 0, f"second node exit status {rc}"


TASK_RAN = re.compile(r"post_process: event '([0-9a-f]{32})'")


def tasks_ran(*nodes):
    """The event ids whose post_process task ran, from the nodes' logs."""
    ran = set()
    for node in nodes:
        ran.update(TASK_RAN.findall(node.proc.log_text()))
    return ran


def debug_node(name, extra, data_dir=None):
    """A node logging at debug level: each post_process run shows."""
    node = Node(name, data_dir=data_dir, extra=extra)
    node.config.write_text(node.config.read_text().replace(
        "log.level: info", "log.level: debug"))
    return node.start()


def kill_and_check_tasks(name, extra, first_extra=""):
    first = debug_node(f"{name}-1", extra + first_extra)
    ids = set(burst_then_kill(first, 300))
    ran_before = tasks_ran(first) & ids
    second = debug_node(f"{name}-2", extra, data_dir=first.data_dir)
    try:
        missing = [i for i in ids if second.event(i)[0] != 200]
        assert not missing, (f"{len(missing)} of {len(ids)} answered events "
                             f"lost, e.g. {missing[:3]}")

        def all_ran():
            return not (ids - tasks_ran(first, second))
        try:
            wait_until(all_ran, 60, "every answered event's post_process")
        except AssertionError:
            left = sorted(ids - tasks_ran(first, second))
            raise AssertionError(f"{len(left)} of {len(ids)} answered "
                                 f"events' tasks never ran, e.g. {left[:3]}")
        print(f"  {len(ids)} answered before the kill, all stored; "
              f"{len(ran_before)} tasks had run before the kill, the "
              f"others ran after the restart", flush=True)
    finally:
        rc = second.stop()
        assert rc == 0, f"second node exit status {rc}"


def check_kill_memory_tasks():
    # The first node's workers take another queue: every answered event's
    # task is still in its in-process queue at the kill, and only the
    # outbox can bring it back.
    kill_and_check_tasks("kill-mem", 'broker.url: "memory://"\n',
                         "tasks.queues: [elsewhere]\n")


def check_kill_memory_tasks_running():
    # The same with the first node's workers running the tasks meanwhile.
    kill_and_check_tasks("kill-mem-run", 'broker.url: "memory://"\n')


def check_kill_redis_tasks():
    redis_server = start_redis()
    redis_server.fresh_db(11)
    kill_and_check_tasks("kill-redis", (
        f'broker.url: "{redis_server.url(11)}"\n'
        "broker.visibility-timeout: 2\n"
        "broker.restore-interval: 1\n"))


if __name__ == "__main__":
    sys.exit(run_checks([("kill_after_burst", check_kill_after_burst),
                         ("kill_memory_tasks", check_kill_memory_tasks),
                         ("kill_memory_tasks_running",
                          check_kill_memory_tasks_running),
                         ("kill_redis_tasks", check_kill_redis_tasks)]))
