#!/usr/bin/python3
"""Runs every vigil test suite against real servers and prints the tally.

Starts a private redis-server on a free loopback port (VIGIL_TEST_REDIS_URL
points the suites at it), runs the Catch2 executables and the Python interop
and fault scripts, stops the server, and ends with "N passed, N failed".
Each test case counts once: Catch2 cases through their JUnit report, Python
checks through their "PASS name" / "FAIL name: reason" lines.
"""
import argparse
import glob
import os
import shutil
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


def run_catch2(name, exe, env, timeout):
    report = tempfile.mktemp(suffix=".xml")
    started = time.time()
    try:
        proc = subprocess.run([exe, "-r", "junit", "-o", report], env=env,
                              timeout=timeout, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        output = proc.stdout
    except subprocess.TimeoutExpired as e:
        return [], [(name, "timed out after %d s" % timeout)], str(e.output)
    passed, failed = [], []
    try:
        root = ET.parse(report).getroot()
        for case in root.iter("testcase"):
            label = "%s: %s" % (name, case.get("name"))
            bad = case.find("failure") if case.find("failure") is not None \
                else case.find("error")
            if bad is not None:
                failed.append((label, (bad.get("message") or bad.text or "")[:300]))
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
    return passed, failed, output


def run_script(name, path, env, timeout):
    started = time.time()
    try:
        proc = subprocess.run(["/usr/bin/python3", path], env=env,
                              timeout=timeout, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        output, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        out = e.output.decode() if isinstance(e.output, bytes) else (e.output or "")
        return [], [(name, "timed out after %d s" % timeout)], out
    passed, failed = [], []
    for line in output.splitlines():
        if line.startswith("PASS "):
            passed.append("%s: %s" % (name, line[5:].strip()))
        elif line.startswith("FAIL "):
            label, _, why = line[5:].partition(":")
            failed.append(("%s: %s" % (name, label.strip()), why.strip()))
    if code != 0 and not failed:
        failed.append((name, "exit code %d" % code))
    if code == 0 and not passed and not failed:
        passed.append(name)
    print("  %s: %.1f s" % (name, time.time() - started))
    return passed, failed, output


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", help="run only suites whose name contains this")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    workdir = tempfile.mkdtemp(prefix="vigil-tests-")
    redis, port = start_redis(workdir)
    env = dict(os.environ)
    env["VIGIL_TEST_REDIS_URL"] = "redis://127.0.0.1:%d/0" % port
    env["VIGIL_BIN"] = os.path.join(build, "vigil")
    env["VIGIL_TEST_WORKDIR"] = workdir
    suites = []
    for exe, timeout in (("unit_tests", 600), ("integration_tests", 600),
                         ("fuzz_asan", 900)):
        path = os.path.join(build, "tests", exe)
        if os.path.exists(path):
            suites.append(("catch2", exe, path, timeout))
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "interop", "test_*.py"))
                       + glob.glob(os.path.join(ROOT, "tests", "faults", "test_*.py"))):
        rel = os.path.relpath(path, ROOT)
        suites.append(("script", rel, path, 300))
    if args.only:
        suites = [s for s in suites if args.only in s[1]]
    passed, failed = [], []
    print("running %d suites (redis on port %d)" % (len(suites), port))
    try:
        for kind, name, path, timeout in suites:
            runner = run_catch2 if kind == "catch2" else run_script
            p, f, output = runner(name, path, env, timeout)
            passed += p
            failed += f
            if f:
                print("---- output of %s ----" % name)
                print(output[-6000:])
                print("---- end of %s ----" % name)
    finally:
        redis.terminate()
        try:
            redis.wait(timeout=10)
        except subprocess.TimeoutExpired:
            redis.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    for label, why in failed:
        print("FAILED %s: %s" % (label, why))
    print("%d passed, %d failed" % (len(passed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
