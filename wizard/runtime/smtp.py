"""SMTP submission for the runtime: STARTTLS (port 587), ``AUTH XOAUTH2``
with an MSAL token, one connection kept per (mailbox, token) and reused.

The XOAUTH2 user is the sending mailbox for app-only tokens and the signed-in
user for delegated ones (who then needs Send As on a different sender).
Exchange Online's limits (30 messages a minute, 10,000 recipients a day) are
kept by the Mailer's pacer before a message gets here.

``AUTH XOAUTH2`` goes without an initial response when the command line would
pass 512 octets (RFC 4954 section 4; an Entra token always does): the response
follows the server's ``334``. An error challenge (``334 <base64 JSON>``) is
answered with an empty line, then the final reply is read. ``4xx`` replies are
temporary: the message is tried again, a bounded number of times.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from wizard.diagnosis.catalogue import lookup
from wizard.diagnosis.classify import diagnose_network
from wizard.net.trust import trust_path
from wizard.runtime.mailproto import SMTP_MAX_LINE, error_challenge, is_microsoft, probe, speaks, words, xoauth2
from wizard.runtime.model import MailError, each_at_once

TIMEOUT = 30.0
ATTEMPTS = 3                 # tries of one message when the server answers 4xx (temporary)
WAITS = (1.0, 2.0)           # seconds before the 2nd and 3rd try
_EXCHANGE_CODES = ("5.7.139", "5.7.3", "5.2.252")


class AuthRefused(smtplib.SMTPAuthenticationError):
    """AUTH XOAUTH2 refused; ``challenge`` is the error challenge in words ("" when none came)."""

    def __init__(self, code, resp, challenge: str = ""):
        super().__init__(code, resp)
        self.challenge = challenge


class RecipientRefused(smtplib.SMTPRecipientsRefused):
    """Some recipients refused at RCPT while others took the message (``sent_to``)."""

    def __init__(self, recipients, sent_to):
        super().__init__(recipients)
        self.sent_to = sent_to


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


def authenticate(smtp: smtplib.SMTP, user: str, token: str) -> None:
    """AUTH XOAUTH2 on a connection after STARTTLS + EHLO. Raises AuthRefused."""
    response = xoauth2(user, token)
    if len("AUTH XOAUTH2 ") + len(response) + 2 <= SMTP_MAX_LINE:
        code, reply = smtp.docmd("AUTH", "XOAUTH2 " + response)
    else:                        # too long for one command line: wait for 334, then send it
        code, reply = smtp.docmd("AUTH", "XOAUTH2")
        if code == 334:
            code, reply = smtp.docmd(response)
    challenge = ""
    if code == 334:              # the error challenge: answer with an empty line to get the final reply
        challenge = error_challenge(reply)
        code, reply = smtp.docmd("")
    if code != 235:
        raise AuthRefused(code, reply, challenge)


class SmtpTransport:
    def __init__(self, cfg, tokens, *, server: str, port: int, timeout: float = TIMEOUT, max_workers: int = 32,
                 sleep=time.sleep, attempts: int = ATTEMPTS):
        self.cfg = cfg
        self.tokens = tokens
        self.server = server or cfg.cloud.smtp_host
        self.port = port if port and port != 443 else 587
        self.timeout = timeout
        self.max_workers = max_workers          # connections closed at once by close()
        self.sleep = sleep                      # the wait between tries after a 4xx reply
        self.attempts = max(1, attempts)
        self._conns: dict[str, _Session] = {}        # signed-in user -> its session
        self._lock = threading.Lock()
        self.connects = 0
        self.greeting = ""                      # the server's last 220 greeting (tells Exchange from others)

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=trust_path(self.cfg))   # verification always on

    def _open(self, user: str, token: str) -> smtplib.SMTP:
        smtp = _SMTP(self.server, self.port, timeout=self.timeout)   # SMTPConnectError unless 220
        try:
            self.greeting = words(*smtp.greeting)
            smtp.ehlo()
            smtp.starttls(context=self._context())
            smtp.ehlo()
            authenticate(smtp, user, token)
        except BaseException:
            smtp.close()
            raise
        self.connects += 1
        return smtp

    def _diagnose(self, exc, sender: str, who, user: str = "", tries: int = 1):
        values = dict(cfg=self.cfg, flow=who.flow, address=sender, host=self.server, port=self.port,
                      user=user or sender, attempts=tries)
        microsoft = is_microsoft(self.server, self.greeting)
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            address, (code, text) = next(iter(exc.recipients.items()))
            said = words(code, text)
            if 400 <= code < 500:
                return _said(lookup("smtp.transient", service_message=said, said=said, **values), said)
            d = lookup("smtp.rcpt", service_message=said, recipient=address, said=said, **values)
            sent_to = getattr(exc, "sent_to", ())
            if sent_to:
                d.cause += f" The others ({', '.join(sent_to)}) got the message."
            return _said(d, said)
        if isinstance(exc, smtplib.SMTPConnectError) and not 200 <= exc.smtp_code < 600:
            # smtplib cut the first 4 characters of a greeting that has no reply code: ask again
            return self._other_protocol(probe(self.server, self.port) or words(None, exc.smtp_error), values)
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            said = words(code, exc.smtp_error)
            challenge = getattr(exc, "challenge", "")
            if challenge:
                said += f" (XOAUTH2 error challenge: {challenge})"
            for known in _EXCHANGE_CODES:
                if known in said and microsoft:
                    return _said(lookup(f"{code} {known}", service_message=said, **values), said)
            if microsoft and ("SubmissionQuotaExceeded" in said or code in (421, 450, 451, 452)):
                return _said(lookup("http.429", service_message=said, **values), said)
            if 400 <= code < 500:
                return _said(lookup("smtp.transient", service_message=said, said=said, **values), said)
            if isinstance(exc, smtplib.SMTPAuthenticationError) and not microsoft:
                return _said(lookup("smtp.auth", service_message=said, **values), said)
            key = f"smtp.{code}" if microsoft else "smtp.refused"
            return _said(lookup(key, service_message=said, **values), said)
        net = diagnose_network(exc, **values)
        if net is not None and net.code in ("tls.error", "net.reset"):
            greeting = probe(self.server, self.port)
            if greeting and speaks(greeting) != "SMTP":
                return self._other_protocol(greeting, values)
        if net is None and isinstance(exc, smtplib.SMTPServerDisconnected):
            greeting = probe(self.server, self.port)
            if greeting and speaks(greeting) != "SMTP":
                return self._other_protocol(greeting, values)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            said = f"{exc}"
            return _said(lookup("smtp.refused", service_message=said, **values), said)
        return net or lookup("http.unexpected", service_message=f"{type(exc).__name__}: {exc}"[:300], **values)

    def _other_protocol(self, greeting: str, values: dict):
        other = speaks(greeting)
        what = f"it speaks {other}" if other else "it does not speak SMTP"
        return _said(lookup("net.protocol", service_message=greeting, expected="an SMTP server",
                            speaks=f"{what}.", usual="port 587 (STARTTLS)", **values), greeting)

    def send(self, who, sender: str, to, cc, subject: str, body: str, attachments, save_copy: bool = False) -> None:
        """One SMTP session per signed-in user, reused; sessions of different
        users run in parallel, one user's messages go in turn. A dropped reused
        connection is opened again at once; a 4xx reply is tried again after a wait."""
        self._deliver(who, sender, build_mime(sender, to, cc, subject, body, attachments), list(to) + list(cc))

    def send_raw(self, who, sender: str, recipients, mime: bytes, envelope_from: str | None = None) -> None:
        """The RFC 5322 bytes as they are, to the envelope ``recipients`` (Bcc ones included: no Bcc
        header is added), signed in for ``sender``. The relay's upstream path."""
        self._deliver(who, sender, mime, list(recipients), envelope_from or sender)

    def _deliver(self, who, sender: str, msg, recipients: list, envelope_from: str | None = None) -> None:
        user = sender if who.app_only or not who.username else who.username
        ukey = user.lower()
        dropped = transient = 0
        while True:
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
                    if isinstance(msg, bytes):
                        refused = entry.smtp.sendmail(envelope_from or sender, recipients, msg,
                                                      mail_options=_mail_options(entry.smtp, msg,
                                                                                 envelope_from or sender, recipients))
                    else:
                        refused = entry.smtp.send_message(msg, from_addr=sender, to_addrs=recipients)
                if refused:         # some recipients took it, these were refused
                    raise RecipientRefused(refused, [r for r in recipients if r not in refused])
                return
            except (smtplib.SMTPServerDisconnected, ConnectionError, socket.timeout) as exc:
                self._drop(ukey, entry, quit_it=False)
                dropped += 1
                if dropped >= 2:
                    raise MailError(self._diagnose(exc, sender, who, user), account=sender) from None
            except RecipientRefused as exc:
                err = MailError(self._diagnose(exc, sender, who, user), account=sender)
                err.sent_to = list(exc.sent_to)         # they have it: a retry must not send it to them again
                raise err from None
            except Exception as exc:
                self._drop(ukey, entry)
                if _temporary(exc) and transient + 1 < self.attempts:
                    self.sleep(WAITS[min(transient, len(WAITS) - 1)])
                    transient += 1
                    continue
                raise MailError(self._diagnose(exc, sender, who, user, tries=transient + 1),
                                account=sender) from None

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
        for tried in range(1, self.attempts + 1):
            try:
                _quit(self._open(user, self.tokens.token("exchange", who)))
                return
            except MailError:
                raise
            except Exception as exc:
                if _temporary(exc) and tried < self.attempts:
                    self.sleep(WAITS[min(tried - 1, len(WAITS) - 1)])
                    continue
                raise MailError(self._diagnose(exc, address, who, user, tries=tried), account=address) from None

    def close(self) -> None:
        """QUIT every connection, concurrently (each QUIT is a round trip)."""
        with self._lock:
            entries, self._conns = list(self._conns.values()), {}
        each_at_once(_quit, [e.smtp for e in entries if e.smtp is not None], self.max_workers)


def _temporary(exc) -> bool:
    """A 4xx reply (the server says: try again later), at any stage, or every recipient refused with 4xx."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 500


def _said(d, said: str):
    """The diagnosis with the server's own words at the end of its cause (where send, poll --json and
    check --json all show them)."""
    if said and said not in d.cause:
        d.cause = f"{d.cause} The server said: \"{said}\""
    return d


class _SMTP(smtplib.SMTP):
    """smtplib's client, keeping the server's greeting (it names the server)."""
    greeting: tuple = (None, b"")

    def connect(self, host="localhost", port=0, source_address=None):
        self.greeting = super().connect(host, port, source_address)
        return self.greeting


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


def _mail_options(smtp, data: bytes, envelope_from: str, recipients) -> list[str]:
    """MAIL FROM parameters for bytes sent as they came (the relay): ``BODY=8BITMIME`` when the
    message has 8-bit bytes (RFC 6152: not to be sent undeclared) and ``SMTPUTF8`` when an envelope
    address is not ASCII (RFC 6531), each when the server offers it."""
    options = []
    if smtp.has_extn("8bitmime") and not data.isascii():
        options.append("BODY=8BITMIME")
    if smtp.has_extn("smtputf8") and not all(a.isascii() for a in [envelope_from, *recipients]):
        options.append("SMTPUTF8")
    return options
