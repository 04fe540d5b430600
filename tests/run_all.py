#!/usr/bin/python3
"""Runs every vigil test suite against real servers and prints the tally.

Starts a private redis-server on a free loopback port (VIGIL_TEST_REDIS_URL
points the suites at it) and, if rabbitmq-server is installed, a private
RabbitMQ (VIGIL_TEST_AMQP_URL) and, if PostgreSQL 15 is installed, a private
PostgreSQL (VIGIL_TEST_PG_URL), runs the Catch2 executables and the Python
interop and fault scripts, stops the servers, and ends with "N passed, N
failed, N skipped" (a case is skipped when it needs a server or tool the
run does not have; --no-skips, as CI runs it, fails the run then).
Each test case counts once: Catch2 cases through their JUnit report (and
tests/support/test_servers.hpp's skip log), Python checks through their
"PASS name" / "FAIL name: reason" / "SKIP name: reason" lines (XFAIL, a
known bug, counts as skipped).
"""
import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir):
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--databases", "64", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


# filestore: s3rver (npm, tests/js) as the S3 server of the filestore
# tests; it checks SigV4 signatures (keys S3RVER/S3RVER).
S3RVER = os.path.join(ROOT, "tests", "js", "node_modules", ".bin", "s3rver")
S3_BUCKET = "vigil-test"


def start_s3rver(workdir):
    """Starts s3rver on a free port with the bucket S3_BUCKET; returns
    (process, url), or (None, None) when node or s3rver is missing."""
    if not shutil.which("node") or not os.path.exists(S3RVER):
        return None, None
    port = free_port()
    data = os.path.join(workdir, "s3rver")
    os.makedirs(data, exist_ok=True)
    proc = subprocess.Popen(
        ["node", S3RVER, "-d", data, "-a", "127.0.0.1", "-p", str(port),
         "-s", "--configure-bucket", S3_BUCKET],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, "http://127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    return None, None


def stop_server(proc, log, workdir, sig):
    """Asks a server started in its own process group to stop with `sig`,
    kills what is left of the group after 30 s, and removes its files."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    log.close()
    shutil.rmtree(workdir, ignore_errors=True)


class Rabbit:
    """A private rabbitmq-server on free loopback ports, started in the
    background (it takes 5-15 s to accept connections); `wait()` blocks
    until it does. As root it runs as the rabbitmq user, which must own its
    data dir."""

    def __init__(self, workdir):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="vigil-rabbit-")
        with open(os.path.join(self.dir, "plugins"), "w") as f:
            f.write("[].\n")
        open(os.path.join(self.dir, "env.conf"), "w").close()
        env = dict(os.environ)
        env.update({
            "HOME": self.dir,
            "RABBITMQ_NODENAME": "vigilrun%d@localhost" % os.getpid(),
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.dir, "plugins"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.dir, "env.conf"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.dir, "rabbitmq"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        argv = ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
        if os.geteuid() == 0:
            for path in [self.dir] + [os.path.join(self.dir, n)
                                      for n in os.listdir(self.dir)]:
                shutil.chown(path, "rabbitmq", "rabbitmq")
            argv = ["setpriv", "--reuid=rabbitmq", "--regid=rabbitmq",
                    "--init-groups"] + argv
        self.log = open(os.path.join(workdir, "rabbitmq.log"), "wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=self.dir,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.ready = None

    @property
    def url(self):
        return "amqp://guest:guest@127.0.0.1:%d/%%2F" % self.port

    def _answers(self):
        # An AMQP 0-9-1 server answers the protocol header with
        # connection.start (a method frame, type 1).
        try:
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=1) as s:
                s.sendall(b"AMQP\x00\x00\x09\x01")
                return s.recv(1) == b"\x01"
        except OSError:
            return False

    def wait(self, timeout=60):
        if self.ready is None:
            deadline = time.time() + timeout
            while time.time() < deadline and self.proc.poll() is None:
                if self._answers():
                    self.ready = True
                    break
                time.sleep(0.2)
            else:
                self.ready = False
        return self.ready

    def stop(self):
        # SIGTERM: the script stops the node gracefully
        stop_server(self.proc, self.log, self.dir, signal.SIGTERM)


PG_BIN = "/usr/lib/postgresql/15/bin"


class Postgres:
    """A private PostgreSQL on a free loopback port, its cluster made by
    initdb in a temp dir (user vigil, trust auth, fsync off: tests do not
    survive power loss). PostgreSQL refuses to run as root: as root it runs
    as the postgres user, which must own its data dir. `wait()` blocks until
    it accepts connections and has created the database vigil."""

    def __init__(self, workdir):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="vigil-pg-")
        self.data = os.path.join(self.dir, "data")
        self.prefix = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.prefix = ["setpriv", "--reuid=postgres", "--regid=postgres",
                           "--init-groups"]
        self.log = open(os.path.join(workdir, "postgres.log"), "wb")
        subprocess.run(self.prefix + [PG_BIN + "/initdb", "-D", self.data,
                                      "-U", "vigil", "--auth=trust",
                                      "--no-sync", "-E", "UTF8"],
                       cwd=self.dir, stdout=self.log,
                       stderr=subprocess.STDOUT, check=True)
        self.proc = subprocess.Popen(
            self.prefix + [PG_BIN + "/postgres", "-D", self.data,
                           "-p", str(self.port), "-k", self.dir,
                           "-c", "listen_addresses=127.0.0.1",
                           "-c", "fsync=off"],
            cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.ready = None

    @property
    def url(self):
        return "postgresql://vigil@127.0.0.1:%d/vigil" % self.port

    def wait(self, timeout=30):
        if self.ready is None:
            self.ready = False
            deadline = time.time() + timeout
            while time.time() < deadline and self.proc.poll() is None:
                ok = subprocess.run(
                    [PG_BIN + "/pg_isready", "-q", "-h", "127.0.0.1",
                     "-p", str(self.port)]).returncode == 0
                if ok:
                    self.ready = subprocess.run(
                        [PG_BIN + "/createdb", "-h", "127.0.0.1", "-p",
                         str(self.port), "-U", "vigil", "vigil"],
                        stdout=self.log, stderr=subprocess.STDOUT
                    ).returncode == 0
                    break
                time.sleep(0.1)
        return self.ready

    def stop(self):
        # SIGINT: PostgreSQL's fast shutdown
        stop_server(self.proc, self.log, self.dir, signal.SIGINT)


def read_skip_log(path):
    """The cases a Catch2 suite reported as skipped (tests/support/
    test_servers.hpp): {case name: reason}."""
    out = {}
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            for line in f:
                case, _, why = line.rstrip("\n").partition("\t")
                out.setdefault(case, why)
        os.unlink(path)
    return out


def run_catch2(name, exe, env, timeout):
    """Runs one Catch2 executable; returns (passed, failed, skipped,
    output)."""
    report = tempfile.mktemp(suffix=".xml")
    skip_log = tempfile.mktemp(suffix=".skipped")
    env = dict(env, VIGIL_TEST_SKIP_LOG=skip_log)
    started = time.time()
    try:
        proc = subprocess.run([exe, "-r", "junit", "-o", report], env=env,
                              timeout=timeout, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        output = proc.stdout
    except subprocess.TimeoutExpired as e:
        read_skip_log(skip_log)
        return [], [(name, "timed out after %d s" % timeout)], [], \
            str(e.output)
    skips = read_skip_log(skip_log)
    passed, failed, skipped = [], [], []
    try:
        root = ET.parse(report).getroot()
        for case in root.iter("testcase"):
            label = "%s: %s" % (name, case.get("name"))
            bad = case.find("failure") if case.find("failure") is not None \
                else case.find("error")
            if bad is not None:
                failed.append((label, (bad.get("message") or bad.text or "")[:300]))
            elif case.get("name") in skips:
                skipped.append((label, skips[case.get("name")]))
            else:
                passed.append(label)
    except (ET.ParseError, FileNotFoundError):
        failed.append((name, "no JUnit report (exit %d)" % proc.returncode))
    finally:
        if os.path.exists(report):
            os.unlink(report)
    if proc.returncode != 0 and not failed:
        failed.append((name, "exit code %d" % proc.returncode))
    print("  %s: %.1f s" % (name, time.time() - started))
    return passed, failed, skipped, output


def run_script(name, path, env, timeout):
    """Runs one Python test script; `name` may carry the environment it
    runs under, as ("name", {"VAR": "value"})."""
    if isinstance(name, tuple):
        name, extra = name
        env = dict(env, **extra)
    started = time.time()
    try:
        proc = subprocess.run(["/usr/bin/python3", path], env=env,
                              timeout=timeout, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        output, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        out = e.output.decode() if isinstance(e.output, bytes) else (e.output or "")
        return [], [(name, "timed out after %d s" % timeout)], [], out
    passed, failed, skipped = [], [], []
    for line in output.splitlines():
        if line.startswith("PASS "):
            passed.append("%s: %s" % (name, line[5:].strip()))
        elif line.startswith("XPASS "):
            passed.append("%s: %s" % (name, line[6:].split(" ", 1)[0]))
        elif line.startswith("SKIP ") or line.startswith("XFAIL "):
            # XFAIL: a check marked with a known vigil bug failed as
            # expected; it did not pass, so it counts with the skipped.
            label, _, why = line.split(" ", 1)[1].partition(":")
            skipped.append(("%s: %s" % (name, label.strip()), why.strip()))
        elif line.startswith("FAIL "):
            label, _, why = line[5:].partition(":")
            failed.append(("%s: %s" % (name, label.strip()), why.strip()))
    if code != 0 and not failed:
        failed.append((name, "exit code %d" % code))
    if code == 0 and not passed and not failed and not skipped:
        passed.append(name)
    print("  %s: %.1f s" % (name, time.time() - started))
    return passed, failed, skipped, output


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", help="run only suites whose name contains this")
    ap.add_argument("--no-skips", action="store_true",
                    help="fail the run if any case was skipped for lack of "
                    "a server or tool (CI starts every server: "
                    "scripts/test.sh passes this)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    workdir = tempfile.mkdtemp(prefix="vigil-tests-")
    rabbit = Rabbit(workdir) if shutil.which("rabbitmq-server") \
        and os.path.exists("/usr/lib/rabbitmq/bin/rabbitmq-server") else None
    try:
        pg = Postgres(workdir) if os.path.exists(PG_BIN + "/postgres") \
            else None
    except BaseException:
        if rabbit is not None:
            rabbit.stop()
        raise
    try:
        redis, port = start_redis(workdir)
    except BaseException:
        if rabbit is not None:
            rabbit.stop()
        if pg is not None:
            pg.stop()
        raise
    # What the run cannot test, counted as skipped (tools not installed).
    not_tested = []
    env = dict(os.environ)
    env["VIGIL_TEST_REDIS_URL"] = "redis://127.0.0.1:%d/0" % port
    if rabbit is not None:
        env["VIGIL_TEST_AMQP_URL"] = rabbit.url
    else:
        not_tested.append(("rabbitmq-server", "not installed: the amqp "
                           "backend is not tested"))
    if pg is not None and pg.wait():
        env["VIGIL_TEST_PG_URL"] = pg.url
    elif pg is None:
        not_tested.append(("postgresql", "PostgreSQL 15 is not installed: "
                           "the postgresql backend is not tested"))
    # filestore: the S3 server of the filestore tests.
    s3rver, s3_url = start_s3rver(workdir)
    if s3rver is not None:
        env["VIGIL_TEST_S3_URL"] = s3_url
        env["VIGIL_TEST_S3_BUCKET"] = S3_BUCKET
    else:
        not_tested.append(("s3rver", "node or tests/js s3rver is missing "
                           "(scripts/js-deps.sh): the s3 filestore is not "
                           "tested"))
    env["VIGIL_BIN"] = os.path.join(build, "vigil")
    env["VIGIL_TEST_WORKDIR"] = workdir
    suites = []
    for exe, timeout in (("unit_tests", 600), ("integration_tests", 600),
                         ("power_loss_tests", 600), ("fuzz_asan", 900)):
        path = os.path.join(build, "tests", exe)
        if os.path.exists(path):
            suites.append(("catch2", exe, path, timeout))
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "interop", "test_*.py"))
                       + glob.glob(os.path.join(ROOT, "tests", "faults", "test_*.py"))):
        rel = os.path.relpath(path, ROOT)
        suites.append(("script", rel, path, 300))
    # The HTTP fuzz test once more against the sanitizer build of vigil
    # (scripts/test.sh builds it and exports its path).
    asan_bin = os.environ.get("VIGIL_ASAN_BIN")
    if asan_bin and os.path.exists(asan_bin):
        rel = os.path.join("tests", "interop", "test_http_fuzz.py")
        suites.append(("script", (rel + " [asan+ubsan]", {
            "VIGIL_BIN": asan_bin, "VIGIL_FUZZ_SANITIZED": "1",
            "VIGIL_FUZZ_REQUESTS": os.environ.get("VIGIL_FUZZ_ASAN_REQUESTS",
                                                  "3000"),
            "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:"
                            "detect_stack_use_after_return=0",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}),
            os.path.join(ROOT, rel), 600))
    elif asan_bin:
        not_tested.append(("test_http_fuzz [asan+ubsan]",
                           "VIGIL_ASAN_BIN=%s does not exist" % asan_bin))

    def suite_name(s):
        return s[1][0] if isinstance(s[1], tuple) else s[1]
    if args.only:
        suites = [s for s in suites if args.only in suite_name(s)]
    passed, failed, skipped = [], [], list(not_tested)
    if pg is not None and not pg.ready:
        with open(pg.log.name, errors="replace") as f:
            failed.append(("postgres", "did not start: " + f.read()[-1500:]))
    print("running %d suites (redis on port %d)" % (len(suites), port))
    if rabbit is not None:
        print("rabbitmq-server starting on port %d" % rabbit.port)
    try:
        for kind, name, path, timeout in suites:
            # Only the suites that talk to RabbitMQ wait for it to start.
            if rabbit is not None and suite_name((kind, name)) not in (
                    "unit_tests", "fuzz_asan") \
                    and rabbit.ready is None and not rabbit.wait():
                with open(rabbit.log.name, errors="replace") as f:
                    tail = f.read()[-1500:]
                failed.append(("rabbitmq-server", "did not start within 60 s: "
                               + tail))
                env.pop("VIGIL_TEST_AMQP_URL", None)
            runner = run_catch2 if kind == "catch2" else run_script
            p, f, s, output = runner(name, path, env, timeout)
            passed += p
            failed += f
            skipped += s
            if f:
                print("---- output of %s ----" % suite_name((kind, name)))
                print(output[-6000:])
                print("---- end of %s ----" % suite_name((kind, name)))
    finally:
        if rabbit is not None:
            rabbit.stop()
        if pg is not None:
            pg.stop()
        if s3rver is not None:  # filestore
            s3rver.kill()
            s3rver.wait()
        redis.terminate()
        try:
            redis.wait(timeout=10)
        except subprocess.TimeoutExpired:
            redis.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    for label, why in skipped:
        print("SKIPPED %s: %s" % (label, why))
    for label, why in failed:
        print("FAILED %s: %s" % (label, why))
    if skipped and args.no_skips:
        print("%d case(s) skipped under --no-skips: the run must start every "
              "server it tests against" % len(skipped))
    print("%d passed, %d failed, %d skipped"
          % (len(passed), len(failed), len(skipped)))
    return 1 if failed or (skipped and args.no_skips) else 0


if __name__ == "__main__":
    sys.exit(main())
