"""Delivery of spooled messages upstream through ``wizard.runtime`` (its Graph and SMTP transports,
its sign-in and its pacer, whose send log the runtime's own sends share).

Graph, exactly once (needs ``Mail.ReadWrite``):
  1. a draft from the MIME as it came (``POST /users/{from}/messages``, base64, text/plain), with a
     ``Bcc:`` header for the envelope recipients the headers do not name (Graph has no envelope);
     when that request body would pass Graph's ~4 MB, the large attachments come out of the MIME and
     go onto the draft one by one (upload sessions from 3 MB);
  2. the draft's id in the journal (state ``drafted``), then state ``sending``, then
     ``POST /messages/{id}/send``, then ``delivered``.
  After a crash the journal says where it stopped: ``drafted`` sends the draft; ``sending`` asks Graph
  whether the draft is still there (gone: it was sent; still a draft after a settling time: send it).
EWS, exactly once the same way (``_via_draft`` serves both): CreateItem with the ``MimeContent`` as it came,
  ``MessageDisposition="SaveOnly"`` into Drafts (the envelope-only recipients as ``BccRecipients`` beside it),
  the ItemId journaled, then SendItem (``SaveItemToFolder``: Sent Items); after a crash GetItem tells
  (``ErrorItemNotFound``: sent, it left Drafts under a new ID; ``IsDraft`` still true: unsent). No 4 MB
  rule: one EWS request takes about 64 MB, the MIME in base64 (``runtime.ews.MAX_REQUEST``).
SMTP upstream (XOAUTH2): the bytes as they came to the envelope recipients; a crash after the
upstream ``250`` and before the journal says so sends it again: at least once.

Transient failures (429, 5xx, SMTP 4xx, network) are tried again with exponential backoff and jitter
until ``[relay] max_age``; then, or at once on a permanent failure, the message goes to the
dead-letter folder with a DSN to the submitter (``wizard.relay.dsn``), except when the failure is the
mailbox's or the sign-in's (the DSN could not get out either) and never for a DSN.
"""

from __future__ import annotations

import email
import email.policy
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from wizard.runtime.model import Attachment, MailError, diagnosis_of

SETTLE = 120.0              # seconds a sent draft may still show in Drafts before we send it again
TRANSIENT = {"http.429", "http.5xx", "smtp.transient", "ErrorServerBusy", "http.unexpected", "internal"}
# failures of the mailbox or the sign-in: a DSN from the same mailbox could not get out either
ACCOUNT = ("AADSTS", "auth.", "claims.", "secret.", "config.", "tls.", "graph.", "ews.", "X-EWS-Policy-Reason",
           "535", "smtp.auth",
           "ErrorAccessDenied", "ErrorSendAsDenied", "ErrorInvalidUser", "ErrorNonExistentMailbox",
           "MailboxNotEnabledForRESTAPI", "ErrorImpersonateUserDenied", "554 5.2.252")


def is_transient(d) -> bool:
    return d.code in TRANSIENT or d.code.startswith("net.") or \
        bool(re.search(r"\bHTTP (429|5\d\d)\b", d.service_message or ""))


def is_account_failure(d) -> bool:
    return d.code.startswith(ACCOUNT)


def with_bcc(data: bytes, bcc: list[str]) -> bytes:
    """The message with a ``Bcc:`` header line for ``bcc`` put in front (Graph reads recipients from the MIME)."""
    if not bcc:
        return data
    return b"Bcc: " + ", ".join(bcc).encode("utf-8") + b"\r\n" + data


def request_size(mime: bytes) -> int:
    """The bytes of the request body Graph would get: the MIME base64-encoded."""
    return 4 * ((len(mime) + 2) // 3)


def split_large(mime: bytes, limit: int) -> tuple[bytes, list[Attachment]]:
    """(MIME without its largest attachments, those attachments) so that the MIME's base64 fits ``limit``."""
    msg = email.message_from_bytes(mime, policy=email.policy.default)
    parts = sorted(msg.iter_attachments(), key=lambda p: len(p.as_bytes()), reverse=True) \
        if msg.is_multipart() else []
    taken: list[Attachment] = []
    for part in parts:
        if request_size(msg.as_bytes()) <= limit:
            break
        data = part.get_payload(decode=True) or b""
        taken.append(Attachment(part.get_filename() or "attachment", part.get_content_type(), data))
        _remove(msg, part)
    return msg.as_bytes(), taken


def _remove(msg, target) -> None:
    for part in msg.walk():
        if part.is_multipart():
            payload = part.get_payload()
            if target in payload:
                payload.remove(target)
                return


class Delivery:
    """Worker threads that deliver what is due in the spool."""

    def __init__(self, cfg, spool, mailer, *, log_line=print, workers: int = 4, base_delay: float = 30.0,
                 max_delay: float = 3600.0, clock=time.time, rand=random.random, settle: float = SETTLE):
        self.cfg = cfg
        self.spool = spool
        self.mailer = mailer
        self.log_line = log_line
        self.workers = workers
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.clock = clock
        self.rand = rand
        self.settle = settle
        self._wake = threading.Condition()
        self._woken = False
        self._stopping = False
        self._inflight: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    @property
    def protocol(self) -> str:
        return self.cfg.outgoing.protocol

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="relay-delivery")
        self._thread = threading.Thread(target=self._loop, name="relay-scheduler", daemon=True)
        self._thread.start()

    def wake(self, mid: str | None = None) -> None:
        with self._wake:
            self._woken = True
            self._wake.notify_all()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking new work; let the messages in flight finish (the queue stays in the spool)."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
            wait = self._dispatch()
            with self._wake:
                if not self._woken and not self._stopping:
                    self._wake.wait(min(max(wait, 0.05), 1.0))
                self._woken = False

    def _dispatch(self) -> float:
        """Hand the due messages to the workers; seconds until the next one is due."""
        now, soonest = self.clock(), 1.0
        for j in self.spool.journals():
            mid = j.get("id")
            if not mid or mid in self._inflight:
                continue
            due = float(j.get("next_attempt") or 0)
            if due > now:
                soonest = min(soonest, due - now)
                continue
            with self._wake:
                if self._stopping:
                    break
                self._inflight.add(mid)
            try:
                self._pool.submit(self._run_one, mid)
            except RuntimeError:            # the pool is shutting down
                self._inflight.discard(mid)
                break
        return soonest

    def _run_one(self, mid: str) -> None:
        try:
            self.process(mid)
        except Exception as exc:          # a bug must not stop the relay: try again later
            self.log_line(f"{mid}: internal error {type(exc).__name__}: {exc}; trying again later")
            self.spool.update(mid, next_attempt=self.clock() + self.base_delay)
        finally:
            with self._wake:
                self._inflight.discard(mid)

    # -- one message --------------------------------------------------------------------------
    def process(self, mid: str) -> None:
        j = self.spool.journal(mid)
        if j is None:
            return
        started = self.clock()
        max_age = self.cfg.relay.max_age_seconds if self.cfg.relay else 2 * 86400.0
        try:
            data = self.spool.message(mid)
        except OSError:
            self.spool.bury(mid, last_error="the message file is missing from the spool")
            self.log_line(f"{mid}: dead: the message file is missing from the spool")
            return
        try:
            if self.protocol in ("graph", "ews"):
                done = self._via_draft(j, data)
            elif self.protocol == "smtp":
                self._smtp(j, data)
                done = True
            else:
                raise MailError(_config_error(f"the relay delivers over graph, ews or smtp, not [outgoing] protocol "
                                              f"= \"{self.protocol}\""))
        except Exception as exc:
            d = diagnosis_of(exc, self.cfg)
            self._failed(j, d, max_age)
            return
        if done:
            self.spool.delivered(mid, via=self.protocol)
            took = self.clock() - started
            self.log_line(f"{mid}: delivered from {j.get('sender')} to {', '.join(j.get('rcpts') or [])} over "
                          f"{self.protocol} in {took:.1f} s{' (DSN)' if j.get('dsn') else ''}")

    def _failed(self, j: dict, d, max_age: float) -> None:
        mid, now = j["id"], self.clock()
        attempts = int(j.get("attempts") or 0) + 1
        said = f"{d.code}: {d.cause}"
        if is_transient(d):
            delay = min(self.base_delay * 2 ** (attempts - 1), self.max_delay) * (0.5 + self.rand())
            if now + delay <= float(j.get("received") or now) + max_age:
                self.spool.update(mid, attempts=attempts, next_attempt=now + delay, last_error=said)
                self.log_line(f"{mid}: attempt {attempts} failed ({d.code}); next attempt in {delay:.0f} s")
                return
            said = f"gave up after {attempts} attempts (max_age {self.cfg.relay.max_age if self.cfg.relay else '2d'}): " + said
        dead = self.spool.bury(mid, attempts=attempts, last_error=said)
        if dead is None:
            return
        note = ""
        if j.get("dsn"):
            note = " (a DSN: never bounced)"
        elif is_account_failure(d):
            note = " (the mailbox or sign-in failed: no DSN, see `mailwizard relay status`)"
        else:
            from wizard.relay.dsn import queue_dsn
            try:
                dsn_id = queue_dsn(self.spool, dead, said)
            except Exception as exc:
                dsn_id, note = None, f" (no DSN: {type(exc).__name__})"
            if dsn_id:
                note = f" (DSN {dsn_id} to {dead.get('mail_from')})"
                self.wake()
        self.log_line(f"{mid}: dead: {said}{note}")

    def _via_draft(self, j: dict, data: bytes) -> bool:
        """Graph or EWS, exactly once: a draft, its id journaled, then its send. True when the message has been
        sent; False when it must wait (a draft still settling)."""
        mid = j["id"]
        who, sender = self.mailer.sender_of(j.get("sender") or j.get("mail_from"))
        self.mailer.sign_in(who)
        upstream = self.mailer.transport()          # GraphTransport or EwsTransport: the same draft calls
        state, draft = j.get("state"), j.get("draft_id")
        if draft and state in ("drafted", "sending"):
            now_state = upstream.draft_state(who, sender, draft)
            if now_state != "draft":
                if state == "sending":
                    return True                       # sent before the crash: Exchange took it
                draft = None                          # drafted, never sent, but gone: make it again
            elif state == "sending" and self.clock() < float(j.get("sending_at") or 0) + self.settle:
                self.spool.update(mid, next_attempt=float(j.get("sending_at") or 0) + self.settle)
                return False
        elif j.get("building"):                       # a crash while a large Graph draft was being built
            try:
                upstream.delete_message(who, sender, j["building"])
            except MailError:
                pass
            draft = None
        if not draft:
            bcc = [b for b in j.get("bcc") or []]
            if self.protocol == "ews":                # EWS: the Bcc as BccRecipients beside the MIME as it came
                draft = upstream.create_mime_draft(who, sender, data, bcc=bcc)
            else:
                draft = self._graph_draft(upstream, who, sender, mid, with_bcc(data, bcc))
            self.spool.update(mid, state="drafted", draft_id=draft, building=None)
        self.mailer.pacer.admit(sender, max(1, len(j.get("rcpts") or [])))
        self.spool.update(mid, state="sending", sending_at=self.clock())
        upstream.send_draft(who, sender, draft)
        return True

    def _graph_draft(self, graph, who, sender: str, mid: str, mime: bytes) -> str:
        """A Graph draft from the MIME (with its Bcc: header); past Graph's ~4 MB request, the large attachments
        go onto the draft one by one (the draft journaled as ``building`` meanwhile)."""
        from wizard.runtime.graph import MAX_REQUEST
        if request_size(mime) <= MAX_REQUEST:
            return graph.create_mime_draft(who, sender, mime)
        small, attachments = split_large(mime, MAX_REQUEST)
        draft = graph.create_mime_draft(who, sender, small)
        self.spool.update(mid, building=draft)
        for a in attachments:
            graph.add_attachment(who, sender, draft, a)
        return draft

    def _smtp(self, j: dict, data: bytes) -> None:
        who, sender = self.mailer.sender_of(j.get("sender") or j.get("mail_from"))
        self.mailer.sign_in(who)
        self.mailer.pacer.admit(sender, max(1, len(j.get("rcpts") or [])))
        self.mailer.transport().send_raw(who, sender, j.get("rcpts") or [], data,
                                         envelope_from=j.get("mail_from") or sender)


def _config_error(text: str):
    from wizard.diagnosis.catalogue import lookup
    return lookup("config.invalid", service_message=text)
