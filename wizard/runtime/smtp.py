"""SMTP submission for the runtime: STARTTLS (port 587), ``AUTH XOAUTH2``
with an MSAL token, one connection kept per (mailbox, token) and reused.

The XOAUTH2 user is the sending mailbox for app-only tokens and the signed-in
user for delegated ones (who then needs Send As on a different sender).
Exchange Online's limits (30 messages a minute, 10,000 recipients a day) are
kept by the Mailer's pacer before a message gets here.
"""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from wizard.diagnosis.catalogue import lookup
from wizard.diagnosis.classify import diagnose_network
from wizard.net.probes import trust_path
from wizard.runtime.model import MailError, each_at_once

TIMEOUT = 30.0


def xoauth2(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (base64)."""
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode("ascii")


def build_mime(sender: str, to, cc, subject: str, body: str, attachments) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(body)
    for a in attachments:
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(a.data, maintype=maintype or "application", subtype=subtype or "octet-stream",
                           filename=a.name)
    return msg


class SmtpTransport:
    def __init__(self, cfg, tokens, *, server: str, port: int, timeout: float = TIMEOUT, max_workers: int = 32):
        self.cfg = cfg
        self.tokens = tokens
        self.server = server or cfg.cloud.smtp_host
        self.port = port if port and port != 443 else 587
        self.timeout = timeout
        self.max_workers = max_workers          # connections closed at once by close()
        self._conns: dict[str, _Session] = {}        # signed-in user -> its session
        self._lock = threading.Lock()
        self.connects = 0

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=trust_path(self.cfg))   # verification always on

    def _open(self, user: str, token: str) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.server, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            smtp.starttls(context=self._context())
            smtp.ehlo()
            code, reply = smtp.docmd("AUTH", "XOAUTH2 " + xoauth2(user, token))
            if code == 334:       # the server sent an error challenge: finish the exchange to get the reply
                code, reply = smtp.docmd("")
            if code != 235:
                raise smtplib.SMTPAuthenticationError(code, reply)
        except BaseException:
            smtp.close()
            raise
        self.connects += 1
        return smtp

    def _diagnose(self, exc, sender: str, who):
        values = dict(cfg=self.cfg, flow=who.flow, address=sender, host=self.server, port=self.port)
        if isinstance(exc, smtplib.SMTPResponseException):
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            said = f"{exc.smtp_code} {text}"
            for code in ("5.7.139", "5.7.3", "5.2.252"):
                if code in text:
                    return lookup(f"{exc.smtp_code} {code}", service_message=said, **values)
            if "SubmissionQuotaExceeded" in text or exc.smtp_code in (421, 450, 451, 452):
                return lookup("http.429", service_message=said, **values)
            d = lookup(f"smtp.{exc.smtp_code}", service_message=said, **values)
            return d
        net = diagnose_network(exc, **values)
        return net or lookup("http.unexpected", service_message=f"{type(exc).__name__}: {exc}"[:300], **values)

    def send(self, who, sender: str, to, cc, subject: str, body: str, attachments, save_copy: bool = False) -> None:
        """One SMTP session per signed-in user, reused; sessions of different
        users run in parallel, one user's messages go in turn."""
        msg = build_mime(sender, to, cc, subject, body, attachments)
        user = sender if who.app_only or not who.username else who.username
        ukey = user.lower()
        for attempt in (1, 2):
            token = self.tokens.token("exchange", who)
            stale = None
            with self._lock:
                entry = self._conns.get(ukey)
                if entry is None or entry.token != token:     # first use, or token renewed: sign in again
                    stale, entry = entry, _Session(token)
                    self._conns[ukey] = entry
            if stale is not None and stale.smtp is not None:
                _quit(stale.smtp)
            try:
                with entry.lock:
                    if entry.smtp is None:
                        entry.smtp = self._open(user, token)
                    entry.smtp.send_message(msg, from_addr=sender, to_addrs=list(to) + list(cc))
                return
            except (smtplib.SMTPServerDisconnected, ConnectionError, socket.timeout) as exc:
                self._drop(ukey, entry, quit_it=False)
                if attempt == 2:
                    raise MailError(self._diagnose(exc, sender, who), account=sender) from None
            except Exception as exc:
                self._drop(ukey, entry)
                raise MailError(self._diagnose(exc, sender, who), account=sender) from None

    def _drop(self, ukey: str, entry: "_Session", *, quit_it: bool = True) -> None:
        with self._lock:
            if self._conns.get(ukey) is entry:
                del self._conns[ukey]
        if quit_it and entry.smtp is not None:
            _quit(entry.smtp)

    def check(self, address: str, who) -> None:
        """Sign in as the runtime would to send from ``address`` (STARTTLS +
        AUTH XOAUTH2 as the mailbox app-only, as the signed-in user delegated)
        and sign out, sending nothing. Raises MailError. (The connection
        test's mailbox step; Send As is only checked when a message is sent.)"""
        user = address if who.app_only or not who.username else who.username
        try:
            _quit(self._open(user, self.tokens.token("exchange", who)))
        except MailError:
            raise
        except Exception as exc:
            raise MailError(self._diagnose(exc, address, who), account=address) from None

    def close(self) -> None:
        """QUIT every connection, concurrently (each QUIT is a round trip)."""
        with self._lock:
            entries, self._conns = list(self._conns.values()), {}
        each_at_once(_quit, [e.smtp for e in entries if e.smtp is not None], self.max_workers)


class _Session:
    """One user's SMTP connection and the token it signed in with."""

    def __init__(self, token: str):
        self.token = token
        self.smtp: smtplib.SMTP | None = None
        self.lock = threading.Lock()


def _quit(smtp) -> None:
    try:
        smtp.quit()
    except Exception:
        smtp.close()
