"""The relay's scheduler keeps the queue's next attempts in memory: a queue of waiting messages costs no
disk reads while nothing is due, yet new messages, the workers' results and `relay queue retry|drop` from
another process are seen at the next loop (a fake clock, the journal reads counted). A mailbox at its
sending limit waits in the queue, not in a worker."""

from __future__ import annotations

from wizard.relay.delivery import RESCAN, Delivery
from wizard.relay.spool import Spool

NOW = 1_900_000_000.0
ENVELOPE = {"client": "erp", "mail_from": "erp@contoso.com", "rcpts": ["to@contoso.com"], "bcc": [],
            "sender": "erp@contoso.com"}


class Pool:
    def __init__(self):
        self.submitted: list[str] = []

    def submit(self, fn, mid):
        self.submitted.append(mid)


def _setup(tmp_path, waiting: int = 20, workers: int = 50):
    spool = Spool(tmp_path / "spool").open()
    ids = [spool.store(b"From: erp@contoso.com\r\n\r\nHello.\r\n", ENVELOPE) for _ in range(waiting)]
    for mid in ids:                                      # failed once, next attempt in an hour
        spool.update(mid, attempts=1, next_attempt=NOW + 3600)
    reads = []
    real = spool.journal
    spool.journal = lambda mid, where="queue": reads.append(mid) or real(mid, where)
    clock = [NOW]
    delivery = Delivery(None, spool, None, log_line=lambda text: None, clock=lambda: clock[0], workers=workers)
    delivery._pool = Pool()
    return spool, ids, reads, clock, delivery


def test_waiting_messages_are_not_read_again_while_nothing_is_due(tmp_path):
    spool, ids, reads, clock, d = _setup(tmp_path)
    d._dispatch()
    assert len(reads) == len(ids)                        # the start reads the queue once
    reads.clear()
    for _ in range(30):                                  # 30 idle loops, a second apart
        clock[0] += 1
        assert d._dispatch() == 1.0
    assert reads == [] and d._pool.submitted == []
    clock[0] = NOW + RESCAN + 1                          # the rare full read (a safety net)
    d._dispatch()
    assert len(reads) == len(ids) and d._pool.submitted == []
    clock[0] = NOW + 3600                                # all due: all handed to the workers, in id order
    d._dispatch()
    assert d._pool.submitted == sorted(ids)


def test_new_messages_results_and_the_cli_are_seen_at_the_next_loop(tmp_path):
    spool, ids, reads, clock, d = _setup(tmp_path)
    d._dispatch()
    reads.clear()
    new = spool.store(b"From: erp@contoso.com\r\n\r\nNew.\r\n", ENVELOPE)
    d.wake(new)                                          # what the SMTP side calls after the 250
    d._dispatch()
    assert d._pool.submitted == [new] and reads == []
    d.process = lambda mid: spool.update(mid, attempts=1, next_attempt=clock[0] + 60)   # a transient failure
    d._run_one(new)
    assert set(reads) == {new}                           # the worker's result: its own journal only
    reads.clear()
    clock[0] += 1
    d._dispatch()
    assert d._pool.submitted == [new] and reads == []    # not due again before its next attempt
    Spool(spool.root).retry(ids[3])                      # `relay queue retry ID` from another process
    d._dispatch()
    assert d._pool.submitted == [new, ids[3]]
    d.process = lambda mid: spool.delivered(mid)
    d._run_one(ids[3])
    Spool(spool.root).drop(ids[4])                       # `relay queue drop ID`
    clock[0] = NOW + 3600
    d._dispatch()                                        # delivered and dropped ones are not handed out
    assert d._pool.submitted[2:] == sorted([m for m in ids if m not in (ids[3], ids[4])] + [new])


def test_a_queue_coming_due_is_handed_out_as_workers_free_up(tmp_path):
    """Twice as many as the workers at a time (not the whole queue at once: memory stays flat)."""
    spool, ids, reads, clock, d = _setup(tmp_path, workers=2)
    clock[0] = NOW + 3600
    d._dispatch()
    assert d._pool.submitted == sorted(ids)[:4]
    d.process = lambda mid: spool.delivered(mid)
    d._run_one(sorted(ids)[0])
    d._dispatch()
    assert d._pool.submitted == sorted(ids)[:5]


def test_a_mailbox_at_its_sending_limit_waits_in_the_queue_not_in_a_worker(tmp_path):
    """31 messages from one mailbox in a minute: the 31st waits in the queue until the pacer says (no
    worker sleeps, so another mailbox's message goes at once), and is not counted as a failed attempt."""
    from types import SimpleNamespace
    from wizard.runtime.pacing import MARGIN, Pacer
    clock, slept, sent, lines = [NOW], [], [], []

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    transport = SimpleNamespace(send_raw=lambda who, sender, rcpts, data, envelope_from=None: sent.append(sender))
    mailer = SimpleNamespace(pacer=Pacer(clock=lambda: clock[0], sleep=sleep), sender_of=lambda a: (None, a),
                             sign_in=lambda who: None, transport=lambda: transport)
    cfg = SimpleNamespace(outgoing=SimpleNamespace(protocol="smtp"), relay=None)
    spool = Spool(tmp_path / "spool").open()
    busy = [spool.store(b"From: erp@contoso.com\r\n\r\nHello.\r\n", ENVELOPE) for _ in range(31)]
    other = spool.store(b"From: shop@contoso.com\r\n\r\nHello.\r\n",
                        {**ENVELOPE, "mail_from": "shop@contoso.com", "sender": "shop@contoso.com"})
    d = Delivery(cfg, spool, mailer, log_line=lines.append, clock=lambda: clock[0])
    for mid in busy + [other]:
        d.process(mid)
    assert slept == [] and sent == ["erp@contoso.com"] * 30 + ["shop@contoso.com"]
    j = spool.journal(busy[-1])
    assert j["attempts"] == 0 and j["next_attempt"] == NOW + 60 + MARGIN and not j.get("last_error")
    assert any("sending limit" in line and f"waits {60 + MARGIN:.0f} s" in line for line in lines)
    clock[0] = NOW + 60 + MARGIN
    d.process(busy[-1])
    assert sent[-1] == "erp@contoso.com" and spool.ids() == []


def test_the_relay_counts_a_send_from_when_its_request_went(tmp_path):
    """The first message's request takes 5 s (a large one): the pacer counts it from when it went, so the
    31st of that minute waits until 60 s (and the margin) after that, not after the request began."""
    from types import SimpleNamespace
    from wizard.runtime.pacing import MARGIN, Pacer
    clock, sent = [NOW], []

    def send_raw(who, sender, rcpts, data, envelope_from=None):
        if not sent:
            clock[0] += 5.0
        sent.append(clock[0])
    transport = SimpleNamespace(send_raw=send_raw)
    mailer = SimpleNamespace(pacer=Pacer(clock=lambda: clock[0], sleep=None), sender_of=lambda a: (None, a),
                             sign_in=lambda who: None, transport=lambda: transport)
    cfg = SimpleNamespace(outgoing=SimpleNamespace(protocol="smtp"), relay=None)
    spool = Spool(tmp_path / "spool").open()
    mids = [spool.store(b"From: erp@contoso.com\r\n\r\nHello.\r\n", ENVELOPE) for _ in range(31)]
    d = Delivery(cfg, spool, mailer, log_line=lambda line: None, clock=lambda: clock[0])
    for mid in mids:
        d.process(mid)
    assert len(sent) == 30
    assert spool.journal(mids[-1])["next_attempt"] == NOW + 5.0 + 60 + MARGIN


def _disk_full(monkeypatch):
    import errno
    from wizard.relay import spool as spool_module
    real = spool_module._write_synced

    def full(path, data):
        real(path, data[: len(data) // 2])                               # half written, then no room
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(spool_module, "_write_synced", full)


def test_a_full_disk_backs_off_instead_of_spinning(tmp_path, monkeypatch):
    """The journal cannot be written (ENOSPC): the message waits base_delay, then twice that, ... (it was
    due again at once: 94,000 log lines in 7 s at full CPU, and an empty temp file each time)."""
    spool, ids, reads, clock, d = _setup(tmp_path, waiting=1)
    lines = []
    d.log_line = lines.append
    mid = ids[0]
    spool.update(mid, next_attempt=NOW)                                  # due now
    d.process = lambda m: spool.update(m, attempts=2)                   # any journal write fails now
    _disk_full(monkeypatch)
    d._run_one(mid)
    assert d._due[mid] == NOW + d.base_delay and len(lines) == 1 and "next attempt in 30 s" in lines[0]
    clock[0] = NOW + d.base_delay
    d._dispatch()
    assert d._pool.submitted == [mid]
    d._run_one(mid)
    assert d._due[mid] == NOW + 3 * d.base_delay                        # 30 s, then 60 s
    clock[0] = NOW + 3 * d.base_delay
    d._dispatch()
    d._run_one(mid)
    assert d._due[mid] == NOW + 7 * d.base_delay                        # then 120 s
    clock[0] = NOW + 3 * d.base_delay + RESCAN + 1                       # a full read keeps the hold
    assert clock[0] < NOW + 7 * d.base_delay
    d._dispatch()
    assert d._pool.submitted == [mid, mid] and d._due[mid] == NOW + 7 * d.base_delay
    assert len(lines) == 3
    assert list(spool.tmp.iterdir()) == []                               # no empty temp files left
    monkeypatch.undo()
    clock[0] = NOW + 7 * d.base_delay
    d.process = lambda m: spool.update(m, attempts=2, next_attempt=NOW + 3600)   # room again: it works
    d._run_one(mid)
    assert d._due[mid] == NOW + 3600 and not d._held


def test_a_message_buried_on_a_full_disk_stays_queued_whole(tmp_path, monkeypatch):
    from wizard.relay.status import status
    spool, ids, reads, clock, d = _setup(tmp_path, waiting=1)
    _disk_full(monkeypatch)
    import pytest
    with pytest.raises(OSError):
        spool.bury(ids[0], last_error="gave up")
    monkeypatch.undo()
    assert (spool.queue / f"{ids[0]}.eml").exists() and not list(spool.dead.iterdir())
    st = status(spool, "graph")
    assert [m["id"] for m in st["retrying"]] == ids and st["dead"] == 0


def test_transient_failures_are_tried_until_max_age_not_a_backoff_short_of_it(tmp_path):
    """max_age 2m, backoff 30 s, 60 s, 120 s: the third wait is cut to end at max_age, where the last
    attempt is made; only its failure buries the message (it was buried at 90 s, 30 s short)."""
    from types import SimpleNamespace

    from wizard.diagnosis.catalogue import lookup
    spool, ids, reads, clock, d = _setup(tmp_path, waiting=1)
    d.cfg, d.rand = SimpleNamespace(relay=SimpleNamespace(max_age="2m", max_age_seconds=120.0)), lambda: 0.5
    mid = ids[0]
    spool.update(mid, received=NOW, attempts=0, next_attempt=NOW, dsn=True)      # dsn: no bounce to queue
    throttled = lookup("http.429")
    tried = []
    while spool.journal(mid) is not None:
        clock[0] = spool.journal(mid)["next_attempt"]
        tried.append(clock[0] - NOW)
        d._failed(spool.journal(mid), throttled, 120.0)
    assert tried == [0, 30, 90, 120]
    [dead] = spool.journals("dead")
    assert dead["attempts"] == 4 and dead["last_error"].startswith("gave up after 4 attempts (max_age 2m)")
