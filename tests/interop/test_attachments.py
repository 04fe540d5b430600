#!/usr/bin/python3
"""Envelope attachments from the real Python Sentry SDK (Debian's
python3-sentry-sdk, `scope.add_attachment`) against `vigil run node`:
kept in the filestore, listed and downloaded through the read API,
removed by `vigil cleanup`.

* sdk_attachments_downloaded: an event with a text and a binary attachment
  (all 256 byte values): the list shows both as Sentry's serializer does
  (name, mimetype, size, sha1), and ?download=1 gives back the very bytes
  with their content type and a Content-Disposition naming the file.
* attachment_over_limit_dropped: an attachment over
  ingest.max-attachment-size is dropped and counted, its event and the
  envelope's other attachment kept.
* attachment_without_event_id: an envelope with an attachment and no
  event id gets a new id (as Relay's require_event_id) in its answer, and
  the attachment is listed under it; a bad attachment id is 400, an
  unknown one 404.
* attachments_on_s3: the same round trip with filestore.backend s3 against
  the harness's S3 server (s3rver; skipped without VIGIL_TEST_S3_URL), the
  object read back with boto3.
* cleanup_removes_files: `vigil cleanup --days 0` removes the attachments'
  rows and files (the filesystem store under the data directory is empty
  after it, and the list is empty).

Run: /usr/bin/python3 tests/interop/test_attachments.py (VIGIL_BIN: the
binary). Prints PASS/FAIL lines.
"""

import hashlib
import json
import os
import subprocess
import sys
import uuid

import sentry_sdk

from harness import skip, vigil_bin, wait_until
from ingest_common import KEY_A, Node, run_node_checks, wait_for_event

NODE = None
LIMIT = 100000
TIMEOUT = 20

TEXT = "first line\nsecond line, ünïcode\n".encode()
BINARY = bytes(range(256)) * 40


def node():
    global NODE
    if NODE is None:
        NODE = Node("attachments-node",
                    extra=f"ingest.max-attachment-size: {LIMIT}\n").start()
    return NODE


def send_with_attachments(target, attachments, title):
    """Sends one message event with `attachments` [(bytes, name, type)]
    through the SDK; returns its event id."""
    sentry_sdk.init(dsn=target.dsn(KEY_A, 1), default_integrations=False,
                    auto_enabling_integrations=False, shutdown_timeout=5)
    with sentry_sdk.push_scope() as scope:
        for data, name, ctype in attachments:
            scope.add_attachment(bytes=data, filename=name, content_type=ctype)
        event_id = sentry_sdk.capture_message(title)
    sentry_sdk.flush(timeout=10)
    return event_id


def attachments_of(target, event_id):
    status, body = target.api(
        f"projects/acme/backend/events/{event_id}/attachments/")
    assert status == 200, (status, body)
    return body


def download(target, event_id, attachment_id):
    return target.request(
        "GET", f"/api/0/projects/acme/backend/events/{event_id}/attachments/"
        f"{attachment_id}/?download=1",
        headers={"Authorization": "Bearer test-api-token-0123456789"})


def round_trip(target):
    """Sends the two attachments and checks the list and the downloads."""
    event_id = send_with_attachments(
        target, [(TEXT, "notes.txt", "text/plain"),
                 (BINARY, "dump.bin", None)], "attachments round trip")
    wait_for_event(target, event_id, TIMEOUT)
    got = attachments_of(target, event_id)
    assert [a["name"] for a in got] == ["notes.txt", "dump.bin"], got
    by_name = {a["name"]: a for a in got}
    for data, name, ctype in ((TEXT, "notes.txt", "text/plain"),
                              (BINARY, "dump.bin",
                               "application/octet-stream")):
        a = by_name[name]
        assert a["size"] == len(data), a
        assert a["sha1"] == hashlib.sha1(data).hexdigest(), a
        assert a["mimetype"] == ctype, a
        assert a["event_id"] == event_id and a["type"] == "event.attachment"
        status, headers, body = download(target, event_id, a["id"])
        assert status == 200, (status, body[:200])
        assert body == data, (name, len(body))
        assert headers.get("Content-Type", "").startswith(ctype), headers
        assert f'filename="{name}"' in headers.get("Content-Disposition",
                                                   ""), headers
    return event_id


def check_sdk_attachments_downloaded():
    round_trip(node())


def check_attachment_over_limit_dropped():
    big = os.urandom(LIMIT + 1)
    event_id = send_with_attachments(
        node(), [(big, "big.bin", None), (TEXT, "small.txt", "text/plain")],
        "attachment over the limit")
    wait_for_event(node(), event_id, TIMEOUT)
    got = attachments_of(node(), event_id)
    assert [a["name"] for a in got] == ["small.txt"], got
    web = node().health()
    text = json.dumps(web)
    assert '"attachments_too_large": 1' in text, text[:2000]


def check_attachment_without_event_id():
    item = b"some bytes"
    body = (b'{}\n{"type":"attachment","length":%d,"filename":"a.txt"}\n'
            % len(item)) + item + b"\n"
    status, _, answer = node().envelope(body)
    assert status == 200, (status, answer)
    given = json.loads(answer)["id"]
    assert len(given) == 32, answer
    got = wait_until(lambda: attachments_of(node(), given), TIMEOUT,
                     "the attachment under the new id")
    assert [a["name"] for a in got] == ["a.txt"], got
    event_id = uuid.uuid4().hex
    base = f"projects/acme/backend/events/{event_id}/attachments/"
    status, body = node().api(base + "x1/")
    assert status == 400 and "detail" in body, (status, body)
    status, body = node().api(base + "12345/")
    assert status == 404 and "detail" in body, (status, body)
    status, body = node().api(base)
    assert status == 200 and body == [], (status, body)


def check_attachments_on_s3():
    url = os.environ.get("VIGIL_TEST_S3_URL", "")
    if not url:
        skip("VIGIL_TEST_S3_URL is not set")
    import boto3
    from botocore.config import Config
    bucket = os.environ.get("VIGIL_TEST_S3_BUCKET", "vigil-test")
    s3node = Node("attachments-s3-node", extra=(
        "filestore.backend: s3\n"
        "filestore.options:\n"
        "  access_key: S3RVER\n  secret_key: S3RVER\n"
        f"  bucket_name: {bucket}\n  endpoint_url: \"{url}\"\n")).start()
    try:
        event_id = round_trip(s3node)
        got = attachments_of(s3node, event_id)
        s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="S3RVER",
                          aws_secret_access_key="S3RVER",
                          region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
        keys = [o["Key"] for o in s3.list_objects_v2(
            Bucket=bucket, Prefix=f"attachments/1/{event_id}/")["Contents"]]
        assert len(keys) == 2, keys
        objs = {s3.get_object(Bucket=bucket, Key=k)["Body"].read()
                for k in keys}
        assert objs == {TEXT, BINARY}, [len(o) for o in objs]
        assert len(got) == 2
    finally:
        rc = s3node.stop()
        assert rc == 0, f"the S3 node exited {rc}"


def check_cleanup_removes_files():
    event_id = round_trip(node())
    files = node().data_dir / "files" / "attachments"
    assert any(files.rglob("*")), "no attachment files under the data dir"
    out = subprocess.run([vigil_bin(), "--config", str(node().config),
                          "cleanup", "--days", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert "attachments" in out.stdout, out.stdout
    assert attachments_of(node(), event_id) == []
    left = [p for p in files.rglob("*") if p.is_file()]
    assert left == [], left


def main():
    return run_node_checks([
        ("sdk_attachments_downloaded", check_sdk_attachments_downloaded),
        ("attachment_over_limit_dropped", check_attachment_over_limit_dropped),
        ("attachment_without_event_id", check_attachment_without_event_id),
        ("attachments_on_s3", check_attachments_on_s3),
        ("cleanup_removes_files", check_cleanup_removes_files),
    ], lambda: NODE)


if __name__ == "__main__":
    sys.exit(main())
