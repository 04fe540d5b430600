#!/usr/bin/python3
"""vigil's mail over SMTP (`vigil mail send`, libcurl's SMTP and MIME)
against a real SMTP server: Debian's python3-aiosmtpd on a free port
(tests/interop/smtp_server.py), reading back what arrived with Python's
email parser.

* html_mail_with_inline_image: two recipients, a non-ASCII subject after
  mail.subject-prefix, a text part, an HTML part and an inline PNG: the
  server's envelope has both recipients and mail.from; the message is
  multipart/related around multipart/alternative, the image's Content-ID
  is what the HTML's cid: names and its bytes are the file's.
* starttls_and_auth: the server requires STARTTLS and AUTH; with
  mail.use-tls, the CA file and the right password the mail arrives over
  TLS, authenticated; a wrong password fails (exit 1) and the error shows
  neither password.
* use_tls_refuses_plain_server: mail.use-tls against a server without
  STARTTLS fails instead of sending in the clear.
* implicit_tls: mail.use-ssl against a TLS-from-the-first-byte server.
* temporary_failure_reported: a server answering 451 makes the one-try
  command fail with the server's reply, marked as a temporary failure.
* config_errors: use-tls and use-ssl together is a config error naming
  mail.use-ssl (exit 2); a server that is down fails with a clear
  message (exit 1).

Run: /usr/bin/python3 tests/interop/test_mail_smtp.py (VIGIL_BIN: the
binary). Prints PASS/FAIL lines.
"""

import email
import email.policy
import subprocess
import sys

from harness import free_port, run_checks, tmp_root, vigil_bin
from smtp_server import make_certificate, start_smtp_server

PNG = (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
PASSWORD = "s3cret-mail-pass"


def workdir(name):
    d = tmp_root() / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def config(d, port, extra="", timeout=10):
    path = d / "config.yml"
    path.write_text(f"""
node.data-dir: "{d / 'data'}"
mail.backend: smtp
mail.host: 127.0.0.1
mail.port: {port}
mail.from: alerts@vigil.test
mail.timeout: {timeout}
{extra}
""")
    return path


def send(cfg, *args):
    return subprocess.run([vigil_bin(), "--config", str(cfg), "mail", "send",
                           *args], capture_output=True, text=True,
                          timeout=60)


def check_html_mail_with_inline_image():
    d = workdir("mail-html")
    port = free_port()
    server, store = start_smtp_server(d / "mails", port)
    try:
        (d / "body.html").write_text(
            '<p>Two new issues</p><img src="cid:chart-1@vigil">')
        (d / "chart.png").write_bytes(PNG)
        out = send(config(d, port), "--to", "ann@example.com", "--to",
                   "bob@example.com", "--subject", "Neue Fehler: Übersicht",
                   "--text", "Two new issues\n", "--html-file",
                   str(d / "body.html"), "--image",
                   f"chart-1@vigil={d / 'chart.png'}")
        assert out.returncode == 0, (out.returncode, out.stderr)
        mails = store.mails()
        assert len(mails) == 1, mails
        env, raw = mails[0]
        assert env["mail_from"] == "alerts@vigil.test", env
        assert sorted(env["rcpt_tos"]) == ["ann@example.com",
                                           "bob@example.com"], env
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Subject"] == "[Sentry] Neue Fehler: Übersicht", \
            msg["Subject"]
        assert msg["From"] == "alerts@vigil.test"
        assert "ann@example.com" in msg["To"] and "bob@example.com" in \
            msg["To"]
        assert msg["Message-ID"] and msg["Date"], dict(msg)
        parts = {p.get_content_type(): p for p in msg.walk()}
        assert "multipart/related" in parts, list(parts)
        assert "multipart/alternative" in parts, list(parts)
        assert parts["text/plain"].get_content() == "Two new issues\n"
        assert 'cid:chart-1@vigil' in parts["text/html"].get_content()
        img = parts["image/png"]
        assert img["Content-ID"] == "<chart-1@vigil>", img["Content-ID"]
        assert img.get_content() == PNG
        assert img.get_content_disposition() == "inline"
    finally:
        server.stop()


def check_starttls_and_auth():
    d = workdir("mail-tls")
    cert, key = make_certificate(d)
    port = free_port()
    server, store = start_smtp_server(d / "mails", port, starttls=(cert, key),
                                      require_tls=True, user="vigil",
                                      password=PASSWORD)
    try:
        extra = (f'mail.use-tls: true\nmail.tls-ca-file: "{cert}"\n'
                 f'mail.username: vigil\nmail.password: "{PASSWORD}"\n')
        out = send(config(d, port, extra), "--to", "ann@example.com")
        assert out.returncode == 0, (out.returncode, out.stderr)
        assert PASSWORD not in out.stdout + out.stderr
        env, _ = store.mails()[0]
        assert env["tls"] and env["authenticated"], env
        wrong = "wrong-password-xyz"
        bad = (f'mail.use-tls: true\nmail.tls-ca-file: "{cert}"\n'
               f'mail.username: vigil\nmail.password: "{wrong}"\n')
        # aiosmtpd leaves a failed AUTH unanswered: bounded by mail.timeout.
        out = send(config(d, port, bad, timeout=3), "--to",
                   "ann@example.com")
        assert out.returncode == 1, (out.returncode, out.stderr)
        assert "127.0.0.1:%d" % port in out.stderr, out.stderr
        assert wrong not in out.stderr and PASSWORD not in out.stderr
        assert len(store.mails()) == 1
    finally:
        server.stop()


def check_use_tls_refuses_plain_server():
    d = workdir("mail-notls")
    port = free_port()
    server, store = start_smtp_server(d / "mails", port)
    try:
        out = send(config(d, port, "mail.use-tls: true\n"), "--to",
                   "ann@example.com")
        assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
        assert store.mails() == [], "sent in the clear"
    finally:
        server.stop()


def check_implicit_tls():
    d = workdir("mail-ssl")
    cert, key = make_certificate(d)
    port = free_port()
    server, store = start_smtp_server(d / "mails", port,
                                      implicit_tls=(cert, key))
    try:
        out = send(config(d, port, f'mail.use-ssl: true\n'
                                   f'mail.tls-ca-file: "{cert}"\n'),
                   "--to", "ann@example.com", "--subject", "over TLS")
        assert out.returncode == 0, (out.returncode, out.stderr)
        _, raw = store.mails()[0]
        assert b"over TLS" in raw
        # The server speaks TLS only: a plain client gets nowhere.
        out = send(config(d, port, timeout=3), "--to",
                   "ann@example.com")
        assert out.returncode == 1, (out.returncode, out.stderr)
        assert len(store.mails()) == 1
    finally:
        server.stop()


def check_temporary_failure_reported():
    d = workdir("mail-451")
    port = free_port()
    server, store = start_smtp_server(d / "mails", port, tempfail=1)
    try:
        out = send(config(d, port), "--to", "ann@example.com")
        assert out.returncode == 1, (out.returncode, out.stderr)
        assert "451" in out.stderr, out.stderr
        # The next try is accepted.
        out = send(config(d, port), "--to", "ann@example.com")
        assert out.returncode == 0, (out.returncode, out.stderr)
        assert len(store.mails()) == 1
    finally:
        server.stop()


def check_refused_recipient_spares_the_others():
    d = workdir("mail-550")
    port = free_port()
    server, store = start_smtp_server(d / "mails", port,
                                      reject=["gone@example.com"])
    try:
        out = send(config(d, port), "--to", "ann@example.com", "--to",
                   "gone@example.com", "--to", "bob@example.com")
        assert out.returncode == 0, (out.returncode, out.stderr)
        mails = store.mails()
        assert len(mails) == 1, mails
        assert sorted(mails[0][0]["rcpt_tos"]) == ["ann@example.com",
                                                   "bob@example.com"], mails
        # Every recipient refused: the mail fails, permanently.
        out = send(config(d, port), "--to", "gone@example.com")
        assert out.returncode == 1, (out.returncode, out.stderr)
        assert len(store.mails()) == 1
    finally:
        server.stop()


def check_config_errors():
    d = workdir("mail-config")
    port = free_port()
    out = send(config(d, port, "mail.use-tls: true\nmail.use-ssl: true\n"),
               "--to", "ann@example.com")
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "mail.use-ssl" in out.stderr, out.stderr
    out = send(config(d, port), "--to", "ann@example.com")
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert f"127.0.0.1:{port}" in out.stderr, out.stderr
    out = send(config(d, port), "--to", "not-an-address")
    assert out.returncode == 2 and "not a mail address" in out.stderr, \
        out.stderr


def main():
    return run_checks([
        ("html_mail_with_inline_image", check_html_mail_with_inline_image),
        ("starttls_and_auth", check_starttls_and_auth),
        ("use_tls_refuses_plain_server", check_use_tls_refuses_plain_server),
        ("implicit_tls", check_implicit_tls),
        ("temporary_failure_reported", check_temporary_failure_reported),
        ("refused_recipient_spares_the_others",
         check_refused_recipient_spares_the_others),
        ("config_errors", check_config_errors),
    ])


if __name__ == "__main__":
    sys.exit(main())
