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
