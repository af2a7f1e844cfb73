"""Polling: concurrent, isolated per account, poll_minutes respected, and the
`mailwizard send` / `poll` commands on top of the runtime."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runtime_helpers import FakeClock, config, with_bad_account
from wizard.config import files as config_io
from wizard.cli.main import main
from wizard.runtime import Mailer
from wizard.runtime.poll import poll_forever, poll_once
from wizard.sandbox import sample

ORDERS, INVOICES = sample.INCOMING


def test_poll_marks_processed_so_the_next_poll_sees_nothing(sandbox):
    with Mailer(config(sandbox, "graph")) as mailer:
        mailer.send([ORDERS, INVOICES], "new order", "x")
        seen = []
        first = poll_once(mailer, handler=seen.append)
        second = poll_once(mailer)
    assert sorted(m.account for m in seen) == [INVOICES, ORDERS]
    assert [r.processed for r in first] == [1, 1]
    assert all(r.ok and r.messages == [] for r in second)


def test_a_failing_handler_leaves_the_message_for_the_next_poll(sandbox):
    with Mailer(config(sandbox, "graph")) as mailer:
        mailer.send(ORDERS, "needs retry", "x")

        def broken(msg):
            raise RuntimeError("ERP database offline")
        results = {r.address: r for r in poll_once(mailer, handler=broken)}
        assert results[ORDERS].diagnosis.code == "internal"
        assert results[INVOICES].ok
        assert [m.subject for m in mailer.fetch(ORDERS)] == ["needs retry"]


def test_poll_forever_waits_poll_minutes_between_polls(sandbox):
    cfg = config(sandbox, "graph")
    cfg.incoming.poll_minutes = 15
    clock = FakeClock(0.0)
    rounds = []
    with Mailer(cfg) as mailer:
        poll_forever(mailer, sleep=clock.sleep, clock=clock, rounds=3, on_results=rounds.append)
    assert len(rounds) == 3
    assert clock.sleeps == [900.0, 900.0]


def test_validate_reports_each_account(sandbox):
    cfg = with_bad_account(config(sandbox, "ews"))
    with Mailer(cfg) as mailer:
        result = mailer.validate_accounts()
    assert result[ORDERS] is None and result[INVOICES] is None
    assert result[sample.NO_MAILBOX].code == "ErrorNonExistentMailbox"


def test_a_sign_in_failure_is_reported_once_for_every_account(sandbox):
    cfg = config(sandbox, "ews", client_secret=sample.EXPIRED_SECRET_VALUE)
    with Mailer(cfg) as mailer:
        result = mailer.validate_accounts()
    assert {d.code for d in result.values()} == {"AADSTS7000222"}
    assert len([r for r in sandbox.requests if r.path.endswith("/token")]) == 1


# -- the commands ------------------------------------------------------------------------------

def _save(sb, protocol="graph", **kw):
    cfg = config(sb, protocol, **kw)
    path = config_io.resolve_path(None)
    config_io.save(cfg, path)
    return cfg, path


def test_cli_send_with_attachment(sandbox, tmp_path, capsys):
    _, path = _save(sandbox)
    body, att = tmp_path / "body.txt", tmp_path / "report.csv"
    body.write_text("The nightly report.\n")
    att.write_text("a;b\n1;2\n")
    code = main(["send", "--config", str(path), "--to", sample.RECIPIENT, "--subject", "Nightly",
                 "--body-file", str(body), "--attach", str(att)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "sent" in out.out and sample.SECRET_VALUE not in out.out + out.err
    got = sandbox.tenant.mailbox(sample.RECIPIENT).inbox[0]
    assert got.subject == "Nightly" and got.body.startswith("The nightly report.")
    assert [a["name"] for a in got.attachments] == ["report.csv"]


def test_cli_send_failure_exit_1_with_cause_and_fix(sandbox, capsys):
    _save(sandbox, "graph", sender=sample.NO_MAILBOX)
    code = main(["send", "--to", sample.RECIPIENT, "--subject", "x"])
    err = capsys.readouterr().err
    assert code == 1
    assert "ErrorInvalidUser" in err and "fix:" in err and "Traceback" not in err


def test_cli_send_usage_and_config_errors_exit_2(sandbox, tmp_path, capsys):
    assert main(["send", "--config", str(tmp_path / "missing.toml"), "--to", "a@b.com", "--subject", "x"]) == 2
    assert "file not found" in capsys.readouterr().err
    _save(sandbox)
    assert main(["send", "--to", "not-an-address", "--subject", "x"]) == 2
    assert main(["send", "--to", sample.RECIPIENT, "--subject", "x", "--attach", str(tmp_path / "nope")]) == 2
    assert main(["send", "--to", sample.RECIPIENT, "--subject", "x", "--from", "NOBODY"]) == 2


def test_cli_poll_once_json_lines(sandbox, capsys):
    cfg, _ = _save(sandbox, "graph")
    with Mailer(cfg) as mailer:
        mailer.send(ORDERS, "order 1", "x")
        mailer.send(ORDERS, "order 2", "x")
    assert main(["poll", "--once", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["account"], x["subject"]) for x in lines] == [(ORDERS, "order 1"), (ORDERS, "order 2")]
    assert main(["poll", "--once"]) == 0
    out = capsys.readouterr().out
    assert f"{ORDERS}: no new mail" in out and f"{INVOICES}: no new mail" in out


def test_cli_poll_once_reports_a_failing_account_and_exits_1(sandbox, capsys):
    cfg = with_bad_account(config(sandbox, "graph"))
    config_io.save(cfg, config_io.resolve_path(None))
    assert main(["poll", "--once", "--json"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["account"] for x in lines if "error" in x] == [sample.NO_MAILBOX]


def test_cli_poll_loop_respects_poll_minutes(sandbox, capsys):
    from wizard.cli.main import build_parser
    from wizard.cli import poll as cli_poll
    cfg, _ = _save(sandbox, "graph")
    args = build_parser().parse_args(["poll"])
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        cli_poll.run(args, sleep=sleep)
    assert len(waits) == 2 and all(3500 < w <= 3600 for w in waits)
    assert "every 60 minute(s)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["send", "--help"], ["poll", "--help"]])
def test_send_and_poll_help_import_nothing_heavy(argv):
    code = ("import sys\nfrom wizard.cli.main import main\ntry:\n"
            f"    main({argv!r})\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print(sorted(m for m in ('textual', 'msal', 'exchangelib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_runtime_import_is_light():
    code = ("import sys\nimport wizard.runtime\n"
            "print(sorted(m for m in ('textual', 'msal', 'exchangelib', 'screens') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_poll_with_a_broken_sign_in_reports_every_account_after_one_attempt(sandbox):
    cfg = config(sandbox, "graph", client_secret=sample.EXPIRED_SECRET_VALUE)
    with Mailer(cfg) as mailer:
        results = poll_once(mailer)
    assert [(r.address, r.diagnosis.code) for r in results] == [(a, "AADSTS7000222") for a in sample.INCOMING]
    assert len([r for r in sandbox.requests if r.path.endswith("/token")]) == 1
