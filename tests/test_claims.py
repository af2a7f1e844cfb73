"""Reading a token's claims and checking them against the config."""

from __future__ import annotations

import base64
import json
import time

import pytest
from hypothesis import given, strategies as st

from wizard.identity.claims import check_claims, decode_jwt, granted, wanted
from wizard.config.schema import Config

TENANT = "5f8d2c1a-7b3e-4a9d-8c6f-1e2d3b4a5c6d"
CLIENT = "3f6a9c2e-8b1d-4c5e-9a7f-2d4b6e8c0a1f"
NOW = 1_800_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(payload: dict) -> str:
    return ".".join([b64(b'{"alg":"RS256","typ":"JWT"}'), b64(json.dumps(payload).encode()), b64(b"sig")])


def cfg(flow="client_secret", tenant=TENANT) -> Config:
    c = Config()
    c.microsoft.tenant_id = tenant
    c.microsoft.client_id = CLIENT
    c.auth.flow = flow
    c.auth.username = "svc-erp@contoso.com"
    return c


def app_claims(**over) -> dict:
    base = {"aud": "https://outlook.office365.com", "tid": TENANT, "appid": CLIENT,
            "roles": ["full_access_as_app"], "exp": NOW + 3600}
    base.update(over)
    return base


def user_claims(**over) -> dict:
    base = {"aud": "https://outlook.office365.com", "tid": TENANT, "appid": CLIENT,
            "scp": "EWS.AccessAsUser.All User.Read", "upn": "svc-erp@contoso.com", "exp": NOW + 3600}
    base.update(over)
    return base


def codes(findings):
    return [(f.status, f.code) for f in findings]


def test_decode_round_trip():
    payload = {"aud": "x", "n": 1, "ü": "ö"}
    assert decode_jwt(jwt(payload)) == payload


@pytest.mark.parametrize("bad", ["", "abc", "a.b", "a.!!!.c", f"a.{b64(b'[1,2]')}.c", f"a.{b64(b'not json')}.c"])
def test_decode_rejects_non_tokens(bad):
    with pytest.raises(ValueError):
        decode_jwt(bad)


@given(st.text(max_size=300))
def test_decode_raises_only_value_error(text):
    try:
        decode_jwt(text)
    except ValueError:
        pass


def test_good_app_only_token():
    assert check_claims(app_claims(), cfg(), now=NOW) == []


def test_good_delegated_token():
    assert check_claims(user_claims(), cfg("password"), now=NOW) == []


def test_audience_may_be_the_exchange_app_id():
    assert check_claims(app_claims(aud="00000002-0000-0ff1-ce00-000000000000"), cfg(), now=NOW) == []


def test_missing_role_means_consent_missing():
    findings = check_claims(app_claims(roles=[]), cfg(), now=NOW)
    assert codes(findings) == [("fail", "claims.roles")]
    d = findings[0].diagnosis
    assert "admin consent" in d.cause and "Delegated instead of Application" in d.cause
    assert d.guide_step == "Azure steps 13-16" and d.screen == "registration"
    assert CLIENT in d.fix


def test_delegated_token_for_app_only_flow_lacks_the_role():
    findings = check_claims(user_claims(), cfg(), now=NOW)
    assert ("fail", "claims.roles") in codes(findings)


def test_missing_scope():
    findings = check_claims(user_claims(scp="User.Read"), cfg("password"), now=NOW)
    assert codes(findings) == [("fail", "claims.scp")]
    assert findings[0].diagnosis.guide_step == "Azure steps 12-15"


def test_wrong_audience():
    findings = check_claims(app_claims(aud="https://graph.microsoft.com"), cfg(), now=NOW)
    assert codes(findings) == [("fail", "claims.aud")]
    assert "graph.microsoft.com" in findings[0].diagnosis.cause


def test_national_cloud_audience():
    c = cfg()
    c.microsoft.cloud = "usgov"
    assert check_claims(app_claims(aud="https://outlook.office365.us"), c, now=NOW) == []
    assert codes(check_claims(app_claims(), c, now=NOW)) == [("fail", "claims.aud")]


def test_wrong_tenant():
    findings = check_claims(app_claims(tid="00000000-0000-0000-0000-000000000001"), cfg(), now=NOW)
    assert codes(findings) == [("fail", "claims.tid")]


def test_tenant_given_as_domain_is_not_compared():
    assert check_claims(app_claims(tid="anything"), cfg(tenant="contoso.com"), now=NOW) == []


def test_expired_token():
    findings = check_claims(app_claims(exp=NOW - 1), cfg(), now=NOW)
    assert codes(findings) == [("fail", "claims.exp")]
    assert "clock" in findings[0].diagnosis.cause


def test_other_user_is_a_warning():
    findings = check_claims(user_claims(upn="someone@contoso.com"), cfg("password"), now=NOW)
    assert codes(findings) == [("warn", "claims.upn")]


def test_now_defaults_to_the_clock():
    assert check_claims(app_claims(exp=time.time() + 600), cfg()) == []


def test_granted_summary():
    assert granted(app_claims()) == "roles: full_access_as_app"
    assert granted(user_claims()).startswith("scp: EWS.AccessAsUser.All")
    assert granted({}) == "no permissions"


def test_wanted_follows_the_protocols():
    c = cfg()
    w = wanted(c)
    assert (w.api, w.resource, w.permissions) == ("exchange", "https://outlook.office365.com", ["full_access_as_app"])
    assert w.scopes("client_secret") == ["https://outlook.office365.com/.default"]
    p = cfg("password")
    assert wanted(p).scopes("password") == ["https://outlook.office365.com/EWS.AccessAsUser.All"]
    p.outgoing.protocol, p.incoming.protocol = "smtp", "imap"
    p.incoming.accounts = [type("A", (), {"address": "x@contoso.com"})()]
    assert wanted(p).permissions == ["SMTP.Send", "IMAP.AccessAsUser.All"]
    g = cfg()
    g.outgoing.protocol = "graph"
    assert (wanted(g).resource, wanted(g).permissions) == ("https://graph.microsoft.com", ["Mail.Send"])


def test_missing_imap_scope_is_named():
    p = cfg("password")
    p.outgoing.protocol = "smtp"
    findings = check_claims(user_claims(scp="SMTP.Send"), p, now=NOW)
    assert findings == [] or all(f.code != "claims.scp" for f in findings)
    p.incoming.protocol = "imap"
    p.incoming.accounts = [type("A", (), {"address": "x@contoso.com"})()]
    findings = check_claims(user_claims(scp="SMTP.Send"), p, now=NOW)
    assert codes(findings) == [("fail", "claims.scp")]
    assert "IMAP.AccessAsUser.All" in findings[0].diagnosis.cause
