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
          "multipart_vigil_writes_boto3_reads")


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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
