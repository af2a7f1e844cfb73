"""The EWS retirement guardrail: three phases on Exchange Online, none on-premises."""

from __future__ import annotations

from datetime import date

import pytest

from wizard.config.schema import Config
from wizard.guide.retirement import ERROR, OK, WARN, allow_list_commands, ews_problem, ews_status

CLIENT = "3f6a9c2e-8b1d-4c5e-9a7f-2d4b6e8c0a1f"


def ews_cfg(**microsoft) -> Config:
    cfg = Config()
    cfg.microsoft.client_id = CLIENT
    for k, v in microsoft.items():
        setattr(cfg.microsoft, k, v)
    return cfg


def test_before_the_block_warns_with_both_dates():
    level, msg = ews_status(ews_cfg(), date(2026, 9, 1))
    assert level == WARN
    assert "1 October 2026" in msg and "1 April 2027" in msg and "30 days" in msg
    assert CLIENT in msg and "Microsoft Graph" in msg


@pytest.mark.parametrize("today", [date(2026, 10, 1), date(2027, 3, 31)])
def test_during_the_block_warns_with_the_allow_list_command(today):
    level, msg = ews_status(ews_cfg(), today)
    assert level == WARN
    assert "works only if the tenant allows this app" in msg
    assert "Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy" in msg       # read the list first
    assert "Set-OrganizationConfig -EwsEnabled $true -EwsAllowedAppIDs" in msg
    assert f'$appId = "{CLIENT}"' in msg
    assert "X-EWS-Policy-Reason" in msg


@pytest.mark.parametrize("today", [date(2027, 4, 1), date(2030, 1, 1)])
def test_after_the_shutdown_ews_on_exchange_online_is_refused_with_graph(today):
    level, msg = ews_status(ews_cfg(), today)
    assert level == ERROR
    assert "switched off" in msg and "Microsoft Graph" in msg and 'outgoing.protocol = "graph"' in msg
    p = ews_problem(ews_cfg(), today)
    assert p.field == "outgoing.protocol" and p.warning is False


@pytest.mark.parametrize("today", [date(2026, 9, 1), date(2026, 12, 1), date(2027, 4, 1), date(2031, 1, 1)])
def test_on_premises_keeps_ews_without_warning(today):
    cfg = ews_cfg(exchange="on_premises")
    level, _ = ews_status(cfg, today)
    assert level == OK
    assert ews_problem(cfg, today) is None


def test_no_ews_no_warning():
    cfg = ews_cfg()
    cfg.outgoing.protocol = cfg.incoming.protocol = "graph"
    assert ews_status(cfg, date(2027, 5, 1)) == (OK, "")


def test_incoming_ews_alone_is_enough_to_warn():
    cfg = ews_cfg()
    cfg.outgoing.protocol = "graph"
    p = ews_problem(cfg, date(2026, 11, 1))
    assert p.field == "incoming.protocol" and p.warning is True


def test_allow_list_keeps_the_existing_apps():
    ps = allow_list_commands(CLIENT)
    lines = ps.splitlines()
    read = next(i for i, l in enumerate(lines) if "RetrieveEwsOperationAccessPolicy" in l)
    write = next(i for i, l in enumerate(lines) if l.startswith("Set-OrganizationConfig"))
    assert read < write
    assert "-notcontains $appId" in ps and '($list -join ",")' in ps


def test_check_warns_about_ews_retirement_on_exchange_online_only(sandbox, monkeypatch):
    from wizard.check import engine as conntest

    cfg = sandbox.config(flow="client_secret")
    report = conntest.run_check(cfg)
    assert report.steps[0].status == "pass"          # the sandbox is not Exchange Online
    monkeypatch.setattr(conntest.model, "EXO_HOSTS", conntest.model.EXO_HOSTS + ("127.0.0.1",))
    report = conntest.run_check(cfg)
    config_step = report.steps[0]
    from datetime import date
    expected = "warn" if date.today() < date(2027, 4, 1) else "fail"
    assert config_step.status == expected and "2027" in config_step.summary
    cfg.microsoft.exchange = "on_premises"
    assert conntest.run_check(cfg).steps[0].status == "pass"


class _DuringTheBlock(date):
    """date with today() inside the block (between 2026-10-01 and 2027-04-01)."""

    @classmethod
    def today(cls):
        return cls(2026, 12, 7)


def test_check_text_keeps_the_allow_list_script_pasteable_and_names_stage_1(sandbox, tmp_path, capsys,
                                                                             monkeypatch):
    """The PowerShell lines come out whole, one a line (a `#` comment in a rewrapped
    paragraph swallowed the rest of the script), and the fix names the stage that
    holds the protocol (stage 1), not stage 4."""
    from wizard.check import engine as conntest
    from wizard.cli.main import main
    from wizard.config import files as config_io
    from wizard.guide import retirement

    monkeypatch.setattr(conntest.model, "EXO_HOSTS", conntest.model.EXO_HOSTS + ("127.0.0.1",))
    monkeypatch.setattr(retirement, "date", _DuringTheBlock)
    cfg = sandbox.config(flow="client_secret")
    path = config_io.save(cfg, tmp_path / "mw.toml")
    main(["check", "--config", str(path)])
    out = capsys.readouterr().out
    printed = [line.strip() for line in out.splitlines()]
    for line in allow_list_commands(cfg.microsoft.client_id).splitlines():
        assert line.strip() in printed, out
    fix = " ".join(out.split()[out.split().index("fix:"):])
    assert "stage 1" in fix and "stage 4" not in fix, out
    assert any(line.startswith("A blocked call") for line in printed), out      # the prose after it: its own line
    script = [line.strip() for line in allow_list_commands(cfg.microsoft.client_id).splitlines()]
    assert [line for line in out.splitlines()[1:] if len(line) > 78 and line.strip() not in script] == []


def test_check_text_wraps_prose_but_never_a_command_line_of_a_fix():
    from wizard.check.engine import Report, Step
    from wizard.cli.check import render_tree

    command = "  Set-OrganizationConfig -EWSEnabled $true -EwsAllowedAppIDs @{Add=\"%s\"}" % CLIENT
    fix = ("An Exchange admin can allow this app. In Exchange Online PowerShell, first read the current "
           "list (the setting replaces the whole list):\n  Get-OrganizationConfig | Select EwsAllowedAppIDs\n"
           f"then add this app:\n{command}\nChanges can take up to 24 hours, so try again tomorrow.")
    step = Step("mailbox", "Mailbox", "fail", 5, "EWS is blocked for this app.", code="X-EWS-Policy-Reason",
                fix=fix)
    lines = render_tree(Report(False, [step]), "mw.toml", colour=False).splitlines()
    assert any(line.endswith(command) for line in lines), lines
    assert any(line.endswith("  Get-OrganizationConfig | Select EwsAllowedAppIDs") for line in lines), lines
    prose = [line for line in lines if "Set-OrganizationConfig" not in line]
    assert all(len(line) <= 78 for line in prose), lines
    assert any(line.strip().startswith("Changes can take") for line in lines), lines   # prose: its own line


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_g_on_the_retirement_warning_goes_to_the_protocol_choice(sandbox, tmp_path, monkeypatch, size):
    """The config step's warning names outgoing.protocol: g opens stage 1 with the
    protocol choice focused (stage 4 only shows the protocol)."""
    from screens.app import make_app
    from wizard.check import engine as conntest
    from wizard.guide import retirement
    from test_tui import assert_focus_visible, quiet, stage

    monkeypatch.setattr(conntest.model, "EXO_HOSTS", conntest.model.EXO_HOSTS + ("127.0.0.1",))
    monkeypatch.setattr(retirement, "date", _DuringTheBlock)
    app = quiet(make_app(tmp_path / "mw.toml", demo=sandbox, initial=sandbox.config(flow="client_secret"),
                         stage="test"))
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        config_step = app.screen.steps[0]
        assert config_step.status == "warn" and config_step.screen == "target"
        await pilot.press("g")
        for _ in range(5):
            await pilot.pause()
        assert stage(app) == "target"
        assert app.focused is not None and app.focused.id == "protocol"
        assert_focus_visible(app)
