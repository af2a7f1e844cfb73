"""`mailwizard relay status` and `relay queue list` read the spool as the admin would: the same JSON
keys before the relay ever ran as after, and each message's state in words."""

from __future__ import annotations

import json
import re
import time

from relay_helpers import ENVELOPE, message, relay_config
from wizard.cli.main import main
from wizard.config.files import save
from wizard.relay.spool import Spool


def _saved(sandbox, tmp_path):
    """(a saved config with a relay client, its opened spool)."""
    return save(relay_config(sandbox, tmp_path), tmp_path / "mw.toml"), Spool(tmp_path / "spool").open()


def _status(path, capsys) -> dict:
    assert main(["relay", "status", "--json", "--config", str(path)]) == 0
    return json.loads(capsys.readouterr().out)


def test_status_json_has_the_same_keys_before_the_first_run(sandbox, tmp_path, capsys):
    cfg = relay_config(sandbox, tmp_path, protocol="smtp")
    path = save(cfg, tmp_path / "mw.toml")
    before = _status(path, capsys)
    assert not (tmp_path / "spool").exists()
    assert before["queued"] == 0 and before["retrying"] == [] and before["dead"] == 0
    assert "at least once" in before["delivery"]          # scripts read which guarantee applies
    Spool(tmp_path / "spool").open()
    after = _status(path, capsys)
    assert sorted(before) == sorted(after)
    assert before["spool"] == after["spool"] == str(tmp_path / "spool")


def test_queue_list_says_retrying_with_the_next_attempt_and_dead(sandbox, tmp_path, capsys):
    path, spool = _saved(sandbox, tmp_path)
    fresh = spool.store(message().as_bytes(), ENVELOPE)
    later = time.time() + 600
    retried = spool.store(message().as_bytes(), ENVELOPE)
    spool.update(retried, attempts=2, next_attempt=later, last_error="http.5xx: busy")
    dead = spool.store(message().as_bytes(), ENVELOPE)
    spool.bury(dead, last_error="smtp.rcpt: no such user")
    assert main(["relay", "queue", "list", "--config", str(path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert re.search(r"\bqueued\b", lines[fresh]) and "retrying" not in lines[fresh]
    next_at = time.strftime("%H:%M:%S", time.localtime(later))
    assert f"retrying, next {next_at}" in lines[retried] and "2 tried" in lines[retried]
    assert "dead" in lines[dead] and "no such user" in lines[dead]


def test_delivered_journals_are_forgotten_after_a_week(tmp_path):
    """done/ would otherwise grow by one file per message for ever (and `status` read them all)."""
    import os
    from wizard.relay.spool import KEEP_DONE
    spool = Spool(tmp_path / "spool").open()
    old, recent = (spool.store(message().as_bytes(), ENVELOPE) for _ in range(2))
    spool.delivered(old)
    spool.delivered(recent)
    week_ago = time.time() - KEEP_DONE - 60
    os.utime(spool.done / f"{old}.json", (week_ago, week_ago))
    Spool(tmp_path / "spool").open()                       # the next start
    assert spool.ids("done") == [recent]
    os.utime(spool.done / f"{recent}.json", (week_ago, week_ago))
    running = Spool(tmp_path / "spool").open()
    running._pruned_at -= 3601                             # an hour into a long run
    third = running.store(message().as_bytes(), ENVELOPE)
    running.delivered(third)
    assert running.ids("done") == [third]


def test_a_message_held_by_the_pacer_says_so(sandbox, tmp_path, capsys):
    path, spool = _saved(sandbox, tmp_path)
    held = spool.store(message().as_bytes(), ENVELOPE)
    later = time.time() + 40
    spool.update(held, next_attempt=later)              # what the delivery does at the sending limit
    st = _status(path, capsys)
    assert st["queued"] == 1 and st["retrying"] == [] and st["queued_messages"][0]["next_attempt"]
    assert main(["relay", "status", "--config", str(path)]) == 0
    assert "sending limit" in capsys.readouterr().out
    assert main(["relay", "queue", "list", "--config", str(path)]) == 0
    assert f"paced (sending limit), next {time.strftime('%H:%M:%S', time.localtime(later))}" in capsys.readouterr().out


def test_a_second_relay_on_the_same_spool_does_not_start_nor_touch_it(sandbox, tmp_path):
    """Two relays on one spool would deliver the same queue (duplicates), and a second start would
    clear files the first is writing: the second one says so and leaves."""
    from relay_helpers import RunningRelay
    from wizard.relay import daemon
    cfg = relay_config(sandbox, tmp_path)
    first = RunningRelay(cfg)
    try:
        being_written = first.spool.queue / "01a2-being-written.eml"   # a message between its two renames
        being_written.write_bytes(b"From: erp@contoso.com\r\n\r\nhalf\r\n")
        lines = []
        assert daemon.run(cfg, lambda: cfg, log=lines.append, install_signals=False) == 1
        assert any("another mailwizard relay runs on this spool" in line and str(tmp_path / "spool") in line
                   for line in lines), lines
        assert being_written.exists()
    finally:
        first.close()
    assert daemon.run(cfg, lambda: cfg, log=lines.append, install_signals=False,
                      stop_event=_set_event()) == 0                 # once it stopped, the next one starts


def _set_event():
    import threading
    event = threading.Event()
    event.set()
    return event


def test_retry_of_a_dead_message_without_its_file_says_so(sandbox, tmp_path, capsys):
    path, spool = _saved(sandbox, tmp_path)
    mid = spool.store(message().as_bytes(), ENVELOPE)
    (spool.queue / f"{mid}.eml").unlink()
    spool.bury(mid, last_error="the message file is missing from the spool")
    assert main(["relay", "queue", "retry", mid, "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "no message file left" in err and f"queue drop {mid}" in err and "Traceback" not in err
    assert spool.ids("dead") == [mid]


def test_a_ca_bundle_variable_naming_no_file_stops_the_relay_at_start_saying_so(sandbox, tmp_path, capsys,
                                                                                 monkeypatch):
    """Every delivery and login would fail as a vague TLS error; the relay says which variable and file."""
    cfg = relay_config(sandbox, tmp_path)
    cfg.endpoints.ca_bundle = ""
    path = save(cfg, tmp_path / "mw.toml")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "gone" / "ca.pem"))
    assert main(["relay", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "$REQUESTS_CA_BUNDLE" in err and "does not exist" in err and "unset REQUESTS_CA_BUNDLE" in err
    assert not (tmp_path / "spool").exists()
