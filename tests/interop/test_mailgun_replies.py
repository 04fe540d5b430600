#!/usr/bin/python3
"""Mail replies in: Mailgun's inbound webhook against `vigil run node`,
and the issue comments API.

The reply address is computed here as Sentry computes it (Django's
Signer: HMAC-SHA256 under SHA-256(salt + "signer" + SECRET_KEY),
base64url without padding, lower case), not by asking vigil, and the
webhook is signed as Mailgun signs it (HMAC-SHA256 of timestamp + token
under the API key).

* valid_reply: a urlencoded webhook from a member becomes a note on the
  issue (201); GET /api/0/issues/{id}/comments/ shows its text without the
  quoted mail, and the member's email and name; a multipart/form-data
  webhook works too.
* rejected: bad signature, stale timestamp and replayed token 403; an
  address with a bad signature or of an unknown issue 400; a sender who is
  not a member 403; GET 405; a body that is not a form 400; each with a
  JSON detail, and none adds a note; the node keeps serving.
* api_comments: POST /api/0/issues/{id}/comments/ adds a note (201), 400
  for an empty text, 401 without the token.

Run: /usr/bin/python3 tests/interop/test_mailgun_replies.py (VIGIL_BIN).
"""

import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.parse
import uuid

from harness import wait_until
from ingest_common import TOKEN, Node, node_config, run_node_checks

NODE = None
API_KEY = "key-0123456789abcdef0123456789abcdef"
SECRET = "vigil-test-secret-key-0123456789"
HOST = "reply.example.com"
MEMBER = "Ann@Example.com"
SALT = "sentry.utils.email.signer._CaseInsensitiveSigner"

EXTRA = f"""
mail.enable-replies: true
mail.reply-hostname: "{HOST}"
mail.mailgun-api-key: "{API_KEY}"
system.secret-key: "{SECRET}"
"""


class MailNode(Node):
    """A node whose organization lists members."""

    def __init__(self, name):
        super().__init__(name, extra=EXTRA)
        text = node_config(self.port, self.data_dir, EXTRA).replace(
            "  - {id: 1, slug: acme}",
            "  - id: 1\n    slug: acme\n    members:\n"
            f"      - {{email: \"{MEMBER}\", name: \"Ann Example\"}}\n"
            "      - {email: \"bob@example.com\", projects: [limited]}")
        self.config.write_text(text)


def node():
    global NODE
    if NODE is None:
        NODE = MailNode("mailgun-node").start()
    return NODE


def reply_address(group_id, org_id=1):
    value = f"{group_id}.{org_id}"
    key = hashlib.sha256((SALT + "signer" + SECRET).encode()).digest()
    mac = hmac.new(key, value.encode(), hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).decode().rstrip("=").lower()
    return f"{value}+{sig}@{HOST}"


def signed(fields, timestamp=None, token=None, key=API_KEY):
    ts = str(int(timestamp if timestamp is not None else time.time()))
    tok = token or uuid.uuid4().hex
    sig = hmac.new(key.encode(), (ts + tok).encode(),
                   hashlib.sha256).hexdigest()
    out = {"timestamp": ts, "token": tok, "signature": sig}
    out.update(fields)
    return out


def post_form(fields, multipart=False, method="POST"):
    if multipart:
        boundary = "vigilBoundary" + uuid.uuid4().hex
        parts = []
        for k, v in fields.items():
            parts.append(f"--{boundary}\r\nContent-Disposition: form-data; "
                         f"name=\"{k}\"\r\n\r\n{v}\r\n")
        body = ("".join(parts) + f"--{boundary}--\r\n").encode()
        ctype = f"multipart/form-data; boundary={boundary}"
    else:
        body = urllib.parse.urlencode(fields).encode()
        ctype = "application/x-www-form-urlencoded"
    status, _, data = node().request(method, "/api/hooks/mailgun/inbound/",
                                     body, {"Content-Type": ctype})
    return status, (json.loads(data) if data else None)


def the_issue():
    if getattr(the_issue, "group", None):
        return the_issue.group
    event = {"event_id": uuid.uuid4().hex, "message": "reply to me",
             "level": "error", "fingerprint": ["mailgun"],
             "timestamp": time.time()}
    status, _, body = node().store(event)
    assert status == 200, (status, body)
    the_issue.group = wait_until(
        lambda: next((g for g in node().issues()
                      if g["title"].startswith("reply to me")), None),
        20, "the issue stored")
    return the_issue.group


def comments(group_id):
    status, body = node().api(f"issues/{group_id}/comments/")
    assert status == 200, (status, body)
    return body


REPLY = ("Fixed in 1.2, deploying now.\n\n"
         "On Mon, Dec 7, 2026 at 3:04 PM Sentry <root@localhost> wrote:\n"
         "> BACKEND-1 - reply to me\n> 1 event\n")


def check_valid_reply():
    gid = the_issue()["id"]
    status, body = post_form(signed({
        "recipient": reply_address(gid), "sender": MEMBER.lower(),
        "To": f"Sentry <{reply_address(gid)}>",
        "From": f"Ann <{MEMBER}>", "body-plain": REPLY}))
    assert status == 201, (status, body)
    assert body["issue"] == str(gid), body
    notes = comments(gid)
    assert len(notes) == 1, notes
    note = notes[0]
    assert note["type"] == "note", note
    assert note["data"]["text"] == "Fixed in 1.2, deploying now.", note
    assert note["user"]["email"] == MEMBER, note
    assert note["user"]["name"] == "Ann Example", note
    assert note["dateCreated"].endswith("Z"), note
    # Mailgun's multipart form, with the older To/From fields only.
    status, body = post_form(signed({
        "To": reply_address(gid), "From": f"Ann <{MEMBER}>",
        "body-plain": "Second thought.\r\n-- \r\nAnn"}), multipart=True)
    assert status == 201, (status, body)
    notes = comments(gid)
    assert [n["data"]["text"] for n in notes] == \
        ["Second thought.", "Fixed in 1.2, deploying now."], notes


def check_rejected():
    gid = the_issue()["id"]
    before = len(comments(gid))
    good = {"recipient": reply_address(gid), "sender": MEMBER,
            "body-plain": "should not be added"}

    def refused(fields, want, multipart=False, method="POST"):
        status, body = post_form(fields, multipart, method)
        assert status == want, (fields, status, body)
        assert isinstance(body.get("detail"), str) and body["detail"], body
        return body["detail"]

    bad_sig = signed(good)
    bad_sig["signature"] = "0" * 64
    refused(bad_sig, 403)
    refused(signed(good, key="key-wrong"), 403)
    assert "stale" in refused(signed(good, timestamp=time.time() - 600), 403)
    replay = signed(good)
    replay["body-plain"] = "first use of this token"
    status, _ = post_form(replay)
    assert status == 201, status
    before += 1
    assert "already used" in refused(replay, 403)
    forged = reply_address(gid).replace("+", "+x", 1)
    refused(signed(dict(good, recipient=forged)), 400)
    refused(signed(dict(good, recipient=reply_address(999999))), 400)
    refused(signed(dict(good, recipient=f"{gid}.1@{HOST}")), 400)
    refused(signed(dict(good, sender="mallory@example.com")), 403)
    refused({"token": "x"}, 400)
    refused(signed(good), 405, method="GET")
    status, _, data = node().request(
        "POST", "/api/hooks/mailgun/inbound/", b"{}",
        {"Content-Type": "application/json"})
    assert status == 400, (status, data)
    status, _, _ = node().request("POST", "/api/hooks/nope/", b"",
                                  {"Content-Type": "text/plain"})
    assert status == 404, status
    texts = [n["data"]["text"] for n in comments(gid)]
    assert len(texts) == before, texts
    assert "should not be added" not in texts, texts
    assert node().health()


def check_api_comments():
    gid = the_issue()["id"]
    h = {"Authorization": f"Bearer {TOKEN}",
         "Content-Type": "application/json"}
    status, _, data = node().request(
        "POST", f"/api/0/issues/{gid}/comments/",
        json.dumps({"text": "from the API"}).encode(), h)
    assert status == 201, (status, data)
    note = json.loads(data)
    assert note["data"]["text"] == "from the API", note
    assert comments(gid)[0]["id"] == note["id"]
    status, _, _ = node().request("POST", f"/api/0/issues/{gid}/comments/",
                                  json.dumps({"text": ""}).encode(), h)
    assert status == 400, status
    status, _, _ = node().request(
        "POST", f"/api/0/issues/{gid}/comments/", b"{}",
        {"Content-Type": "application/json"})
    assert status == 401, status
    status, _, _ = node().request(
        "PATCH", f"/api/0/issues/{gid}/comments/", b"{}", h)
    assert status == 405, status


if __name__ == "__main__":
    sys.exit(run_node_checks([
        ("valid_reply", check_valid_reply),
        ("rejected", check_rejected),
        ("api_comments", check_api_comments),
    ], lambda: NODE))
