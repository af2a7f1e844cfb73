"""A crash between two folders of the relay's spool (delivered(), bury(), `queue retry` of a dead message
stopped half-way, as SIGKILL or a power loss can leave them): `relay status` counts the message once, where
its journal says it is, and the next start finishes the move: nothing lost, nothing sent again. And a
move while `relay status` reads waits for the read."""

from __future__ import annotations

import os
import time

from wizard.relay.spool import Spool
from wizard.relay.status import status

ENVELOPE = {"client": "erp", "mail_from": "erp@contoso.com", "rcpts": ["to@contoso.com"], "bcc": [],
            "sender": "erp@contoso.com"}
DATA = b"From: erp@contoso.com\r\nTo: to@contoso.com\r\n\r\nHello.\r\n"


def _spool(tmp_path):
    spool = Spool(tmp_path / "spool").open()
    return spool, spool.store(DATA, ENVELOPE)


def _counts(root) -> tuple[int, int, int]:
    st = status(Spool(root), "smtp")                 # what `relay status` says while the relay is down
    return st["queued"] + len(st["retrying"]), st["dead"], st["delivered_today"]


def test_delivered_cut_after_its_journal_counts_once_and_is_not_sent_again(tmp_path):
    spool, mid = _spool(tmp_path)
    j = spool.journal(mid)
    spool._write_journal(spool.done, {**j, "state": "delivered", "delivered_at": time.time()})
    assert _counts(spool.root) == (0, 0, 1)
    spool = Spool(spool.root).open()                 # the next start: nothing left to deliver
    assert spool.ids() == [] and spool.ids("done") == [mid] and not (spool.queue / f"{mid}.eml").exists()


def test_bury_cut_short_keeps_the_message_and_its_reason(tmp_path):
    spool, mid = _spool(tmp_path)
    os.replace(spool.queue / f"{mid}.eml", spool.dead / f"{mid}.eml")      # moved, journal not yet written
    assert _counts(spool.root) == (1, 0, 0)
    spool = Spool(spool.root).open()
    assert spool.ids() == [mid] and spool.message(mid) == DATA             # tried again, not "missing"
    j = spool.journal(mid)
    spool.bury(mid, last_error="smtp.550: no such recipient")
    spool._write_journal(spool.queue, j)                                   # dead journal written, queue's not gone
    assert _counts(spool.root) == (0, 1, 0)
    spool = Spool(spool.root).open()
    assert spool.ids() == [] and spool.ids("dead") == [mid]
    assert spool.journal(mid, "dead")["last_error"] == "smtp.550: no such recipient"
    assert spool.message(mid, "dead") == DATA


def test_retry_of_a_dead_message_cut_short_loses_nothing(tmp_path):
    spool, mid = _spool(tmp_path)
    spool.bury(mid, last_error="gave up")
    os.replace(spool.dead / f"{mid}.eml", spool.queue / f"{mid}.eml")      # moved back, queue journal not written
    assert _counts(spool.root) == (0, 1, 0)
    spool = Spool(spool.root).open()
    assert spool.ids("dead") == [mid] and spool.message(mid, "dead") == DATA   # still dead, not deleted
    dead = spool.journal(mid, "dead")
    assert spool.retry(mid)
    spool._write_journal(spool.dead, dead)                                 # queue journal written, dead's not gone
    assert _counts(spool.root) == (1, 0, 0)
    spool = Spool(spool.root).open()
    assert spool.ids() == [mid] and spool.ids("dead") == [] and spool.message(mid) == DATA


def test_status_counts_a_message_once_while_a_delivery_finishes(tmp_path):
    """`relay status` reads under the spool's lock: a delivery that would finish in the middle of the read
    (queue journal read, then moved to done/) waits for it instead of being counted twice."""
    import fcntl
    spool, mid = _spool(tmp_path)
    reader, moved = Spool(spool.root), []
    real = reader.journal

    def journal(m, where="queue"):
        j = real(m, where)
        if where == "queue" and not moved:       # the relay's worker finishes now, if the lock lets it
            fd = os.open(spool.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                free = True
            except BlockingIOError:
                free = False
            finally:
                os.close(fd)
            moved.append(free)
            if free:
                Spool(spool.root).delivered(mid)
        return j
    reader.journal = journal
    st = status(reader, "graph")
    assert st["queued"] + len(st["retrying"]) + st["delivered_today"] == 1
    assert moved == [False]
    spool.delivered(mid)                         # it finishes once the read is over
    assert _counts(spool.root) == (0, 0, 1)
