"""A real SMTP server for the mail tests: Debian's python3-aiosmtpd on a
port of the test's choosing, storing each mail it accepts as
<dir>/<n>.eml with <dir>/<n>.json (the envelope's sender and recipients).

Used in-process (start_smtp_server) so that a test can read what arrived.
Options: STARTTLS (required or offered), implicit TLS, AUTH with one
user and password, answering the first N mails 451 (try later), and
refusing some recipients 550.
"""

import json
import ssl
import subprocess
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword, SMTP


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1 (openssl from Debian);
    returns (cert, key) paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "smtp-cert.pem", d / "smtp-key.pem"
    if not cert.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext",
             "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True)
    return cert, key


class _Store:
    def __init__(self, directory, tempfail, reject=()):
        self.reject = set(reject)
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        # Numbers given out, and those whose files are complete: a reader
        # sees a mail only once both of its files are written.
        self.taken = 0
        self.done = []
        self.refused = 0
        self.tempfail = tempfail
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        if address in self.reject:
            return "550 5.1.1 no such user (test)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refused < self.tempfail:
                self.refused += 1
                return "451 4.3.0 try again later (test)"
            self.taken += 1
            n = self.taken
        (self.dir / f"{n}.eml").write_bytes(envelope.original_content
                                            or envelope.content)
        (self.dir / f"{n}.json").write_text(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated)}))
        with self.lock:
            self.done.append(n)
        return "250 OK"

    @property
    def count(self):
        """Mails accepted and written."""
        with self.lock:
            return len(self.done)

    def mails(self):
        """[(envelope dict, raw bytes)] in arrival order."""
        out = []
        with self.lock:
            done = sorted(self.done)
        for n in done:
            out.append((json.loads((self.dir / f"{n}.json").read_text()),
                        (self.dir / f"{n}.eml").read_bytes()))
        return out


class _Controller(Controller):
    def __init__(self, handler, smtp_kwargs, **kw):
        self.smtp_kwargs = smtp_kwargs
        super().__init__(handler, **kw)

    def factory(self):
        return SMTP(self.handler, **self.smtp_kwargs)


def start_smtp_server(directory, port, starttls=None, require_tls=False,
                      implicit_tls=None, user=None, password=None,
                      tempfail=0, reject=()):
    """Starts the server; returns (controller, store). `starttls` and
    `implicit_tls`: (cert, key) paths."""
    store = _Store(directory, tempfail, reject)
    kw = {"hostname": "127.0.0.1", "port": port}
    smtp_kwargs = {"decode_data": False}
    if starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*map(str, starttls))
        smtp_kwargs["tls_context"] = ctx
        smtp_kwargs["require_starttls"] = require_tls
    if implicit_tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*map(str, implicit_tls))
        kw["ssl_context"] = ctx
    if user is not None:
        def authenticator(server, session, envelope, mechanism, data):
            ok = (isinstance(data, LoginPassword)
                  and data.login == user.encode()
                  and data.password == password.encode())
            return AuthResult(success=ok)
        smtp_kwargs["authenticator"] = authenticator
        smtp_kwargs["auth_required"] = True
        smtp_kwargs["auth_require_tls"] = bool(starttls or implicit_tls)
    controller = _Controller(store, smtp_kwargs, **kw)
    controller.start()
    return controller, store
