#!/usr/bin/python3
"""Interop checks between vigil's S3 filestore and boto3 (Debian's
python3-boto3) on one S3 server: what vigil writes boto3 reads, and what
boto3 writes vigil reads, byte for byte (small and multipart-sized).

Run: /usr/bin/python3 tests/interop/test_filestore_s3.py
  VIGIL_BIN: the vigil binary (default <repo>/build/vigil).
  VIGIL_TEST_S3_URL: the S3 server (tests/run_all.py starts s3rver; keys
    S3RVER/S3RVER), VIGIL_TEST_S3_BUCKET its bucket (default vigil-test).
Prints "PASS name" / "FAIL name: reason" / "SKIP name: reason"; exits 1 if
any failed.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
VIGIL = os.environ.get("VIGIL_BIN", str(ROOT / "build" / "vigil"))
URL = os.environ.get("VIGIL_TEST_S3_URL", "")
BUCKET = os.environ.get("VIGIL_TEST_S3_BUCKET", "vigil-test")
CHECKS = ("vigil_writes_boto3_reads", "boto3_writes_vigil_reads",
          "multipart_vigil_writes_boto3_reads", "outage_during_retries")
S3RVER = ROOT / "tests" / "js" / "node_modules" / ".bin" / "s3rver"


def blob(n, seed):
    # Deterministic bytes with every value, NULs included.
    out = bytearray(n)
    x = seed or 1
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7fffffff
        out[i] = (x >> 16) & 0xff
    return bytes(out)


def vigil(cfg, *args, data=None):
    return subprocess.run([VIGIL, "--config", cfg, "filestore", *args],
                          input=data, capture_output=True, timeout=120)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_s3rver(data, port):
    import socket
    import time
    proc = subprocess.Popen(
        ["node", str(S3RVER), "-d", data, "-a", "127.0.0.1", "-p", str(port),
         "-s", "--configure-bucket", BUCKET],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("s3rver did not start")


def outage(tmp):
    """A private s3rver, down when vigil's put starts: once vigil logs its
    first retry the server is started, and the put must then succeed."""
    import boto3
    from botocore.config import Config
    if not S3RVER.exists():
        return None
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    cfg = os.path.join(tmp, "outage.yml")
    with open(cfg, "w") as f:
        f.write("filestore:\n  backend: s3\n  options:\n"
                "    access_key: S3RVER\n    secret_key: S3RVER\n"
                "    bucket_name: %s\n    endpoint_url: \"%s\"\n"
                % (BUCKET, url))
    data = blob(50000, 11)
    p = subprocess.Popen([VIGIL, "--config", cfg, "filestore", "put",
                          "outage/a.bin"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(data)
    p.stdin.close()
    server = None
    try:
        seen = []
        for line in p.stderr:
            seen.append(line)
            if b"retry 1 of" in line:
                break
        else:
            p.wait(timeout=60)
            return "vigil logged no retry (exit %s): %r" % (
                p.returncode, b"".join(seen)[-500:])
        if b"S3RVER" in b"".join(seen):
            return "the retry log shows a key: %r" % seen
        server = start_s3rver(os.path.join(tmp, "outage-s3"), port)
        rest = p.stderr.read()
        if p.wait(timeout=60) != 0:
            return "vigil put exited %d after the server came back: %r" % (
                p.returncode, rest[-500:])
        s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="S3RVER",
                          aws_secret_access_key="S3RVER",
                          region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
        body = s3.get_object(Bucket=BUCKET, Key="outage/a.bin")["Body"].read()
        return None if body == data else "stored bytes differ"
    finally:
        if p.poll() is None:
            p.kill()
        if server is not None:
            server.kill()
            server.wait()


def main():
    if not URL:
        for c in CHECKS:
            print("SKIP %s: VIGIL_TEST_S3_URL is not set" % c)
        return 0
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        for c in CHECKS:
            print("SKIP %s: python3-boto3 is not installed" % c)
        return 0
    s3 = boto3.client("s3", endpoint_url=URL, aws_access_key_id="S3RVER",
                      aws_secret_access_key="S3RVER", region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    tmp = tempfile.mkdtemp(prefix="vigil-filestore-interop-")
    cfg = os.path.join(tmp, "vigil.yml")
    with open(cfg, "w") as f:
        f.write("filestore:\n  backend: s3\n  options:\n"
                "    access_key: S3RVER\n    secret_key: S3RVER\n"
                "    bucket_name: %s\n    endpoint_url: \"%s\"\n"
                "    default_acl: private\n" % (BUCKET, URL))
    prefix = "interop/%d/" % os.getpid()
    failed = 0

    def check(name, fn):
        nonlocal failed
        try:
            why = fn()
        except Exception as e:  # a check's own failure, reported as such
            why = "%s: %s" % (type(e).__name__, e)
        if why:
            failed += 1
            print("FAIL %s: %s" % (name, why))
        else:
            print("PASS %s" % name)

    def vigil_writes(size, seed, key):
        data = blob(size, seed)
        p = vigil(cfg, "put", prefix + key, "--content-type", "image/png",
                  data=data)
        if p.returncode != 0:
            return "vigil put exited %d: %s" % (p.returncode, p.stderr[-500:])
        got = s3.get_object(Bucket=BUCKET, Key=prefix + key)
        body = got["Body"].read()
        if body != data:
            return "boto3 read %d bytes, not the %d vigil wrote" % (
                len(body), len(data))
        if got.get("ContentType") != "image/png":
            return "content type %r" % got.get("ContentType")
        return None

    def boto3_writes():
        data = blob(200 * 1024, 7)
        s3.put_object(Bucket=BUCKET, Key=prefix + "from-boto3.bin", Body=data)
        p = vigil(cfg, "get", prefix + "from-boto3.bin")
        if p.returncode != 0:
            return "vigil get exited %d: %s" % (p.returncode, p.stderr[-500:])
        if p.stdout != data:
            return "vigil read %d bytes, not the %d boto3 wrote" % (
                len(p.stdout), len(data))
        p = vigil(cfg, "rm", prefix + "from-boto3.bin")
        if p.returncode != 0:
            return "vigil rm exited %d" % p.returncode
        p = vigil(cfg, "exists", prefix + "from-boto3.bin")
        if p.stdout.strip() != b"no":
            return "after vigil rm, exists says %r" % p.stdout
        return None

    check(CHECKS[0], lambda: vigil_writes(100 * 1024 + 3, 3, "small.png"))
    check(CHECKS[1], boto3_writes)
    check(CHECKS[2], lambda: vigil_writes(9 * 1024 * 1024 + 17, 5,
                                          "big.png"))
    check(CHECKS[3], lambda: outage(tmp))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
