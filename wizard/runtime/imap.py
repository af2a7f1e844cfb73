"""IMAP for the runtime: implicit TLS (port 993), ``AUTHENTICATE XOAUTH2``
with an MSAL token (the XOAUTH2 user is the mailbox read, also for a shared
mailbox read with a delegated token), ``UID SEARCH UNSEEN [SINCE]``,
``UID FETCH BODY.PEEK[]`` (fetching does not mark read), ``UID STORE
+FLAGS (\\Seen)``, ``UID MOVE`` to a "Processed" folder (created when missing;
COPY + \\Deleted + EXPUNGE where MOVE is not offered).

An XOAUTH2 error challenge (``+ <base64 JSON>``) is answered with an empty
line, after which the server sends its final ``NO``. A refused sign-in is
recognised by Exchange's words (``AUTHENTICATE failed``) and by the RFC 5530
response codes other servers send (``[AUTHENTICATIONFAILED]``,
``[AUTHORIZATIONFAILED]``); the server's own words stay in the diagnosis.

A message's ``id`` is its UID in the inbox, as text."""

from __future__ import annotations

import email
import email.policy
import imaplib
import re
import socket
import ssl
import threading
from datetime import datetime, timedelta, timezone
from email.utils import getaddresses, parsedate_to_datetime

from wizard.diagnosis.catalogue import lookup
from wizard.diagnosis.classify import diagnose_network
from wizard.net.trust import trust_path
from wizard.runtime.mailproto import error_challenge, is_microsoft, probe, speaks, words
from wizard.runtime.model import Message, MailError, each_at_once

TIMEOUT = 30.0
_UID_RE = re.compile(rb"UID (\d+)")


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapTransport:
    def __init__(self, cfg, tokens, *, server: str, port: int, timeout: float = TIMEOUT, max_workers: int = 32):
        self.cfg = cfg
        self.tokens = tokens
        self.server = server or cfg.cloud.exchange_host
        self.port = port or 993
        self.timeout = timeout
        self.max_workers = max_workers          # connections logged out at once by close()
        self._conns: dict[str, _Conn] = {}
        self._lock = threading.Lock()
        self.connects = 0
        self.greeting = ""                      # the server's last greeting (tells Exchange from others)

    # -- connections --------------------------------------------------------------------
    def _open(self, address: str, token: str) -> imaplib.IMAP4_SSL:
        ctx = ssl.create_default_context(cafile=trust_path(self.cfg))    # verification always on
        try:
            imap = imaplib.IMAP4_SSL(self.server, self.port, ssl_context=ctx, timeout=self.timeout)
        except imaplib.IMAP4.error as exc:       # TLS worked, but the greeting is not IMAP's
            raise _NotImap(str(exc)) from None
        self.greeting = words(None, imap.welcome)
        challenges: list[bytes] = []

        def answer(challenge: bytes) -> bytes:
            # The first continuation asks for the response; any later one is the error
            # challenge, answered with an empty line so that the server sends its final NO.
            challenges.append(challenge or b"")
            if len(challenges) == 1:
                return f"user={address}\x01auth=Bearer {token}\x01\x01".encode()
            return b""
        try:
            try:
                imap.authenticate("XOAUTH2", answer)
            except imaplib.IMAP4.error as exc:
                if isinstance(exc, imaplib.IMAP4.abort):
                    raise
                said = words(None, str(exc))
                challenge = error_challenge(challenges[-1]) if len(challenges) > 1 else ""
                raise _AuthRefused(said, challenge) from None
        except BaseException:
            try:
                imap.shutdown()
            except Exception:
                pass
            raise
        self.connects += 1
        return imap

    def open_session(self, address: str, who) -> imaplib.IMAP4_SSL:
        """A connection of its own, signed in to ``address`` (TLS, AUTHENTICATE XOAUTH2), for a caller that
        passes a client's session through (the relay). Raises MailError."""
        try:
            return self._open(address, self.tokens.token("exchange", who))
        except MailError:
            raise
        except Exception as exc:
            raise MailError(self._diagnose(exc, address, who), account=address) from None

    def _with(self, address: str, who, work):
        """work(imap) on this mailbox's connection (opened on first use, reopened
        with a new token, once more after a dropped connection). Connections to
        different mailboxes open in parallel; one mailbox's commands run in turn."""
        for attempt in (1, 2):
            token = self.tokens.token("exchange", who)
            key = address.lower()
            stale = None
            try:
                with self._lock:
                    entry = self._conns.get(key)
                    if entry is None or entry.token != token:
                        stale, entry = entry, _Conn(token)
                        self._conns[key] = entry
                if stale is not None and stale.imap is not None:
                    _logout(stale.imap)
                with entry.lock:
                    if entry.imap is None:
                        entry.imap = self._open(address, token)
                    return work(entry.imap)
            except (imaplib.IMAP4.abort, ConnectionError, socket.timeout, ssl.SSLEOFError) as exc:
                self._drop(key)
                if attempt == 2:
                    raise MailError(self._diagnose(exc, address, who), account=address) from None
            except MailError:
                raise
            except Exception as exc:
                self._drop(key)
                raise MailError(self._diagnose(exc, address, who), account=address) from None
        raise AssertionError("unreachable")

    def _drop(self, key: str) -> None:
        with self._lock:
            entry = self._conns.pop(key, None)
        if entry is not None and entry.imap is not None:
            _logout(entry.imap)

    def _diagnose(self, exc, address: str, who):
        values = dict(cfg=self.cfg, flow=who.flow, address=address, host=self.server, port=self.port)
        text = str(exc)
        microsoft = is_microsoft(self.server, self.greeting)
        if isinstance(exc, _AuthRefused) or (isinstance(exc, imaplib.IMAP4.error) and _refused_sign_in(text)):
            said = exc.said if isinstance(exc, _AuthRefused) else words(None, text)
            challenge = getattr(exc, "challenge", "")
            if challenge:
                said += f" (XOAUTH2 error challenge: {challenge})"
            key = "IMAP AUTHENTICATE failed" if microsoft else "imap.auth"
            return _said(lookup(key, service_message=said[:300], **values), said)
        if isinstance(exc, _NotImap):
            return self._other_protocol(exc.said, values)
        net = diagnose_network(exc, **values)
        if net is not None and net.code in ("tls.error", "net.reset", "net.timeout"):
            greeting = probe(self.server, self.port)
            if greeting:
                return self._other_protocol(greeting, values)
        if net is not None:
            return net
        said = words(None, text)
        return _said(lookup("imap.error", service_message=f"{type(exc).__name__}: {text}"[:300], **values), said)

    def _other_protocol(self, greeting: str, values: dict):
        other = speaks(greeting)
        if other == "IMAP":
            what = "it speaks IMAP without TLS on this port (this client starts TLS at once, as on port 993)."
        else:
            what = f"it speaks {other}." if other else "it does not speak IMAP over TLS."
        return _said(lookup("net.protocol", service_message=greeting, expected="an IMAP server over TLS",
                            speaks=what, usual="port 993 (TLS from the start)", **values), greeting)

    def close(self) -> None:
        """Log out of every mailbox's connection. Each LOGOUT is a round trip:
        the connections are independent, so they are logged out concurrently
        (a bounded pool), not one after another (that cost one round trip per account)."""
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        open_ = [entry.imap for entry in conns if entry.imap is not None]
        each_at_once(_logout, open_, self.max_workers)

    # -- operations -------------------------------------------------------------------------
    def check(self, address: str, who) -> None:
        def work(imap):
            _ok(imap.select("INBOX", readonly=True), "SELECT INBOX")
        self._with(address, who, work)

    def inbox(self, address: str, who) -> dict:
        """SELECT INBOX read-only and count: {"total", "unread"}. Raises MailError.
        (The connection test's mailbox step.)"""
        def work(imap):
            data = _ok(imap.select("INBOX", readonly=True), "SELECT INBOX")
            total = int(data[0]) if data and data[0] and data[0].isdigit() else None
            found = _ok(imap.search(None, "UNSEEN"), "SEARCH UNSEEN")
            return {"total": total, "unread": len((found[0] or b"").split())}
        return self._with(address, who, work)

    def fetch(self, address: str, who, since, limit: int, unprocessed_only: bool) -> list[Message]:
        def work(imap):
            _ok(imap.select("INBOX"), "SELECT INBOX")
            criteria = ["UNSEEN"] if unprocessed_only else ["ALL"]
            if since is not None:
                criteria += ["SINCE", _imap_date(since)]
            typ, data = imap.uid("SEARCH", *criteria)
            _ok((typ, data), "UID SEARCH")
            uids = [int(u) for u in (data[0] or b"").split()]
            out = []
            for chunk in _chunks(sorted(uids), 50):
                if len(out) >= limit:
                    break
                typ, rows = imap.uid("FETCH", ",".join(map(str, chunk)), "(UID FLAGS INTERNALDATE BODY.PEEK[])")
                _ok((typ, rows), "UID FETCH")
                for row in rows:
                    if not isinstance(row, tuple):
                        continue
                    m = _UID_RE.search(row[0])
                    msg = _parse(row[1], m.group(1).decode() if m else "", address, b"\\Seen" in row[0])
                    arrived = _internaldate(row[0])
                    if arrived is not None:
                        msg.received = arrived       # when the server received it, as EWS and Graph report
                    if since is not None and msg.received and msg.received < _aware(since):
                        continue      # SINCE is by date; keep the exact time asked for
                    if unprocessed_only and msg.is_read:
                        continue
                    out.append(msg)
            return out[:limit]
        return self._with(address, who, work)

    def mark_processed(self, address: str, who, message_id: str, folder: str | None) -> None:
        def work(imap):
            _ok(imap.select("INBOX"), "SELECT INBOX")
            _ok(imap.uid("STORE", message_id, "+FLAGS", "(\\Seen)"), "UID STORE")
            if not folder:
                return
            target = _quote(folder)
            typ, data = imap.create(target)          # NO [ALREADYEXISTS] when it is there: fine
            if "MOVE" in imap.capabilities:
                typ, data = imap.uid("MOVE", message_id, target)
                _ok((typ, data), "UID MOVE")
            else:
                _ok(imap.uid("COPY", message_id, target), "UID COPY")
                _ok(imap.uid("STORE", message_id, "+FLAGS", "(\\Deleted)"), "UID STORE")
                imap.expunge()
        self._with(address, who, work)


class _Conn:
    def __init__(self, token: str):
        self.token = token
        self.imap: imaplib.IMAP4_SSL | None = None
        self.lock = threading.Lock()


class _ImapNo(Exception):
    pass


class _AuthRefused(Exception):
    """AUTHENTICATE XOAUTH2 refused: the server's final words and the error challenge in words."""

    def __init__(self, said: str, challenge: str = ""):
        super().__init__(said)
        self.said, self.challenge = said, challenge


class _NotImap(Exception):
    """The server answered, but its greeting is not IMAP's."""

    def __init__(self, said: str):
        super().__init__(said)
        self.said = said


_REFUSED_CODES = ("[AUTHENTICATIONFAILED]", "[AUTHORIZATIONFAILED]", "[EXPIRED]", "[PRIVACYREQUIRED]",
                  "[UNAVAILABLE]")


def _refused_sign_in(text: str) -> bool:
    """A refused sign-in: Exchange's "AUTHENTICATE failed." or an RFC 5530 response code."""
    upper = text.upper()
    return "AUTHENTICATE FAILED" in upper or any(code in upper for code in _REFUSED_CODES)


def _said(d, said: str):
    """The diagnosis with the server's own words at the end of its cause (where poll --json,
    send and check --json all show them)."""
    if said and said not in d.cause:
        d.cause = f"{d.cause} The server said: \"{said}\""
    return d


def _ok(answer, what: str):
    typ, data = answer
    if typ != "OK":
        said = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise _ImapNo(f"{what}: {typ} {said}")
    return data


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _imap_date(when: datetime) -> str:
    """IMAP's date (RFC 3501 date-text), English month whatever the locale. SINCE
    compares dates in the server's time zone: ask from a day early and keep the
    exact time when reading the messages."""
    d = _aware(when).astimezone(timezone.utc) - timedelta(days=1)
    return f"{d.day:02d}-{_MONTHS[d.month - 1]}-{d.year}"


def _internaldate(meta: bytes) -> datetime | None:
    import time as _time
    parts = imaplib.Internaldate2tuple(meta)
    if parts is None:
        return None
    return datetime.fromtimestamp(_time.mktime(parts), timezone.utc)


def _chunks(items, n):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _logout(imap) -> None:
    try:
        imap.logout()
    except Exception:
        try:
            imap.shutdown()
        except Exception:
            pass


def _parse(raw: bytes, uid: str, address: str, seen: bool) -> Message:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    try:
        received = parsedate_to_datetime(msg["Date"]) if msg["Date"] else None
        if received is not None and received.tzinfo is None:
            received = received.replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        received = None
    body = msg.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if body is not None else ""
    atts = []
    for part in msg.iter_attachments():
        data = part.get_payload(decode=True) or b""
        atts.append((part.get_filename() or "", part.get_content_type(), len(data)))
    return Message(id=uid, account=address, sender=(getaddresses([str(msg["From"] or "")]) or [("", "")])[0][1],
                   to=[a for _, a in getaddresses([str(msg["To"] or "")]) if a], subject=str(msg["Subject"] or ""),
                   received=received, body_text=text, attachments=atts, is_read=seen)
