"""Delivery of spooled messages upstream through ``wizard.runtime`` (its Graph and SMTP transports,
its sign-in and its pacer, whose send log the runtime's own sends share).

Graph, exactly once (needs ``Mail.ReadWrite``):
  1. a draft from the MIME as it came (``POST /users/{from}/messages``, base64, text/plain), with a
     ``Bcc:`` header for the envelope recipients the headers do not name (Graph has no envelope);
     when that request body would pass Graph's ~4 MB, the large parts (attachments, inline images, wherever
     they are nested: ``wizard.relay.large``) come out of the MIME and go onto the draft one by one (upload
     sessions from 3 MB); mail whose text alone passes it is refused at DATA time (``refusal``);
  2. the draft's id in the journal (state ``drafted``), then state ``sending``, then
     ``POST /messages/{id}/send``, then ``delivered``.
  Before the draft is made the journal says ``creating``: when that creation's answer is lost (a timeout, a cut
  connection, a crash before its id is journaled), the next attempt deletes the unsent drafts of the message in
  Drafts (by its Message-ID: Graph's ``internetMessageId``) before it makes one, and once more after the send.
  After a crash the journal says where it stopped: ``drafted`` sends the draft; ``sending`` asks Graph
  whether the draft is still there (gone: it was sent; still a draft after a settling time: send it).
EWS, exactly once the same way (``_via_draft`` serves both): CreateItem with the ``MimeContent`` as it came,
  ``MessageDisposition="SaveOnly"`` into Drafts (the envelope-only recipients as ``BccRecipients`` beside it),
  the ItemId journaled, then SendItem (``SaveItemToFolder``: Sent Items); after a crash GetItem tells
  (``ErrorItemNotFound``: sent, it left Drafts under a new ID; ``IsDraft`` still true: unsent). No 4 MB
  rule: one EWS request takes about 64 MB, the MIME in base64 (``runtime.ews.MAX_REQUEST``).
The send of a draft is never repeated blindly (Graph's transport does not retry it): a not-found on the send of
  a draft never sent makes it again; one that may have been sent (``sending``) is delivered when the draft is gone,
  and never buried with a DSN unless ``draft_state`` says it is still a draft. ``draft_via`` journals the protocol
  that made the draft: after ``[outgoing] protocol`` changes, a ``sending`` draft is checked and sent over it, a
  ``drafted`` one deleted there and the message sent over the current protocol.
SMTP upstream (XOAUTH2): the bytes as they came to the envelope recipients; a crash after the
upstream ``250`` and before the journal says so sends it again: at least once.

Transient failures (429, 5xx, SMTP 4xx, network) are tried again with exponential backoff and jitter
until ``[relay] max_age``; then, or at once on a permanent failure, the message goes to the
dead-letter folder with a DSN to the submitter (``wizard.relay.dsn``), except when the failure is the
mailbox's or the sign-in's (the DSN could not get out either) and never for a DSN.
"""

from __future__ import annotations

import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from wizard.relay.large import graph_refusal, request_size, split_large, with_bcc
from wizard.runtime.model import MailError, diagnosis_of

SETTLE = 120.0              # seconds a sent draft may still show in Drafts before we send it again
RESCAN = 60.0               # seconds between full reads of the queue's journals (the schedule is kept in memory)
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


class Stopping(Exception):
    """The relay is stopping: a wait Exchange asked for (Retry-After, a busy server) ends here, and the
    message is tried again at the next start (a SIGKILL after TimeoutStopSec would cut it anyway)."""


def stop_aware_sleep(stopping: threading.Event):
    """A sleep for the runtime that ends with Stopping once ``stopping`` is set."""
    def pause(seconds: float) -> None:
        if stopping.wait(seconds):
            raise Stopping()
    return pause


class Delivery:
    """Worker threads that deliver what is due in the spool."""

    def __init__(self, cfg, spool, mailer, *, log_line=print, workers: int = 4, base_delay: float = 30.0,
                 max_delay: float = 3600.0, clock=time.time, rand=random.random, settle: float = SETTLE):
        self._upstream = (cfg, mailer)   # swapped whole by use(); a delivery keeps the pair it started with
        self._local = threading.local()
        self._retired: list = []
        self.spool = spool
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
        # the queue's schedule: id -> next attempt. Kept by the accepts (wake), the workers (after each
        # attempt) and a full read of the journals at start, after `relay queue retry|drop` and every RESCAN s
        self._due: dict[str, float] = {}
        self._held: dict[str, float] = {}          # not before (after an internal error, e.g. a full disk)
        self._troubles: dict[str, int] = {}        # internal errors in a row: the backoff
        self._touched: set[str] | None = None         # ids changed while a full read runs
        self._scanned_at: float | None = None
        self._mark = 0
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    @property
    def cfg(self):
        return getattr(self._local, "upstream", self._upstream)[0]

    @cfg.setter
    def cfg(self, cfg) -> None:
        self._upstream = (cfg, self._upstream[1])

    @property
    def mailer(self):
        return getattr(self._local, "upstream", self._upstream)[1]

    def current(self) -> tuple:
        """(config, Mailer) in force: what new deliveries and the IMAP/POP3 logins use."""
        return self._upstream

    def use(self, cfg, mailer) -> None:
        """A reloaded config and its Mailer: the deliveries that start from now on use them; those in
        flight finish with theirs (closed at stop)."""
        old = self._upstream[1]
        self._upstream = (cfg, mailer)
        if old is not mailer and old is not None:
            self._retired.append(old)

    @property
    def protocol(self) -> str:
        return self.cfg.outgoing.protocol

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="relay-delivery")
        self._thread = threading.Thread(target=self._loop, name="relay-scheduler", daemon=True)
        self._thread.start()

    def wake(self, mid: str | None = None) -> None:
        """A message ``mid`` was queued (due now); without an id: read the queue's journals again."""
        with self._wake:
            if mid:
                self._note(mid, 0.0)
            else:
                self._scanned_at = None
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
        retired, self._retired = self._retired, []
        for old in retired:                     # the Mailers a reload replaced
            old.close()

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

    def _note(self, mid: str, due: float | None) -> None:
        """(Holding ``_wake``.) ``mid``'s next attempt; None: it left the queue."""
        if due is None:
            self._due.pop(mid, None)
        else:
            self._due[mid] = due
        if self._touched is not None:
            self._touched.add(mid)

    def _scan(self) -> None:
        """The schedule from the journals on disk, one at a time."""
        with self._wake:
            self._touched = set()
        fresh = {}
        for mid in self.spool.ids():
            j = self.spool.journal(mid)
            if j is not None:
                fresh[mid] = max(float(j.get("next_attempt") or 0), self._held.get(mid, 0.0))
        with self._wake:
            for mid in self._touched:               # newer than what the read saw
                if mid in self._due:
                    fresh[mid] = self._due[mid]
                else:
                    fresh.pop(mid, None)
            self._due, self._touched = fresh, None

    def _dispatch(self) -> float:
        """Hand the due messages to the workers; seconds until the next one is due."""
        now, soonest = self.clock(), 1.0
        mark, last = self.spool.changed_mark(), self._scanned_at
        if last is None or mark != self._mark or not last <= now < last + RESCAN:
            if mark != self._mark:
                self._held.clear()                  # `relay queue retry|drop`: the operator's word goes
            self._scanned_at, self._mark = now, mark
            self._scan()
        with self._wake:
            due = sorted(m for m, t in self._due.items() if t <= now and m not in self._inflight)
            later = [t for t in self._due.values() if t > now]
        if later:
            soonest = min(soonest, min(later) - now)
        for mid in due:
            with self._wake:
                if self._stopping or len(self._inflight) >= 2 * self.workers:   # the rest: as workers free up
                    break
                self._inflight.add(mid)
            try:
                self._pool.submit(self._run_one, mid)
            except RuntimeError:            # the pool is shutting down
                self._inflight.discard(mid)
                break
        return soonest

    def _run_one(self, mid: str) -> None:
        self._local.upstream = self._upstream
        try:
            self.process(mid)
            self._held.pop(mid, None)
        except Exception as exc:          # a bug, a full disk: must not stop the relay; try again later
            tries = self._troubles[mid] = self._troubles.get(mid, 0) + 1
            delay = self._backoff(tries)
            self._held[mid] = self.clock() + delay   # kept here too: the journal may not be writable
            self.log_line(f"{mid}: internal error {type(exc).__name__}: {exc}; next attempt in {delay:.0f} s")
            try:
                self.spool.update(mid, next_attempt=self._held[mid])
            except OSError:
                pass
        finally:
            try:
                j = self.spool.journal(mid)
            except OSError:
                j = {}
            if j is None:
                self._held.pop(mid, None)
                self._troubles.pop(mid, None)
            elif mid not in self._held:
                self._troubles.pop(mid, None)
            with self._wake:
                self._note(mid, None if j is None else max(float(j.get("next_attempt") or 0),
                                                           self._held.get(mid, 0.0)))
                self._inflight.discard(mid)
                self._woken = True
                self._wake.notify_all()
            del self._local.upstream

    def _backoff(self, tries: int) -> float:
        """The wait after the ``tries``-th failure in a row: base_delay, doubling, at most max_delay."""
        return min(self.base_delay * 2 ** (tries - 1), self.max_delay)

    def refusal(self, data: bytes, bcc: list[str]) -> str | None:
        """The SMTP reply refusing a message the upstream can never take (asked at DATA time, before the 250),
        or None. Graph: the text that remains once the large parts are out must fit one ~4 MB request. EWS:
        the whole message, base64-encoded, must fit one request (about 48 MB of mail)."""
        if self.protocol == "ews":
            from wizard.runtime import ews
            if request_size(data) <= ews.MAX_REQUEST:       # the MIME goes base64-encoded into the request
                return None
            return (f"552 5.3.4 Message too big for EWS: {len(data)} bytes; base64-encoded it passes the "
                    f"{ews.MAX_REQUEST // (1024 * 1024)} MB one EWS request carries (Microsoft Graph takes up to "
                    "150 MB: [outgoing] protocol = \"graph\"); nothing was queued")
        if self.protocol != "graph":
            return None
        from wizard.runtime.graph import MAX_ATTACHMENT, MAX_REQUEST
        try:
            why = graph_refusal(with_bcc(data, bcc), MAX_REQUEST, MAX_ATTACHMENT)
        except Exception:               # MIME the parser chokes on: taken, and Graph's answer decides
            return None
        return f"552 5.3.4 Message too big for Microsoft Graph: {why}; nothing was queued" if why else None

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
            if self.protocol in ("graph", "ews") or (j.get("draft_id") and j.get("state") in ("drafted", "sending")):
                done = self._via_draft(j, data)         # a draft journaled under another protocol: checked first
            elif self.protocol == "smtp":
                done = self._smtp(j, data)
            else:
                raise MailError(_config_error(f"the relay delivers over graph, ews or smtp, not [outgoing] protocol "
                                              f"= \"{self.protocol}\""))
        except Stopping:
            self.log_line(f"{mid}: stopped while waiting for Exchange (it asked to wait); tried again at the next "
                          "start")
            return
        except Exception as exc:
            d = diagnosis_of(exc, self.cfg)
            self._failed(j, d, max_age)
            return
        if done:
            over = done if isinstance(done, str) else self.protocol
            self.spool.delivered(mid, via=over)
            took = self.clock() - started
            self.log_line(f"{mid}: delivered from {j.get('sender')} to {', '.join(j.get('rcpts') or [])} over "
                          f"{over} in {took:.1f} s{' (DSN)' if j.get('dsn') else ''}")

    def _failed(self, j: dict, d, max_age: float) -> None:
        mid, now = j["id"], self.clock()
        attempts = int(j.get("attempts") or 0) + 1
        said = f"{d.code}: {d.cause}"
        if is_transient(d):
            delay = self._backoff(attempts) * (0.5 + self.rand())
            deadline = float(j.get("received") or now) + max_age
            delay = min(delay, deadline - now)         # the last attempt is at max_age, not a backoff before it
            if delay > 0:
                self.spool.update(mid, attempts=attempts, next_attempt=now + delay, last_error=said)
                self.log_line(f"{mid}: attempt {attempts} failed ({d.code}); next attempt in {delay:.0f} s")
                return
            said = f"gave up after {attempts} attempts (max_age {self.cfg.relay.max_age if self.cfg.relay else '2d'}): " + said
        if self._maybe_sent(mid, d, attempts):
            return
        owed = not j.get("dsn") and not is_account_failure(d)
        dead = self.spool.bury(mid, attempts=attempts, last_error=said, **({"dsn_due": True} if owed else {}))
        if dead is None:
            return
        note = ""
        if j.get("dsn"):
            note = " (a DSN: never bounced)"
        elif not owed:
            note = " (the mailbox or sign-in failed: no DSN, see `mailwizard relay status`)"
        else:
            note = self._send_dsn(dead, said)
        self.log_line(f"{mid}: dead: {said}{note}")

    def _send_dsn(self, dead: dict, reason: str) -> str:
        """Queue the DSN a dead message is owed (its journal says ``dsn_due`` until the DSN is stored,
        so a crash in between is caught up at the next start); the words for the log line."""
        from wizard.relay.dsn import queue_dsn
        try:
            dsn_id = queue_dsn(self.spool, dead, reason)
        except Exception as exc:
            return f" (no DSN yet: {type(exc).__name__}; tried again at the next start)"
        self.spool.update_dead(dead["id"], dsn_due=False, dsn_id=dsn_id)
        if not dsn_id:
            return ""
        self.wake(dsn_id)
        return f" (DSN {dsn_id} to {dead.get('mail_from')})"

    def owed_dsns(self) -> None:
        """At start: the DSNs that dead messages are owed and a crash (or a full disk) kept from the queue."""
        bounced = {j.get("bounce_of") for where in ("queue", "done", "dead") for j in self.spool.journals(where)}
        for dead in self.spool.journals("dead"):
            if not dead.get("dsn_due"):
                continue
            if dead["id"] in bounced:                  # stored before the crash, not yet marked
                self.spool.update_dead(dead["id"], dsn_due=False)
                continue
            note = self._send_dsn(dead, dead.get("last_error") or "undeliverable")
            self.log_line(f"{dead['id']}: the DSN it was owed{note or ' (none due)'}")

    def _via_draft(self, j: dict, data: bytes):
        """Graph or EWS, exactly once: a draft, its id journaled, then its send. The protocol that sent it (truthy)
        when the message has been sent; False when it must wait (a draft settling, made again, or dropped).
        A draft journaled under another protocol (``draft_via``: ``[outgoing] protocol`` changed since) is
        checked and sent over the protocol that made it when it may already have been sent (``sending``);
        one never sent (``drafted``) is deleted there and the message goes over the current protocol."""
        mid = j["id"]
        who, sender = self.mailer.sender_of(j.get("sender") or j.get("mail_from"))
        state, draft = j.get("state"), j.get("draft_id")
        via = self._draft_via(j) if draft else self.protocol
        if draft and via != self.protocol and state == "drafted":
            try:                                      # never sent: away with it, the message goes the new way
                self._draft_upstream(via, who).delete_message(who, sender, draft)
            except MailError as exc:
                self.log_line(f"{mid}: its unsent {via} draft could not be deleted ({exc.diagnosis.code}); it stays "
                              f"in {sender}'s Drafts")
            j = self.spool.update(mid, state="queued", draft_id=None, draft_via=None, sending_at=None)
            if j is None:
                return False
            if self.protocol == "smtp":
                return self._smtp(j, data)
            state, draft, via = "queued", None, self.protocol
        upstream = self._draft_upstream(via, who)     # GraphTransport or EwsTransport: the same draft calls
        if draft and state in ("drafted", "sending"):
            now_state = upstream.draft_state(who, sender, draft)
            if now_state != "draft":
                if state == "sending":
                    return via                        # sent before the crash: Exchange took it
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
        lost = bool(j.get("lost_create"))
        if not draft:
            bcc = [b for b in j.get("bcc") or []]
            if self.protocol == "ews":                # EWS: the Bcc as BccRecipients beside the MIME as it came
                draft = upstream.create_mime_draft(who, sender, data, bcc=bcc)
            else:
                if j.get("creating"):                 # an earlier creation's answer was lost: its draft goes first
                    lost = True
                    self._lost_drafts(upstream, who, sender, j)
                if self.spool.update(mid, creating=self.clock(), **({"lost_create": True} if lost else {})) is None:
                    return False                      # dropped meanwhile (`relay queue drop`)
                draft = self._graph_draft(upstream, who, sender, mid, with_bcc(data, bcc))
            state = "drafted"
            if self.spool.update(mid, state="drafted", draft_id=draft, draft_via=via, building=None,
                                 creating=None) is None:
                return self._dropped(upstream, who, sender, mid, draft)
        went_out = self._paced(j, sender)
        if went_out is None:
            return False
        try:
            if self.spool.update(mid, state="sending", sending_at=self.clock()) is None:
                return self._dropped(upstream, who, sender, mid, draft)
            upstream.send_draft(who, sender, draft)
        except MailError as exc:
            if not _not_found(exc.diagnosis):
                raise
            if state == "sending":                    # an earlier send may have gone out: the draft says
                if upstream.draft_state(who, sender, draft) != "draft":
                    return via
                raise
            # never sent (drafted): it left Drafts (a user, a retention policy) before its send: make it again
            remade = int(j.get("remade") or 0) + 1
            wait = 0.0 if remade == 1 else self._backoff(remade - 1)
            self.spool.update(mid, state="queued", draft_id=None, draft_via=None, sending_at=None, remade=remade,
                              next_attempt=self.clock() + wait)
            self.log_line(f"{mid}: its draft left {sender}'s Drafts before it was sent; made again "
                          f"{'now' if not wait else f'in {wait:.0f} s'}")
            return False
        finally:
            went_out()
        if lost:                                      # a lost creation that landed after the look before ours
            self._lost_drafts(upstream, who, sender, j, keep=draft)
        return via

    def _lost_drafts(self, upstream, who, sender: str, j: dict, keep: str | None = None) -> None:
        """Delete the unsent drafts an earlier creation of this message left in ``sender``'s Drafts (its answer
        was lost: a timeout, a cut connection, a crash before the journal), found by the message's Message-ID
        (Graph's internetMessageId); ``keep``: the draft just sent. Never sent, so never a second delivery; a
        failure to look leaves them (logged), the delivery goes on."""
        message_id = j.get("message_id")
        if not message_id or not hasattr(upstream, "drafts_with"):
            return
        try:
            found = [d for d in upstream.drafts_with(who, sender, message_id) if d != keep]
            for d in found:
                upstream.delete_message(who, sender, d)
        except MailError as exc:
            self.log_line(f"{j['id']}: could not look for the draft a lost creation may have left in {sender}'s "
                          f"Drafts ({exc.diagnosis.code})")
            return
        if found:
            self.log_line(f"{j['id']}: deleted {len(found)} unsent draft(s) of it that an earlier attempt left in "
                          f"{sender}'s Drafts (the creation's answer was lost)")

    def _draft_via(self, j: dict) -> str:
        """The protocol that made the journaled draft (journals from before ``draft_via``: the current one)."""
        return j.get("draft_via") or (self.protocol if self.protocol in ("graph", "ews") else "graph")

    def _draft_upstream(self, via: str, who):
        """The transport for drafts made over ``via``, signed in (the same sign-in reaches Graph and EWS)."""
        from wizard.runtime.tokens import api_of
        self.mailer.sign_in(who, api=api_of(via))
        return self.mailer.transport() if via == self.protocol else self.mailer.transport(via)

    def _dropped(self, upstream, who, sender: str, mid: str, draft: str) -> bool:
        """`relay queue drop` took the message while its draft was being made: no send; the draft goes."""
        try:
            upstream.delete_message(who, sender, draft)
        except MailError:
            pass
        self.log_line(f"{mid}: dropped before sending (`relay queue drop`); its draft deleted")
        return False

    def _maybe_sent(self, mid: str, d, attempts: int) -> bool:
        """Before a message is buried as undelivered: one whose send may have gone out (``sending``) is buried
        only when its draft is still a draft. Gone or sent: delivered. No answer: it stays queued. True when
        the message is not to be buried."""
        j = self.spool.journal(mid)
        if j is None or j.get("state") != "sending" or not j.get("draft_id"):
            return False
        via = self._draft_via(j)
        try:
            who, sender = self.mailer.sender_of(j.get("sender") or j.get("mail_from"))
            state = self._draft_upstream(via, who).draft_state(who, sender, j["draft_id"])
        except Exception as exc:
            code = exc.diagnosis.code if isinstance(exc, MailError) else type(exc).__name__
            delay = self._backoff(attempts) * (0.5 + self.rand())
            self.spool.update(mid, attempts=attempts, next_attempt=self.clock() + delay,
                              last_error=f"{d.code}: {d.cause}")
            self.log_line(f"{mid}: attempt {attempts} failed ({d.code}) after its send may have gone out, and "
                          f"{via} could not say whether its draft was sent ({code}): kept in the queue, next "
                          f"check in {delay:.0f} s")
            return True
        if state == "draft":
            return False
        self.spool.delivered(mid, via=via)
        self.log_line(f"{mid}: delivered from {j.get('sender')} to {', '.join(j.get('rcpts') or [])} over {via} "
                      f"(its draft was sent although the answer said {d.code})")
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

    def _smtp(self, j: dict, data: bytes) -> bool:
        who, sender = self.mailer.sender_of(j.get("sender") or j.get("mail_from"))
        self.mailer.sign_in(who)
        went_out = self._paced(j, sender)
        if went_out is None:
            return False
        try:
            self.mailer.transport().send_raw(who, sender, j.get("rcpts") or [], data,
                                             envelope_from=j.get("mail_from") or sender)
        except MailError as exc:
            took = {a.lower() for a in getattr(exc, "sent_to", None) or ()}
            if took:        # some recipients have it: what follows (a retry, a DSN) is for the others only
                left = [r for r in j.get("rcpts") or [] if r.lower() not in took]
                self.spool.update(j["id"], rcpts=left, bcc=[b for b in j.get("bcc") or [] if b.lower() not in took],
                                  delivered_to=(j.get("delivered_to") or []) + sorted(took))
                self.log_line(f"{j['id']}: delivered to {', '.join(sorted(took))}; not yet to {', '.join(left)}")
            raise
        finally:
            went_out()
        return True

    def _paced(self, j: dict, sender: str):
        """None when ``sender`` is at Exchange Online's limits (30 messages a minute, 10,000 recipients a day):
        the message waits in the queue until the pacer says, and the worker is free for other mailboxes.
        Else the send is counted: go ahead, and call the function returned once the request has gone."""
        wait, went_out = self.mailer.pacer.try_send(sender, max(1, len(j.get("rcpts") or [])))
        if went_out is not None:
            return went_out
        self.spool.update(j["id"], next_attempt=self.clock() + wait)
        self.log_line(f"{j['id']}: {sender} is at Exchange Online's sending limit (30 messages a minute, 10,000 "
                      f"recipients a day): waits {wait:.0f} s in the queue")
        return None


def _not_found(d) -> bool:
    """Exchange says the item is not there (Graph 404, EWS ErrorItemNotFound)."""
    return d.code == "ErrorItemNotFound" or "ErrorItemNotFound" in (d.service_message or "")


def _config_error(text: str):
    from wizard.diagnosis.catalogue import lookup
    return lookup("config.invalid", service_message=text)
