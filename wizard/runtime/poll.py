"""Validating and polling the incoming accounts: concurrently (a bounded
thread pool), one token shared, each account's failure isolated and reported
instead of stopping the others."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from wizard.diagnosis.catalogue import Diagnosis
from wizard.runtime.model import MailError, Message


@dataclass
class AccountResult:
    address: str
    messages: list[Message] = field(default_factory=list)
    diagnosis: Diagnosis | None = None      # None: the account was read fine
    processed: int = 0

    @property
    def ok(self) -> bool:
        return self.diagnosis is None


def _warm(mailer) -> Diagnosis | None:
    """Get the shared token once, up front: a sign-in failure is then one
    failure reported for every account, not N parallel sign-ins."""
    from wizard.runtime.model import INCOMING
    protocol = mailer.cfg.incoming.protocol
    if protocol not in INCOMING or not mailer.cfg.incoming.accounts:
        return None
    try:
        mailer.tokens.token("graph" if protocol == "graph" else "exchange")
    except MailError as exc:
        return exc.diagnosis
    return None


def _each(mailer, work, max_workers: int) -> list:
    from wizard.runtime.model import diagnosis_of
    accounts = [a.address for a in mailer.cfg.incoming.accounts]
    if not accounts:
        return []

    def guarded(address):
        try:
            return address, work(address), None
        except Exception as exc:        # isolate: one account's failure never stops the others
            return address, None, diagnosis_of(exc, mailer.cfg)
    workers = max(1, min(max_workers, len(accounts)))
    if workers == 1:
        return [guarded(a) for a in accounts]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mailwizard-poll") as pool:
        return list(pool.map(guarded, accounts))


def _shared_failure(mailer) -> Diagnosis | None:
    """The sign-in failure every account shares, if the shared token cannot be had."""
    shared = _warm(mailer)
    if shared is not None and all(mailer.tokens.signin_for_account(a) == mailer.tokens.default_signin()
                                  for a in mailer.cfg.incoming.accounts):
        return shared
    return None


def validate(mailer, *, max_workers: int | None = None) -> dict[str, Diagnosis | None]:
    shared = _shared_failure(mailer)
    if shared is not None:
        return {a.address: shared for a in mailer.cfg.incoming.accounts}
    workers = max_workers or mailer.max_workers
    return {address: diag for address, _, diag in _each(mailer, mailer.check_account, workers)}


def poll_once(mailer, *, limit: int = 50, mark: bool = True, handler=None,
              max_workers: int | None = None) -> list[AccountResult]:
    """Fetch the unprocessed mail of every incoming account. Each message goes
    to ``handler(message)`` when given (in the account's worker thread); when
    the handler returns without raising and ``mark`` is on, the message is
    marked processed so the next poll does not see it again."""
    shared = _shared_failure(mailer)
    if shared is not None:
        return [AccountResult(a.address, diagnosis=shared) for a in mailer.cfg.incoming.accounts]

    def work(address):
        result = AccountResult(address)
        result.messages = mailer.fetch(address, limit=limit, unprocessed_only=True)
        for msg in result.messages:
            if handler is not None:
                handler(msg)
            if mark:
                mailer.mark_processed(address, msg)
                result.processed += 1
        return result
    out = []
    for address, result, diag in _each(mailer, work, max_workers or mailer.max_workers):
        out.append(result if result is not None else AccountResult(address, diagnosis=diag))
    return out


def poll_forever(mailer, *, minutes: float | None = None, stop: threading.Event | None = None,
                 on_results=None, sleep=None, clock=time.monotonic, rounds: int | None = None, **kwargs) -> None:
    """poll_once every ``minutes`` (default ``[incoming] poll_minutes``) until
    ``stop`` is set (or ``rounds`` polls ran). Waits with ``stop.wait`` so a
    stop request ends the wait at once; ``sleep`` can be injected for tests."""
    stop = stop or threading.Event()
    period = 60.0 * (minutes if minutes is not None else mailer.cfg.incoming.poll_minutes)
    wait = sleep or stop.wait
    n = 0
    while not stop.is_set():
        started = clock()
        results = poll_once(mailer, **kwargs)
        if on_results is not None:
            on_results(results)
        n += 1
        if rounds is not None and n >= rounds:
            return
        wait(max(0.0, period - (clock() - started)))
