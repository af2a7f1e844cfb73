"""The error catalogue and the functions that map errors onto it."""

from __future__ import annotations

import errno
import re
import socket
import ssl
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from wizard.diagnosis.catalogue import CATALOGUE, Diagnosis, lookup, normalise_code
from wizard.config.schema import Config
from wizard.diagnosis.classify import diagnose_ews, diagnose_msal, diagnose_network, network_code

CLIENT = "3f6a9c2e-8b1d-4c5e-9a7f-2d4b6e8c0a1f"
SCREENS = {None, "target", "registration", "ids", "mail"}
DOC = Path(__file__).resolve().parents[2] / "shared" / "docs" / "microsoft-365.md"   # shared/ sits beside the repo

# Every code in the error table of docs/microsoft-365.md, as the catalogue keys it.
TABLE_CODES = [
    "AADSTS90002", "AADSTS900023", "AADSTS700016", "AADSTS7000215", "AADSTS7000222", "AADSTS7000218",
    "AADSTS50126", "AADSTS50034", "AADSTS50076", "AADSTS50079", "AADSTS50158", "AADSTS53003",
    "AADSTS530033", "AADSTS65001", "AADSTS50057", "AADSTS50053", "AADSTS50055", "AADSTS500011",
    "AADSTS70011", "AADSTS50194", "AADSTS700027", "ews.401.2000008", "X-EWS-Policy-Reason", "ews.403",
    "ErrorNonExistentMailbox", "ErrorImpersonateUserDenied", "ErrorAccessDenied", "ErrorSendAsDenied",
    "graph.ErrorAccessDenied", "MailboxNotEnabledForRESTAPI", "ErrorInvalidUser", "http.429",
    "ErrorServerBusy", "535 5.7.139", "535 5.7.3", "554 5.2.252", "IMAP AUTHENTICATE failed",
]
OWN_CODES = ["net.refused", "net.dns", "net.timeout", "tls.untrusted", "tls.hostname", "http.html",
             "secret.id_pasted"]


def cfg(flow="client_secret") -> Config:
    c = Config()
    c.microsoft.tenant_id = "5f8d2c1a-7b3e-4a9d-8c6f-1e2d3b4a5c6d"
    c.microsoft.client_id = CLIENT
    c.auth.flow = flow
    c.auth.client_secret = "Qm48Q~Zr5TgVb2NcX7kLp1WsDf9HjY3uEo6RiAaK"
    c.auth.username = "svc-erp@contoso.com"
    c.auth.password = "Sandbox-Passw0rd!"
    c.outgoing.sender = "erp@contoso.com"
    return c


def test_every_aadsts_code_of_the_doc_table_is_in_the_catalogue():
    if not DOC.exists():
        pytest.skip("shared docs not present")
    table = DOC.read_text().split("## Errors and what they mean", 1)[1]
    for number in re.findall(r"AADSTS(\d+)", table) + re.findall(r"\b(5\d{4,5})\b", table):
        assert f"AADSTS{number}" in CATALOGUE, number


@pytest.mark.parametrize("code", TABLE_CODES + OWN_CODES)
@pytest.mark.parametrize("flow", ["client_secret", "password"])
def test_entries_are_complete_and_filled(code, flow):
    d = lookup(code, cfg=cfg(flow), host="outlook.office365.com", port=443)
    assert d.code == code
    assert d.cause and d.fix
    assert d.screen in SCREENS
    assert not re.search(r"\{\w+\}", d.cause + d.fix), "unfilled placeholder"
    text = d.cause + d.fix + (d.guide_step or "")
    for secret in (cfg().auth.client_secret, cfg().auth.password):
        assert secret not in text


def test_guide_steps_follow_the_flow():
    assert lookup("AADSTS7000215", cfg=cfg()).guide_step == "Azure steps 20-22"
    assert lookup("AADSTS7000222", cfg=cfg()).guide_step == "Azure steps 20-22"
    assert lookup("AADSTS90002", cfg=cfg()).guide_step == "Azure step 9"
    assert lookup("AADSTS90002", cfg=cfg("password")).guide_step == "Azure step 8"
    assert lookup("claims.roles", cfg=cfg()).guide_step == "Azure steps 13-16"
    assert lookup("AADSTS7000218", cfg=cfg("password")).guide_step == "Azure steps 16-18"
    assert lookup("AADSTS65001", cfg=cfg()).guide_step == "Azure steps 15-16"


def test_screens():
    assert lookup("AADSTS7000215").screen == "ids"
    assert lookup("AADSTS65001").screen == "registration"
    assert lookup("AADSTS7000218").screen == "registration"
    assert lookup("ErrorNonExistentMailbox").screen == "mail"
    assert lookup("AADSTS500011").screen == "target"


def test_ews_policy_fix_has_the_exact_powershell_and_the_date():
    d = lookup("X-EWS-Policy-Reason", cfg=cfg())
    assert "Get-OrganizationConfig | Select EwsAllowedAppIDs" in d.fix
    assert f'Set-OrganizationConfig -EWSEnabled $true -EwsAllowedAppIDs @{{Add="{CLIENT}"}}' in d.fix
    assert d.fix.index("Get-OrganizationConfig") < d.fix.index("Set-OrganizationConfig")
    assert "full list" in d.fix and "Graph" in d.fix
    assert "2027-04-01" in d.fix + d.cause


def test_fix_fills_in_the_client_id():
    assert CLIENT in lookup("AADSTS7000218", cfg=cfg()).fix or CLIENT in lookup("AADSTS7000218", cfg=cfg()).cause
    assert CLIENT in lookup("claims.roles", cfg=cfg()).fix


def test_missing_values_show_a_readable_stand_in():
    d = lookup("AADSTS700016")
    assert "<client id>" in d.cause


def test_unknown_code_keeps_message_and_ids():
    d = lookup("AADSTS9999999", service_message="Something odd.", trace_id="t-1", correlation_id="c-1")
    assert d.code == "AADSTS9999999"
    assert "Something odd." in d.cause
    assert d.fix
    assert (d.service_message, d.trace_id, d.correlation_id) == ("Something odd.", "t-1", "c-1")


@pytest.mark.parametrize("raw,want", [(7000215, "AADSTS7000215"), ("7000215", "AADSTS7000215"),
                                      ("aadsts50126", "AADSTS50126"), ("ErrorAccessDenied", "ErrorAccessDenied")])
def test_normalise_code(raw, want):
    assert normalise_code(raw) == want


# -- MSAL -------------------------------------------------------------------

def test_msal_error_dict():
    result = {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided. Trace ID: "
                             "0b1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e6 Correlation ID: "
                             "1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5 Timestamp: 2026-11-25 19:00:00Z",
        "error_codes": [7000215],
        "trace_id": "0b1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e6",
        "correlation_id": "1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5",
    }
    d = diagnose_msal(result, cfg=cfg())
    assert d.code == "AADSTS7000215"
    assert d.trace_id == "0b1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e6"
    assert d.correlation_id == "1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
    assert d.service_message.startswith("AADSTS7000215: Invalid client secret")


def test_msal_dict_without_error_codes_reads_the_description():
    d = diagnose_msal({"error": "invalid_grant", "error_description": "AADSTS50126: Error validating credentials."})
    assert d.code == "AADSTS50126"


def test_msal_unknown_tenant_value_error():
    transcript = [{"url": "https://x/t/v2.0/.well-known/openid-configuration", "status": 400,
                   "content_type": "application/json",
                   "body": '{"error":"invalid_tenant","error_codes":[90002],"error_description":"AADSTS90002: Tenant not found."}'}]
    d = diagnose_msal(ValueError("Unable to get authority configuration"), cfg=cfg(), transcript=transcript)
    assert d.code == "AADSTS90002"
    assert diagnose_msal(ValueError("Unable to get authority configuration"), transcript=[]).code == "AADSTS90002"


def test_msal_html_answer_is_a_portal_page():
    transcript = [{"url": "https://x/t", "status": 200, "content_type": "text/html", "body": "<html>"}]
    try:
        import json
        json.loads("<html>")
    except ValueError as inner:
        try:
            raise ValueError("Unable to get authority configuration") from inner
        except ValueError as exc:
            d = diagnose_msal(exc, transcript=transcript, host="login.example")
    assert d.code == "http.html"
    assert "login.example" in d.cause


def test_msal_5xx():
    class MsalServiceError(Exception):
        pass
    transcript = [{"url": "https://x/t", "status": 503, "content_type": "application/json", "body": "{}"}]
    assert diagnose_msal(MsalServiceError("HTTP Error: 503"), transcript=transcript).code == "http.5xx"


# -- network -------------------------------------------------------------------

def _wrapped(inner: BaseException) -> BaseException:
    """inner wrapped the way requests/urllib3 wrap it."""
    try:
        try:
            raise inner
        except BaseException as e:
            raise ConnectionError("wrapper") from e
    except BaseException as outer:
        return outer


def _cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    e = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    e.verify_code = code
    return e


@pytest.mark.parametrize("exc,code", [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "net.refused"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "net.dns"),
    (TimeoutError("timed out"), "net.timeout"),
    (_cert_error(20, "unable to get local issuer certificate"), "tls.untrusted"),
    (_cert_error(62, "Hostname mismatch, certificate is not valid for 'x'"), "tls.hostname"),
    (_cert_error(10, "certificate has expired"), "tls.expired"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "net.unreachable"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "net.reset"),
])
def test_network_codes(exc, code):
    assert network_code(exc) == code
    assert network_code(_wrapped(exc)) == code
    d = diagnose_network(_wrapped(exc), host="h.example", port=443)
    assert d.code == code and d.fix and "h.example" in d.cause


def test_requests_exceptions_are_recognised():
    import requests
    assert network_code(requests.exceptions.ConnectTimeout("x")) == "net.timeout"
    assert network_code(requests.exceptions.ProxyError("x")) == "net.proxy"
    assert network_code(ValueError("nothing to do with the network")) is None


# -- EWS -------------------------------------------------------------------------

def _exc(name: str, *args, **attrs) -> Exception:
    cls = type(name, (Exception,), {})
    e = cls(*args)
    for k, v in attrs.items():
        setattr(e, k, v)
    return e


def test_ews_403_with_policy_header():
    resp = {"status": 403, "headers": {"x-ews-policy-reason": "EwsDisabledForApp"}}
    d = diagnose_ews(_exc("MalformedResponseError", "Unknown failure in response. Code: 403"), cfg=cfg(),
                     response=resp)
    assert d.code == "X-EWS-Policy-Reason"
    assert CLIENT in d.fix
    assert "EwsDisabledForApp" in d.service_message


def test_ews_403_without_header_is_propagation():
    d = diagnose_ews(_exc("MalformedResponseError", "Code: 403 headers: {}"), cfg=cfg(), response=None)
    assert d.code == "ews.403" and d.screen == "registration"


def test_ews_401_diagnostics():
    resp = {"status": 401, "headers": {"x-ms-diagnostics": '2000008;reason="no permissions"'}}
    assert diagnose_ews(_exc("UnauthorizedError", "Invalid credentials"), response=resp).code == "ews.401.2000008"
    assert diagnose_ews(_exc("UnauthorizedError", "Invalid credentials"), response={"status": 401}).code == "ews.401"


@pytest.mark.parametrize("name", ["ErrorNonExistentMailbox", "ErrorImpersonateUserDenied", "ErrorAccessDenied",
                                  "ErrorSendAsDenied"])
def test_ews_response_errors(name):
    d = diagnose_ews(_exc(name, "text"), cfg=cfg(), address="x@contoso.com")
    assert d.code == name and d.screen == "mail" and "x@contoso.com" in d.cause + d.fix


def test_ews_server_busy_uses_back_off():
    d = diagnose_ews(_exc("ErrorServerBusy", "busy", back_off=2.5))
    assert d.code == "ErrorServerBusy" and "2.5 seconds" in d.fix


def test_ews_unknown_error_keeps_its_name_and_message():
    d = diagnose_ews(_exc("ErrorMailboxStoreUnavailable", "The mailbox database is temporarily unavailable."))
    assert d.code == "ErrorMailboxStoreUnavailable"
    assert "temporarily unavailable" in d.service_message


def test_ews_transport_error_uses_the_recorded_exception():
    resp = {"status": None, "exception": _wrapped(_cert_error(20, "unable to get local issuer certificate"))}
    assert diagnose_ews(_exc("TransportError", "x"), response=resp).code == "tls.untrusted"
    resp = {"status": None, "exception": _wrapped(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))}
    assert diagnose_ews(_exc("ErrorTimeoutExpired", "x"), response=resp).code == "net.refused"


@given(st.text(max_size=40), st.text(max_size=200))
def test_lookup_never_fails_and_always_advises(code, message):
    d = lookup(code, service_message=message)
    assert isinstance(d, Diagnosis) and d.cause and d.fix


# -- the codes users of peer tools meet most (issue 17, item 4) --------------------------------

# code -> words its cause or fix must hold (the meaning checked against Microsoft's error code page)
PEER_CODES = {
    "AADSTS500113": "no redirect URI", "AADSTS50011": "does not match", "AADSTS900971": "named no redirect URI",
    "AADSTS70003": "grant type", "AADSTS700025": "public client", "AADSTS7000112": "disabled",
    "AADSTS1002012": "/.default", "AADSTS65002": "Microsoft's own", "AADSTS65004": "declined",
    "AADSTS90094": "Administrator consent", "AADSTS50105": "not assigned", "AADSTS700082": "90 days",
    "AADSTS70043": "sign-in frequency", "AADSTS50020": "another identity provider",
    "AADSTS53000": "compliant",
}
# where the guides have a step for it, (guide 001 client secret, guide 002 user name/password); the
# others: no guide step applies (the screen still does)
PEER_GUIDE = {
    "AADSTS500113": ("Azure step 6", "Azure step 5"), "AADSTS50011": ("Azure step 6", "Azure step 5"),
    "AADSTS900971": ("Azure step 6", "Azure step 5"), "AADSTS700025": ("Azure steps 17-19", "Azure steps 16-18"),
    "AADSTS1002012": ("Azure steps 13-16", "Azure steps 12-15"), "AADSTS65002": ("Azure step 9", "Azure step 8"),
    "AADSTS65004": ("Azure steps 15-16", "Azure steps 14-15"), "AADSTS90094": ("Azure steps 15-16", "Azure steps 14-15"),
    "AADSTS50105": ("Azure step 23", "Azure step 19"), "AADSTS50020": ("Azure step 23", "Azure step 19"),
}


def _peer_section() -> str:
    if not DOC.exists():
        pytest.skip("shared docs not present")
    return DOC.read_text().split("## Codes users of peer tools meet most", 1)[1].split("\n## ", 1)[0]


def test_the_peer_tools_list_is_the_one_tested_here():
    assert set(re.findall(r"AADSTS\d+", _peer_section())) == set(PEER_CODES)


@pytest.mark.parametrize("code", sorted(PEER_CODES))
@pytest.mark.parametrize("flow", ["client_secret", "password"])
def test_every_code_peer_tools_meet_has_an_entry(code, flow):
    assert code in CATALOGUE
    d = lookup(code, cfg=cfg(flow), service_message=f"{code}: the service's words.")
    assert d.code == code
    assert PEER_CODES[code] in d.cause + d.fix
    assert d.screen in SCREENS - {None}
    assert d.guide_step == PEER_GUIDE.get(code, (None, None))[flow == "password"]
    assert not re.search(r"\{\w+\}|<\w[\w ]*>", d.cause + d.fix), "unfilled placeholder"
    assert "reported" not in d.cause                 # a real entry, not the unknown-code fallback
    assert d.service_message.startswith(code)


def test_msal_result_with_a_peer_code_gets_its_entry():
    d = diagnose_msal({"error": "invalid_grant", "error_codes": [700082],
                       "error_description": "AADSTS700082: The refresh token has expired due to inactivity."},
                      cfg=cfg("password"))
    assert d.code == "AADSTS700082" and "90 days" in d.cause and "mailwizard login" in d.fix


@pytest.mark.parametrize("code, family_words, screen", [
    ("AADSTS53999", "Conditional Access", "ids"),
    ("AADSTS5999", "the signing-in account", "ids"),
    ("AADSTS659999", "consent", "registration"),
    ("AADSTS7999999", "the app registration", "ids"),
    ("AADSTS81999", "on-premises sign-in", None),
    ("AADSTS99999", "the tenant or the Microsoft cloud", "ids"),
])
def test_an_unknown_aadsts_code_is_explained_from_its_family(code, family_words, screen):
    assert code not in CATALOGUE
    d = lookup(code, cfg=cfg(), service_message="Something new.", trace_id="t-1")
    assert d.code == code
    assert family_words in d.cause and f"AADSTS{code[6]}" in d.cause
    assert "Something new." in d.cause and d.service_message == "Something new." and d.trace_id == "t-1"
    assert f"https://login.microsoftonline.com/error?code={code[6:]}" in d.fix
    assert d.screen == screen
    assert not re.search(r"\{\w+\}", d.cause + d.fix)


def test_the_error_page_follows_the_cloud():
    c = cfg()
    c.microsoft.cloud = "china"
    assert "login.partner.microsoftonline.cn/error?code=53999" in lookup("AADSTS53999", cfg=c).fix


def test_fixes_that_ask_to_check_the_cloud_name_the_field_that_sets_it():
    """The cloud is chosen on stage 1 under 'Microsoft cloud' (screens/target.py); every
    fix that asks to check it names that field and the config key, none 'the first screen'."""
    from screens.widgets.protocols import CLOUD_LABEL
    from wizard.diagnosis.aadsts import FAMILIES
    fixes = {code: lookup(code, cfg=cfg()).fix for code in CATALOGUE}
    fixes.update({f"AADSTS{prefix}": lookup(f"AADSTS{prefix}0000", cfg=cfg()).fix for prefix, *_ in FAMILIES})
    asking = {code: fix for code, fix in fixes.items() if re.search(r"\bthe (Microsoft )?cloud\b", fix)}
    assert {"AADSTS90002", "AADSTS500011", "AADSTS70011", "AADSTS700023", "AADSTS1002012", "graph.401",
            "claims.aud", "AADSTS9"} <= set(asking)
    for code, fix in asking.items():
        assert f"'{CLOUD_LABEL}' on stage 1 of the wizard" in fix and "microsoft.cloud" in fix, code
    assert not [code for code, fix in fixes.items() if "first screen" in fix]
