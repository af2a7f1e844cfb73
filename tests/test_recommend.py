"""wizard.guide.recommend: the flow and protocol advice, its reasons and warnings."""

from __future__ import annotations

from datetime import date

import pytest

from wizard.guide import recommend as rc
from wizard.guide.manifest import manifest_snippet

DURING = date(2026, 11, 25)     # EWS in Exchange Online blocked unless allowed
AFTER = date(2027, 4, 2)        # switched off


@pytest.mark.parametrize("system, expected", [
    ("monitor_g5", ("ews", "client_secret")),
    ("efecte_esm", ("smtp+imap", "password")),
    ("generic", ("graph", "client_secret")),
])
def test_defaults_per_system(system, expected):
    assert rc.defaults(system) == expected


def test_app_only_generic_gets_certificate_and_graph():
    rec = rc.recommend(rc.Answers(system="generic", app_only=True))
    assert (rec.flow, rec.protocol) == ("certificate", "graph")
    assert "certificate" in rec.flow_reason.lower() and "Exchange Online" in rec.protocol_reason
    assert rec.warnings == []


def test_monitor_gets_client_secret_and_ews_with_the_retirement_dates():
    rec = rc.recommend(rc.Answers(system="monitor_g5", speaks=("ews",)), today=DURING)
    assert (rec.flow, rec.protocol) == ("client_secret", "ews")
    assert "nothing but EWS" in rec.protocol_reason
    assert any("1 April 2027" in w and "EwsAllowedAppIDs" in w for w in rec.warnings)
    assert "!" in rec.text(brief=True) and "EwsAllowedAppIDs" not in rec.text(brief=True)


def test_delegated_with_mfa_gets_device_code():
    rec = rc.recommend(rc.Answers(system="generic", app_only=False, mfa=True))
    assert rec.flow == "device_code" and "MFA" in rec.flow_reason


def test_efecte_is_password_over_smtp_imap_and_warns_under_mfa():
    rec = rc.recommend(rc.Answers(system="efecte_esm", app_only=True, conditional_access=True))
    assert (rec.flow, rec.protocol) == ("password", "smtp+imap")
    assert "only choice" in rec.flow_reason
    assert any("53003" in w for w in rec.warnings)


def test_on_premises_keeps_ews_without_warning():
    rec = rc.recommend(rc.Answers(system="generic", exchange="on_premises"), today=AFTER)
    assert rec.protocol == "ews" and "on-premises" in rec.protocol_reason and rec.warnings == []


def test_ews_or_smtp_imap_prefers_smtp_imap_on_exchange_online():
    rec = rc.recommend(rc.Answers(system="generic", speaks=("ews", "smtp+imap")))
    assert rec.protocol == "smtp+imap" and "30 messages a minute" in rec.protocol_reason


def test_retirement_warning_only_for_ews_on_exchange_online():
    assert "switched off" in rc.retirement_warning("ews", today=DURING)
    assert rc.retirement_warning("ews", "on_premises", today=AFTER) == ""
    assert rc.retirement_warning("graph", today=AFTER) == ""


def test_password_against_advice():
    warning = rc.password_warning("password", "monitor_g5")
    assert "against the advice" in warning and "Client secret" in warning and "MFA" in warning
    assert "AADSTS50076" in rc.password_warning("password", "generic", mfa=True, recommended="device_code")
    assert rc.password_warning("client_secret", "monitor_g5") == ""
    assert rc.password_warning("password", "efecte_esm") == ""           # the only method it supports
    assert "exclude" in rc.password_warning("password", "efecte_esm", mfa=True)


def test_split_and_choice_of():
    assert rc.split("smtp+imap") == ("smtp", "imap") and rc.split("graph") == ("graph", "graph")
    assert rc.choice_of("smtp", "imap") == "smtp+imap" and rc.choice_of("ews", "ews") == "ews"
    with pytest.raises(ValueError):
        rc.split("pop3")


def test_permissions_and_manifest_per_protocol():
    snippet, by_hand = rc.manifest("certificate", "graph", "graph")
    assert by_hand == [] and "b633e1c5-b582-4048-a93e-9f11b44c7e96" in snippet
    assert rc.manifest("client_secret", "ews", "ews")[0] == manifest_snippet("client_secret", "ews")
    snippet, by_hand = rc.manifest("password", "smtp", "imap")
    assert snippet is None
    assert {p.name for p in by_hand} == {"SMTP.Send", "IMAP.AccessAsUser.All", "offline_access"}
    names = [p.name for p in rc.permissions("device_code", "ews", "ews")]
    assert names == ["EWS.AccessAsUser.All", "User.Read"]
