"""Pacing outgoing mail under Exchange Online's sending limits by waiting,
not failing: 30 messages per minute and 10,000 recipients per day per
mailbox (documented for SMTP AUTH client submission; the same recipient
rate limit applies to every way of sending). Clock and sleep are injectable
so tests never really wait.

With ``state_path`` the send log is shared through a small JSON file (mode
0600, locked while read and written), so separate processes (a cron job
calling ``mailwizard send`` once per message) keep to the limits together;
the clock must then be wall-clock time (``time.time``).

A send is counted when it is admitted (before the request goes out) and counted
again at the moment the request has gone (``sending()``): the log keeps the later
time, so a slow request (a large message, a slow TLS handshake) cannot make the
next ones reach Exchange inside its window. A margin of ``MARGIN`` seconds is kept
on both windows against clocks that differ from Exchange's."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import deque
from pathlib import Path

from wizard.runtime.model import error

PER_MINUTE = 30
PER_DAY = 10_000
MARGIN = 2.0          # seconds kept on each window


class Pacer:
    def __init__(self, per_minute: int = PER_MINUTE, per_day: int = PER_DAY, *, clock=time.monotonic,
                 sleep=time.sleep, state_path: str | os.PathLike | None = None, margin: float = MARGIN):
        self.margin = margin
        self.state_path = Path(state_path) if state_path else None
        self.per_minute = per_minute
        self.per_day = per_day
        self.clock = clock
        self.sleep = sleep
        self.waited = 0.0                 # total seconds waited (for logs and tests)
        self._log: dict[str, deque] = {}  # mailbox -> deque[(time, recipients)]
        self._lock = threading.Lock()

    def _delay(self, log: deque, now: float, recipients: int) -> float:
        minute, day = 60 + self.margin, 86400 + self.margin
        while log and log[0][0] <= now - day:
            log.popleft()
        waits = [0.0]
        recent = [t for t, _ in log if t > now - minute]
        if len(recent) >= self.per_minute:
            waits.append(recent[len(recent) - self.per_minute] + minute - now)
        total = sum(n for _, n in log)
        if total + recipients > self.per_day:
            freed, need = 0, total + recipients - self.per_day
            for t, n in log:
                freed += n
                if freed >= need:
                    waits.append(t + day - now)
                    break
        return max(waits)

    @contextlib.contextmanager
    def sending(self, mailbox: str, recipients: int = 1):
        """``with pacer.sending(box, n): <send the request>``: admits (waiting as ``admit``
        does), then, once the block is left (sent or failed: a failed request may still
        have reached the server), moves the record to that moment."""
        waited, went_out = self._admit(mailbox, recipients)
        try:
            yield waited
        finally:
            went_out()

    def admit(self, mailbox: str, recipients: int = 1) -> float:
        """Wait (with the injected sleep) until ``mailbox`` may send a message to
        ``recipients`` recipients, record it, and return the seconds waited."""
        return self._admit(mailbox, recipients)[0]

    def _admit(self, mailbox: str, recipients: int):
        waited = 0.0
        while True:
            delay, went_out = self.try_send(mailbox, recipients)
            if went_out is not None:
                self.waited += waited
                return waited, went_out
            self.sleep(delay)
            waited += delay

    def reserve(self, mailbox: str, recipients: int = 1) -> float:
        """``admit`` without waiting: 0.0 when ``mailbox`` may send now (the send is recorded), else the
        seconds until it may (nothing recorded). The relay uses it so that one mailbox at its limit does
        not hold the workers the other mailboxes' mail needs."""
        return self.try_send(mailbox, recipients)[0]

    def try_send(self, mailbox: str, recipients: int = 1):
        """``reserve`` that also says when the request went: ``(0.0, went_out)`` when ``mailbox`` may
        send now (recorded; call ``went_out()`` once the request has gone, sent or failed, to move the
        record to that moment), else ``(seconds to wait, None)``."""
        if recipients > self.per_day:
            raise error("config.invalid", service_message=f"one message to {recipients} recipients is over the "
                        f"daily limit of {self.per_day}: split the recipient list")
        key = mailbox.lower()
        with self._lock, self._shared():
            log = self._log.setdefault(key, deque())
            now = self.clock()
            if log and log[-1][0] > now:    # the clock went back: a send stamped later would hold a whole
                self._log[key] = log = deque((min(t, now), n) for t, n in log)     # window: it counts as now
                self._store()
            delay = self._delay(log, now, recipients)
            if delay > 0:
                return delay, None
            log.append((now, recipients))
            self._store()
        return 0.0, lambda: self._restamp(key, now, recipients)

    def _restamp(self, key: str, stamp: float, recipients: int) -> None:
        with self._lock, self._shared():
            log = self._log.setdefault(key, deque())
            with contextlib.suppress(ValueError):
                log.remove((stamp, recipients))
            log.append((max(self.clock(), stamp), recipients))
            self._log[key] = deque(sorted(log))
            self._store()

    # -- the shared state file ---------------------------------------------------------------
    @contextlib.contextmanager
    def _shared(self):
        """Hold the file lock and load the other processes' sends (no-op without state_path)."""
        if self.state_path is None:
            yield
            return
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(str(self.state_path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            yield                      # no writable cache dir: pace this process only
            return
        try:
            try:
                import fcntl
                fcntl.flock(fd, fcntl.LOCK_EX)
            except ImportError:        # Windows: no lock, still shared best effort
                pass
            self._load()
            yield
        finally:
            os.close(fd)

    def _load(self) -> None:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        horizon = self.clock() - 86400 - self.margin
        for mailbox, entries in (data.items() if isinstance(data, dict) else ()):
            try:     # the file holds this process's sends too: it replaces the memory
                self._log[mailbox] = deque(sorted((float(t), int(n)) for t, n in entries if float(t) > horizon))
            except (TypeError, ValueError):
                continue

    def _store(self) -> None:
        if self.state_path is None:
            return
        from wizard.config.files import write_private
        horizon = self.clock() - 86400 - self.margin
        data = {k: [[t, n] for t, n in v if t > horizon] for k, v in self._log.items()}
        try:
            write_private(self.state_path, json.dumps(data))
        except OSError:
            pass

    def sent_last_minute(self, mailbox: str) -> int:
        now = self.clock()
        with self._lock:
            return sum(1 for t, _ in self._log.get(mailbox.lower(), ()) if t > now - 60 - self.margin)
