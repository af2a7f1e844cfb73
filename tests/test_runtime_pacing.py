"""Pacing under Exchange Online's limits by waiting, not failing: 30 messages
a minute and 10,000 recipients a day per mailbox. Injected clock, no real sleep."""

from __future__ import annotations

import threading

import pytest

from runtime_helpers import FakeClock, config
from wizard.runtime import Mailer, MailError
from wizard.runtime.pacing import MARGIN, Pacer
from wizard.sandbox import sample


def _max_in_any_minute(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 60) for start in times)


def test_never_more_than_30_a_minute_per_mailbox():
    clock = FakeClock(0.0)
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(95):
        pacer.admit("erp@contoso.com")
        sent.append(clock.now)
    assert _max_in_any_minute(sent) == 30
    assert clock.now == pytest.approx(3 * (60 + MARGIN))   # 95 messages: three full minutes (and margins) of waiting
    assert pacer.waited == pytest.approx(3 * (60 + MARGIN))
    pacer.admit("other@contoso.com")                   # another mailbox has its own budget
    assert clock.now == pytest.approx(3 * (60 + MARGIN))


def test_recipients_per_day_wait_for_the_oldest_to_expire():
    clock = FakeClock(0.0)
    pacer = Pacer(per_minute=1000, per_day=100, clock=clock, sleep=clock.sleep)
    pacer.admit("erp@contoso.com", 60)
    clock.now += 10
    pacer.admit("erp@contoso.com", 40)
    pacer.admit("erp@contoso.com", 1)                  # waits until the 60 of t=0 leave the day window
    assert clock.now == pytest.approx(86400.0 + MARGIN)
    with pytest.raises(MailError):
        pacer.admit("erp@contoso.com", 101)


def test_a_clock_set_back_holds_mail_a_window_at_most(tmp_path):
    """The shared send log keeps wall-clock times. When the clock goes back an hour (NTP stepping a
    clock that ran fast, a VM resumed), its sends stamped "in the future" count as sent now: the next
    message waits out a minute, not the hour, and the day's count stays the same."""
    clock = FakeClock(10_000.0)
    pacer = Pacer(per_day=100, clock=clock, sleep=clock.sleep, state_path=tmp_path / "pacing.json")
    for _ in range(30):
        pacer.admit("erp@contoso.com", 3)
    clock.now -= 3600
    assert pacer.admit("erp@contoso.com") == pytest.approx(60 + MARGIN)
    assert pacer.reserve("erp@contoso.com", 10) > 3600              # 91 recipients today: 100 is the day's limit
    assert pacer.reserve("erp@contoso.com", 9) == 0.0


def test_pacer_is_safe_across_threads():
    clock = FakeClock(0.0)
    lock = threading.Lock()

    def sleep(s):
        with lock:
            clock.now += s
    pacer = Pacer(clock=clock, sleep=sleep)
    threads = [threading.Thread(target=pacer.admit, args=("erp@contoso.com",)) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for t, _ in pacer._log["erp@contoso.com"] if t < 60) <= 30


def test_smtp_sends_40_without_hitting_the_servers_limit(sandbox):
    """The sandbox SMTP server refuses the 31st message in a minute (554 5.2.0);
    paced on the same (fake) clock, all 40 get through."""
    clock = FakeClock(0.0)
    sandbox.clock = clock
    try:
        cfg = config(sandbox, "smtp+imap")
        with Mailer(cfg, clock=clock, sleep=clock.sleep) as mailer:
            for n in range(40):
                mailer.send(sample.RECIPIENT, f"paced {n}", "x")
        assert len(sandbox.tenant.mailbox(sample.RECIPIENT).inbox) == 40
        assert clock.now >= 60 and mailer.pacer.waited >= 60
    finally:
        import time
        sandbox.clock = time.monotonic


def test_a_slow_send_counts_from_when_it_went_out(sandbox, monkeypatch):
    """The first message's request takes 5 s to reach the server (a large one, a slow
    handshake): the pacer counts it from then, so the 31st is not refused (554 5.2.0)
    by a server whose minute started when the first one arrived."""
    clock = FakeClock(0.0)
    sandbox.clock = clock
    try:
        cfg = config(sandbox, "smtp+imap")
        with Mailer(cfg, clock=clock, sleep=clock.sleep) as mailer:
            transport = mailer.transport()
            real, calls = transport.send, []

            def slow_first(*args, **kwargs):
                calls.append(clock.now)
                if len(calls) == 1:
                    clock.now += 5.0
                return real(*args, **kwargs)
            monkeypatch.setattr(transport, "send", slow_first)
            for n in range(31):
                mailer.send(sample.RECIPIENT, f"paced {n}", "x")
        assert len(sandbox.tenant.mailbox(sample.RECIPIENT).inbox) == 31
        assert calls[30] >= 5.0 + 60
    finally:
        import time
        sandbox.clock = time.monotonic


def test_without_pacing_the_31st_message_is_refused(sandbox):
    clock = FakeClock(0.0)
    sandbox.clock = clock
    try:
        cfg = config(sandbox, "smtp+imap")
        unpaced = Pacer(per_minute=10_000, clock=clock, sleep=clock.sleep)
        with Mailer(cfg, clock=clock, sleep=clock.sleep, pacer=unpaced) as mailer:
            for n in range(30):
                mailer.send(sample.RECIPIENT, f"n{n}", "x")
            with pytest.raises(MailError) as e:
                mailer.send(sample.RECIPIENT, "one too many", "x")
        assert e.value.code == "http.429"
    finally:
        import time
        sandbox.clock = time.monotonic


def test_separate_processes_share_the_budget(tmp_path):
    """Two Pacers on one state file (as two `mailwizard send` runs would be) stay under 30 together."""
    clock = FakeClock(1_000_000.0)
    state = tmp_path / "pacing.json"
    a = Pacer(clock=clock, sleep=clock.sleep, state_path=state)
    b = Pacer(clock=clock, sleep=clock.sleep, state_path=state)
    sent = []
    for n in range(40):
        (a if n % 2 else b).admit("erp@contoso.com")
        sent.append(clock.now)
    assert _max_in_any_minute(sent) == 30
    import stat
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_the_cli_paces_across_runs(sandbox):
    """Mailer() with the real clock keeps its log in the user cache dir."""
    cfg = config(sandbox, "graph")
    with Mailer(cfg) as first:
        first.send(sample.RECIPIENT, "one", "x")
        path = first.pacer.state_path
    with Mailer(cfg) as second:
        assert second.pacer.sent_last_minute(sample.SENDER) == 0     # not loaded until it sends
        second.send(sample.RECIPIENT, "two", "x")
        assert second.pacer.sent_last_minute(sample.SENDER) == 2
    assert path is not None and path.parent.name == "mailwizard"


@pytest.mark.parametrize("protocol", ["ews", "graph", "smtp"])
def test_a_send_refused_at_sign_in_is_not_counted(sandbox, tmp_path, capsys, protocol):
    """`mailwizard send` with a wrong client secret fails at sign-in (exit 1): the shared
    send log (pacing.json) does not count it, so the next runs keep their full budget."""
    from wizard.config import files as config_io
    from wizard.cli.main import main
    from wizard.runtime.tokens import cache_dir

    cfg = config(sandbox, protocol)
    cfg.auth.client_secret = sample.EXPIRED_SECRET_VALUE
    path = config_io.save(cfg, tmp_path / "mw.toml")
    for n in range(3):
        rc = main(["send", "--config", str(path), "--to", sample.RECIPIENT, "--subject", f"try {n}"])
        out, err = capsys.readouterr()
        assert rc == 1 and "AADSTS7000222" in err, err
    log = cache_dir() / "pacing.json"
    import json
    counted = json.loads(log.read_text()) if log.exists() else {}
    assert counted.get(sample.SENDER.lower(), []) == []
    # a send that goes through is still counted
    cfg.auth.client_secret = sample.SECRET_VALUE
    config_io.save(cfg, path)
    assert main(["send", "--config", str(path), "--to", sample.RECIPIENT, "--subject", "works"]) == 0
    assert len(json.loads(log.read_text())[sample.SENDER.lower()]) == 1
