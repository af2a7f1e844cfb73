"""Efecte ESM reads its mail by IMAP from the O365 mailbox (guide 004): the wizard asks
which mailbox (default: the service account's own), init and the sandbox write it, and
the test and `check` sign in to IMAP and open it; `poll` reads the saved config
(issue 14, item 3). Against the sandbox on 127.0.0.1."""

from __future__ import annotations

import json
import socket

import pytest

from test_tui import goto_next, paste, quiet, run_test_stage, screen_text
from screens.app import make_app
from wizard.config import files as config_io
from wizard.cli.main import main
from wizard.config.files import standard_toml
from wizard.sandbox import sample

tomllib = standard_toml()


def esm_config(sb, flow="password"):
    cfg = sb.config(flow, system="efecte_esm", protocol="smtp+imap")
    cfg.incoming.accounts = []          # as the wizard wrote ESM configs before: no incoming mailbox
    return cfg


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and sample.SERVICE_PASSWORD not in out + err
    return rc, out, err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv("MAILWIZARD_TIMEOUT", "2,5")
    monkeypatch.setenv("MAILWIZARD_MAX_WAIT", "0.02")


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_the_wizard_asks_for_the_mailbox_esm_reads_and_tests_it_over_imap(sandbox, tmp_path, capsys, size):
    path = tmp_path / "esm.toml"
    app = quiet(make_app(path, demo=sandbox, initial=esm_config(sandbox), stage="mail"))
    async with app.run_test(size=size) as pilot:
        field = app.screen.query_one("#f-incoming-esm_mailbox")
        assert field.value == "" and sample.SERVICE_USER in field.placeholder     # default: its own
        field.focus()
        await pilot.pause()
        assert "Mailbox ESM reads" in screen_text(app)
        text = await run_test_stage(pilot)
        steps = {st.id: st for st in app.last_report.steps}
        own = steps[f"mailbox:{sample.SERVICE_USER}"]
        assert own.status == "pass" and "over IMAP" in own.summary, text
        assert app.last_report.ok
        await goto_next(pilot, "save")
        await pilot.press("s")
        await pilot.pause()
    data = tomllib.loads(path.read_text())
    assert data["incoming"]["accounts"] == [{"address": sample.SERVICE_USER, "available_to": "all"}]
    rc, out, _ = _run(capsys, "poll", "--once", "--peek", "--config", str(path))
    assert rc == 0 and sample.SERVICE_USER in out


async def test_another_mailbox_typed_is_the_one_tested_and_saved(sandbox, tmp_path):
    path = tmp_path / "esm.toml"
    app = quiet(make_app(path, demo=sandbox, initial=esm_config(sandbox), stage="mail"))
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#f-incoming-esm_mailbox").focus()
        await pilot.pause()
        await paste(pilot, sample.INCOMING[0])
        await run_test_stage(pilot)
        ids = [st.id for st in app.last_report.steps]
        assert f"mailbox:{sample.INCOMING[0]}" in ids and f"mailbox:{sample.SERVICE_USER}" not in ids
        assert app.last_report.ok
        await goto_next(pilot, "save")
        await pilot.press("s")
        await pilot.pause()
    assert tomllib.loads(path.read_text())["incoming"]["accounts"][0]["address"] == sample.INCOMING[0]


def test_check_tries_imap_even_when_the_config_names_no_mailbox(sandbox, tmp_path, capsys):
    """A dead IMAP port fails the check (it used to say "all steps passed"); a live one
    passes with a warning that names the mailbox to add."""
    cfg = esm_config(sandbox)
    cfg.incoming.port = _closed_port()
    path = config_io.save(cfg, tmp_path / "esm.toml")
    rc, out, _ = _run(capsys, "check", "--json", "--config", str(path))
    data = json.loads(out)
    tcp = next(s for s in data["steps"] if s["id"] == "tcp")
    assert rc == 1 and data["ok"] is False and tcp["status"] == "fail" and str(cfg.incoming.port) in tcp["summary"]
    rc, out, _ = _run(capsys, "check", "--config", str(path))
    assert rc == 1 and "all steps passed" not in out

    cfg.incoming.port = sandbox.imap_port
    config_io.save(cfg, path)
    rc, out, _ = _run(capsys, "check", "--json", "--config", str(path))
    data = json.loads(out)
    own = next(s for s in data["steps"] if s["id"] == f"mailbox:{sample.SERVICE_USER}")
    assert rc == 0 and own["status"] == "warn" and "IMAP" in own["summary"]
    assert f'address = "{sample.SERVICE_USER}"' in own["fix"]


def test_init_gives_esm_its_mailbox_and_poll_reads_it(sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ERP_PW", sample.SERVICE_PASSWORD)
    path = tmp_path / "esm.toml"
    rc, out, err = _run(capsys, "init", "--non-interactive", "--config", str(path), "--system", "efecte_esm",
                        "--flow", "password", "--protocol", "smtp+imap", "--tenant-id", sample.TENANT_ID,
                        "--client-id", sample.PASSWORD_APP_ID, "--username", sample.SERVICE_USER,
                        "--password-env", "ERP_PW", "--sender", sample.SENDER,
                        "--server", sandbox.host, "--port", str(sandbox.smtp_port),
                        "--incoming-server", sandbox.host, "--incoming-port", str(sandbox.imap_port),
                        "--authority", sandbox.base_url, "--ca-bundle", sandbox.ca_path)
    assert rc == 0, out + err
    assert f"mailbox:{sample.SERVICE_USER}" in out and sample.SERVICE_USER in err   # the note says which
    cfg = config_io.load(path)
    assert (cfg.outgoing.protocol, cfg.incoming.protocol) == ("smtp", "imap")
    assert [a.address for a in cfg.incoming.accounts] == [sample.SERVICE_USER]
    rc, out, _ = _run(capsys, "poll", "--once", "--peek", "--config", str(path))
    assert rc == 0
