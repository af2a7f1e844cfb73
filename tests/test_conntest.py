"""The connection test end to end, through run_check, against the sandbox on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import threading
from datetime import date, timedelta

import pytest

from wizard.check.engine import Report, Step, Tuning, plan, run_check
from wizard.config.schema import secrets_of
from wizard.sandbox import Fault
from wizard.sandbox import sample

KNOWN_SECRETS = [sample.SECRET_VALUE, sample.EXPIRED_SECRET_VALUE, sample.NO_CONSENT_SECRET_VALUE,
                 sample.SERVICE_PASSWORD, sample.MFA_PASSWORD]
TOKEN = f"/{sample.TENANT_ID}/oauth2/v2.0/token"
OIDC = f"/{sample.TENANT_ID}/v2.0/.well-known/openid-configuration"


class Sleeps(list):
    """Injected sleep: records the waits instead of waiting."""

    def __call__(self, seconds):
        self.append(seconds)


def T(**kw) -> Tuning:
    """Tuning for these tests: one recorded sleep per wait (no countdown ticks)."""
    kw.setdefault("tick", 3600)
    return Tuning(**kw)


@pytest.fixture
def sleeps():
    return Sleeps()


def check(cfg, sleeps=None, **kw) -> Report:
    kw.setdefault("tuning", T(sleep=sleeps if sleeps is not None else Sleeps()))
    return run_check(cfg, **kw)


def step(report: Report, step_id: str) -> Step:
    return next(s for s in report.steps if s.id == step_id)


def statuses(report: Report) -> dict:
    return {s.id: s.status for s in report.steps}


def assert_no_secrets(report: Report, cfg, sb) -> None:
    text = json.dumps(report.to_json()) + json.dumps([dataclasses.asdict(s) for s in report.steps], default=str)
    tokens = [r.headers.get("Authorization", "").partition(" ")[2] for r in sb.requests]
    for secret in set(KNOWN_SECRETS + secrets_of(cfg) + [t for t in tokens if t]):
        assert secret not in text, "a secret or token leaked into the report"


def assert_failure(report, sb, cfg, failed, code, screen):
    s = step(report, failed)
    assert not report.ok
    assert s.status == "fail", s
    assert s.code == code
    assert s.fix and s.summary
    assert s.screen == screen
    ids = [x.id for x in report.steps]
    for later in report.steps[ids.index(failed) + 1:]:
        assert later.status == "skip", later
    for earlier in report.steps[:ids.index(failed)]:
        assert earlier.status in ("pass", "warn"), earlier
    assert_no_secrets(report, cfg, sb)


# -- happy paths -----------------------------------------------------------------

def test_happy_path_client_secret_sends_the_test_message(sandbox):
    cfg = sandbox.config()
    report = check(cfg, send_to=sample.RECIPIENT)
    assert report.ok, [(s.id, s.status, s.code, s.summary) for s in report.steps]
    assert [s.id for s in report.steps] == ["config", "dns", "tcp", "tls", "token", "claims", "mailbox", "send",
                                          "mailbox:orders@contoso.com", "mailbox:invoices@contoso.com"]
    assert set(statuses(report).values()) == {"pass"}
    assert all(s.ms >= 0 for s in report.steps) and step(report, "token").ms > 0
    inbox = sandbox.tenant.mailbox(sample.RECIPIENT).inbox
    assert [m.subject for m in inbox] == ["[mailwizard test] Connection test message"]
    assert inbox[0].sender.lower() == sample.SENDER
    creates = [r for r in sandbox.requests if b"CreateItem" in r.body]
    assert len(creates) == 1 and b'MessageDisposition="SendOnly"' in creates[0].body
    assert_no_secrets(report, cfg, sandbox)


def test_happy_path_password_flow(sandbox):
    # The sample tenant gives svc-erp rights on erp@ only; the incoming
    # mailboxes need them too when they are read with svc-erp's sign-in.
    for address in sample.INCOMING:
        sandbox.tenant.mailbox(address).send_as.add(sample.SERVICE_USER)
    cfg = sandbox.config(flow="password")
    report = check(cfg, send_to=sample.RECIPIENT)
    assert report.ok, [(s.id, s.status, s.code, s.summary) for s in report.steps]
    token = step(report, "token")
    assert "discourages" in token.summary and "note" in token.details   # MSAL's DeprecationWarning, as a note
    assert "DeprecationWarning" not in json.dumps(report.to_json())
    # ROPC does a user-realm discovery without the port: the session puts it back.
    assert any(r.path.startswith(f"/common/userrealm/{sample.SERVICE_USER}") for r in sandbox.requests)
    assert sandbox.tenant.mailbox(sample.RECIPIENT).inbox
    assert_no_secrets(report, cfg, sandbox)


def test_incoming_accounts_are_reported_one_by_one(sandbox):
    cfg = sandbox.config(flow="password")
    sandbox.tenant.mailbox(sample.INCOMING[0]).send_as.discard(sample.SERVICE_USER)  # no rights on the first
    report = check(cfg)
    assert step(report, "mailbox").status == "pass"
    first, second = (step(report, f"mailbox:{a}") for a in sample.INCOMING)
    assert (first.status, first.code, first.screen) == ("fail", "ErrorAccessDenied", "mail")
    assert sample.INCOMING[0] in first.summary and first.fix
    assert second.status == "pass"
    assert_no_secrets(report, cfg, sandbox)


# -- the failures the guides meet --------------------------------------------------

CASES = [
    # id, flow, overrides, failing step, code, screen
    ("wrong secret", "client_secret", {"client_secret": sample.SECRET_VALUE[:-1] + "X"}, "token",
     "AADSTS7000215", "ids"),
    ("expired secret", "client_secret", {"client_secret": sample.EXPIRED_SECRET_VALUE, "secret_expires": None},
     "token", "AADSTS7000222", "ids"),
    ("wrong tenant", "client_secret", {"tenant_id": "0d1e2f3a-0000-4000-8000-000000000001"}, "token",
     "AADSTS90002", "ids"),
    ("unknown client", "client_secret", {"client_id": "0d1e2f3a-0000-4000-8000-000000000002"}, "token",
     "AADSTS700016", "ids"),
    ("consent missing", "client_secret", {"client_id": sample.NO_CONSENT_APP_ID,
                                          "client_secret": sample.NO_CONSENT_SECRET_VALUE,
                                          "secret_expires": None}, "claims", "claims.roles", "registration"),
    ("public client flows off", "password", {"client_id": sample.SECRET_APP_ID}, "token", "AADSTS7000218",
     "registration"),
    ("mfa user", "password", {"username": sample.MFA_USER, "password": sample.MFA_PASSWORD}, "token",
     "AADSTS50076", "ids"),
    ("wrong password", "password", {"password": "Not-the-passw0rd"}, "token", "AADSTS50126", "ids"),
    ("sender without mailbox", "client_secret", {"sender": sample.NO_MAILBOX}, "mailbox",
     "ErrorNonExistentMailbox", "mail"),
]


@pytest.mark.parametrize("flow,overrides,failed,code,screen", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_failure_is_explained(sandbox, flow, overrides, failed, code, screen):
    cfg = sandbox.config(flow=flow, **overrides)
    report = check(cfg, send_to=sample.RECIPIENT)
    assert_failure(report, sandbox, cfg, failed, code, screen)


def test_aadsts_failures_keep_trace_and_correlation_ids(sandbox):
    report = check(sandbox.config(client_secret=sample.SECRET_VALUE[:-1] + "X"))
    details = step(report, "token").details
    assert details.get("trace_id") and details.get("correlation_id")
    assert step(report, "token").guide_step == "Azure steps 20-22"


def test_consent_missing_details(sandbox):
    report = check(sandbox.config(client_id=sample.NO_CONSENT_APP_ID, client_secret=sample.NO_CONSENT_SECRET_VALUE,
                                  secret_expires=None))
    assert step(report, "token").status == "pass"
    claims = step(report, "claims")
    assert "Delegated instead of Application" in claims.summary
    assert claims.guide_step == "Azure steps 13-16"
    assert step(report, "mailbox").status == "skip"
    assert not [r for r in sandbox.requests if r.path.lower().startswith("/ews/")]


def test_secret_id_pasted_fails_before_any_network_request(sandbox):
    sandbox.clear()
    cfg = sandbox.config(client_secret=sample.SECRET_ID)
    report = check(cfg)
    assert_failure(report, sandbox, cfg, "config", "secret.id_pasted", "ids")
    assert "Value" in step(report, "config").fix
    assert step(report, "config").guide_step == "Azure steps 20-22"
    assert sandbox.requests == []


def test_invalid_setting_names_the_field_and_screen(sandbox):
    cfg = sandbox.config(sender="not an address")
    report = check(cfg)
    assert_failure(report, sandbox, cfg, "config", "config.invalid", "mail")
    assert step(report, "config").details["field"] == "outgoing.sender"


def test_secret_expiring_soon_is_a_warning(sandbox):
    cfg = sandbox.config(secret_expires=date.today() + timedelta(days=10))
    report = check(cfg)
    assert report.ok
    config = step(report, "config")
    assert (config.status, config.code, config.screen) == ("warn", "secret.expiring", "ids")


# -- network and TLS -------------------------------------------------------------------

def test_ca_bundle_of_the_config_beats_requests_ca_bundle(sandbox, monkeypatch):
    import certifi
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    report = check(sandbox.config(), send_to=sample.RECIPIENT)
    assert report.ok, [(s.id, s.status, s.code) for s in report.steps]


def test_ca_bundle_from_the_environment_when_the_config_has_none(sandbox, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sandbox.ca_path)
    assert check(sandbox.config(ca_bundle="")).ok


def test_untrusted_certificate(sandbox):
    import certifi
    cfg = sandbox.config(ca_bundle=certifi.where())
    report = check(cfg)
    assert_failure(report, sandbox, cfg, "tls", "tls.untrusted", "target")
    assert "ca_bundle" in step(report, "tls").fix


def test_connection_refused(sandbox):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = sandbox.config(port=port)
    report = check(cfg)
    assert_failure(report, sandbox, cfg, "tcp", "net.refused", "mail")
    assert str(port) in step(report, "tcp").summary


def test_token_endpoint_hangs(sandbox):
    sandbox.inject(Fault(TOKEN, hang=True))
    cfg = sandbox.config()
    report = check(cfg, tuning=T(timeout=(2.0, 0.3), sleep=Sleeps()))
    assert_failure(report, sandbox, cfg, "token", "net.timeout", "target")


def test_html_page_instead_of_json(sandbox):
    sandbox.inject(Fault(OIDC, html=True))
    cfg = sandbox.config()
    report = check(cfg)
    assert_failure(report, sandbox, cfg, "token", "http.html", "target")


def test_identity_platform_5xx_is_retried(sandbox, sleeps):
    sandbox.inject(Fault(TOKEN, status=503, times=1))
    report = check(sandbox.config(), sleeps)
    assert report.ok
    assert sleeps == [1.0]
    assert step(report, "token").details["attempts"] == 2


def test_identity_platform_5xx_retries_are_bounded(sandbox, sleeps):
    sandbox.inject(Fault(TOKEN, status=503, times=None))
    cfg = sandbox.config()
    report = check(cfg, sleeps)
    assert_failure(report, sandbox, cfg, "token", "http.5xx", None)
    assert sleeps == [1.0, 2.0]
    assert len([r for r in sandbox.requests if r.path == TOKEN]) == 3


def test_429_honours_retry_after(sandbox, sleeps):
    sandbox.inject(Fault(TOKEN, status=429, retry_after=7, times=1))
    seen = []
    report = check(sandbox.config(), sleeps, on_step=lambda s: seen.append((s.id, s.status, s.summary)))
    assert report.ok
    assert sleeps == [7.0]
    assert any(i == "token" and "trying again in 7 s" in summary for i, _, summary in seen)


def test_429_retries_are_bounded(sandbox, sleeps):
    sandbox.inject(Fault(TOKEN, status=429, retry_after=4, times=None))
    cfg = sandbox.config()
    report = check(cfg, sleeps)
    assert_failure(report, sandbox, cfg, "token", "http.429", None)
    assert sleeps == [4.0, 4.0]
    assert "4 seconds" in step(report, "token").fix


def test_retry_after_is_capped(sandbox, sleeps):
    sandbox.inject(Fault(TOKEN, status=429, retry_after=3600, times=1))
    assert check(sandbox.config(), sleeps).ok
    assert sleeps == [10.0]


# -- EWS ---------------------------------------------------------------------------------

def test_ews_blocked_by_tenant_policy(sandbox):
    sandbox.tenant.ews_blocked = True
    cfg = sandbox.config()
    report = check(cfg)
    assert_failure(report, sandbox, cfg, "mailbox", "X-EWS-Policy-Reason", "mail")
    fix = step(report, "mailbox").fix
    assert "Get-OrganizationConfig | Select EwsAllowedAppIDs" in fix
    assert f'-EwsAllowedAppIDs @{{Add="{sample.SECRET_APP_ID}"}}' in fix
    assert "2027-04-01" in fix


def test_ews_allowed_app_passes_when_blocked(sandbox):
    sandbox.tenant.ews_blocked = True
    sandbox.tenant.ews_allowed_app_ids.add(sample.SECRET_APP_ID)
    assert check(sandbox.config()).ok


def test_403_after_new_registration_is_retried_within_a_bound(sandbox, sleeps):
    sandbox.tenant.app(sample.SECRET_APP_ID).propagation_delay = 10 ** 6
    seen = []
    cfg = sandbox.config()
    report = check(cfg, on_step=lambda s: seen.append(s.summary) if s.id == "mailbox" else None,
                   tuning=T(sleep=sleeps, propagation_wait=25, propagation_interval=10))
    assert_failure(report, sandbox, cfg, "mailbox", "ews.403", "registration")
    assert sleeps == [10, 10, 5]
    assert step(report, "mailbox").details["waited_s"] == 25
    assert sum("retrying in" in s for s in seen) == 3
    assert "attempt 4 of 4" in seen[-1] or any("attempt 4 of 4" in s for s in seen)


def test_403_once_then_success(sandbox, sleeps):
    sandbox.inject(Fault("/EWS/", status=403, times=1))
    report = check(sandbox.config(), tuning=T(sleep=sleeps, propagation_interval=10))
    assert report.ok
    assert sleeps == [10]


def test_ews_401_with_diagnostics(sandbox):
    sandbox.inject(Fault("/EWS/", status=401, times=None, headers={
        "x-ms-diagnostics": '2000008;reason="The token contains no permissions.";error_category="invalid_grant"'}))
    cfg = sandbox.config()
    report = check(cfg)
    assert_failure(report, sandbox, cfg, "mailbox", "ews.401.2000008", "registration")
    assert len([r for r in sandbox.requests if r.path.lower().startswith("/ews/")]) == 1   # no 401 retry loop


def test_server_busy_waits_once_within_the_bound(sandbox, sleeps):
    sandbox.inject(Fault("/EWS/", ews_error="ErrorServerBusy", retry_after=2, times=1))
    report = check(sandbox.config(), tuning=T(sleep=sleeps, busy_wait=5))
    assert report.ok
    assert sleeps == [2.0]


def test_server_busy_twice_fails(sandbox, sleeps):
    sandbox.inject(Fault("/EWS/", ews_error="ErrorServerBusy", retry_after=30, times=None))
    cfg = sandbox.config()
    report = check(cfg, tuning=T(sleep=sleeps, busy_wait=5))
    assert_failure(report, sandbox, cfg, "mailbox", "ErrorServerBusy", None)
    assert sleeps == [5]


def test_exchangelib_state_is_left_clean(sandbox):
    from exchangelib.protocol import BaseProtocol, CachingProtocol
    from wizard.runtime import ews_client
    before = len(CachingProtocol._protocol_cache)
    assert check(sandbox.config()).ok
    assert len(CachingProtocol._protocol_cache) == before
    assert issubclass(BaseProtocol.HTTP_ADAPTER_CLS, ews_client.TrustingMixin)
    assert ews_client._ROUTES == {}


# -- the contract ------------------------------------------------------------------------

def test_plan(sandbox):
    cfg = sandbox.config()
    assert [s.id for s in plan(cfg)] == ["config", "dns", "tcp", "tls", "token", "claims", "mailbox",
                                         "mailbox:orders@contoso.com", "mailbox:invoices@contoso.com"]
    steps = plan(cfg, send_to=sample.RECIPIENT)
    assert steps[7].id == "send"
    assert all(s.status == "pending" and s.title for s in steps)


def test_on_step_reports_running_then_result(sandbox):
    seen = []
    report = check(sandbox.config(), on_step=lambda s: seen.append((s.id, s.status)))
    for s in report.steps:
        mine = [st for i, st in seen if i == s.id]
        assert mine[0] == "running" and mine[-1] == s.status == "pass"


def test_to_json_has_exactly_the_contract_keys(sandbox):
    data = check(sandbox.config()).to_json()
    assert set(data) == {"ok", "steps"}
    assert all(set(s) == {"id", "status", "ms", "summary", "code", "fix"} for s in data["steps"])
    json.dumps(data)


def test_cancel_before_start_skips_everything(sandbox):
    cancel = threading.Event()
    cancel.set()
    report = check(sandbox.config(), cancel=cancel)
    assert not report.ok
    assert set(statuses(report).values()) == {"skip"}
    assert sandbox.requests == []


def test_cancel_during_the_run(sandbox):
    cancel = threading.Event()
    report = check(sandbox.config(), cancel=cancel,
                   on_step=lambda s: cancel.set() if s.id == "token" and s.status == "pass" else None)
    st = statuses(report)
    assert st["token"] == "pass" and st["claims"] == "skip" and st["mailbox"] == "skip"
    assert "cancelled" in step(report, "claims").summary


def test_imap_smtp_setup_asks_for_imap_and_smtp_scopes(sandbox):
    # Efecte ESM: delegated IMAP + SMTP, one Exchange token for both; mailboxes checked over SMTP and IMAP
    # (tests/test_conntest_protocols.py covers these protocols in depth).
    cfg = sandbox.config(flow="password", system="efecte_esm", protocol="smtp+imap")
    report = check(cfg)
    assert report.ok, [(s.id, s.status, s.code) for s in report.steps]
    assert step(report, "claims").status == "pass"
    assert step(report, "mailbox").status == "pass" and "XOAUTH2" in step(report, "mailbox").summary
    assert step(report, "mailbox:orders@contoso.com").status == "pass"
    body = next(r.body for r in sandbox.requests if r.path == TOKEN).decode()
    assert "SMTP.Send" in body and "IMAP.AccessAsUser.All" in body and "EWS.AccessAsUser.All" not in body


def test_app_only_smtp_needs_its_own_role(sandbox):
    sandbox.tenant.app(sample.SECRET_APP_ID).roles["exchange"].discard("SMTP.SendAsApp")   # the sample has it
    cfg = sandbox.config(protocol="smtp")
    # incoming stays EWS; without a server of its own it would be the cloud's Exchange host
    cfg.incoming.server, cfg.incoming.port = sandbox.host, sandbox.port
    report = check(cfg)
    claims = step(report, "claims")
    assert (claims.status, claims.code) == ("fail", "claims.roles")
    assert "SMTP.SendAsApp" in claims.summary and "full_access_as_app" not in claims.summary


def test_importing_the_engine_stays_light():
    code = ("import sys, wizard.check.engine, wizard.diagnosis.catalogue, wizard.identity.claims; "
            "print(sorted(m for m in ('msal', 'exchangelib', 'textual') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_session_puts_the_port_back_for_the_authority_host(sandbox):
    from wizard.net.session import make_session
    session = make_session(sandbox.config())
    assert session.fix_port("https://127.0.0.1/common/userrealm/x") == f"https://127.0.0.1:{sandbox.port}/common/userrealm/x"
    assert session.fix_port("https://login.example/common") == "https://login.example/common"
    assert session.fix_port("https://127.0.0.1:8443/x") == "https://127.0.0.1:8443/x"


def test_exchange_online_ews_gets_the_retirement_warning(sandbox, monkeypatch):
    from wizard.check import engine as conntest
    monkeypatch.setattr(conntest.model, "EXO_HOSTS", ("127.0.0.1",))
    report = check(sandbox.config())
    mailbox = step(report, "mailbox")
    assert report.ok
    assert (mailbox.status, mailbox.code) == ("warn", "ews.retirement")
    assert "2027-04-01" in mailbox.summary + mailbox.fix
    assert step(report, "mailbox:orders@contoso.com").status == "pass"


def test_incoming_account_with_its_own_sign_in(sandbox):
    cfg = sandbox.config(flow="password")
    cfg.incoming.accounts[0].username = sample.MFA_USER
    cfg.incoming.accounts[0].password = sample.MFA_PASSWORD
    report = check(cfg)
    first = step(report, "mailbox:orders@contoso.com")
    assert (first.status, first.code, first.screen) == ("fail", "AADSTS50076", "ids")
    assert step(report, "mailbox").status == "pass"
    assert_no_secrets(report, cfg, sandbox)


# -- countdowns, discovery cache, bounds from the environment ------------------------------

def test_403_retry_shows_a_countdown_through_on_step(sandbox, sleeps):
    sandbox.tenant.app(sample.SECRET_APP_ID).propagation_delay = 10 ** 6
    seen = []
    report = check(sandbox.config(), on_step=lambda s: seen.append((s.status, s.summary)) if s.id == "mailbox" else None,
                   tuning=Tuning(sleep=sleeps, tick=1, propagation_wait=6, propagation_interval=3))
    waiting = [summary for status, summary in seen if "retrying in" in summary]
    assert all(status == "running" for status, summary in seen if "retrying in" in summary)
    assert [w.split("retrying in ")[1] for w in waiting] == [
        "3 s (attempt 2 of 3).", "2 s (attempt 2 of 3).", "1 s (attempt 2 of 3).",
        "3 s (attempt 3 of 3).", "2 s (attempt 3 of 3).", "1 s (attempt 3 of 3)."]
    assert waiting[0].startswith("EWS answered 403: new app permissions can take minutes to arrive")
    assert sleeps == [1] * 6
    mailbox = step(report, "mailbox")
    assert (mailbox.status, mailbox.code) == ("fail", "ews.403") and "Tried 3 times over 6 s" in mailbox.summary


def test_token_retry_shows_a_countdown(sandbox, sleeps):
    sandbox.inject(Fault(TOKEN, status=429, retry_after=2, times=1))
    seen = []
    report = check(sandbox.config(), on_step=lambda s: seen.append(s.summary) if s.id == "token" else None,
                   tuning=Tuning(sleep=sleeps, tick=1))
    assert report.ok
    assert [s for s in seen if "trying again" in s] == [
        "The identity platform is busy; trying again in 2 s (attempt 2 of 3).",
        "The identity platform is busy; trying again in 1 s (attempt 2 of 3)."]
    assert sleeps == [1, 1]


def test_cancel_stops_the_countdown(sandbox):
    sandbox.tenant.app(sample.SECRET_APP_ID).propagation_delay = 10 ** 6
    cancel = threading.Event()
    ticks = []

    def sleep(seconds):
        ticks.append(seconds)
        if len(ticks) == 2:
            cancel.set()
    report = check(sandbox.config(), cancel=cancel, tuning=Tuning(sleep=sleep, tick=1))
    assert len(ticks) == 2 and not report.ok
    assert step(report, "mailbox").status == "fail"


def test_one_discovery_document_per_run(sandbox, sleeps):
    sandbox.inject(Fault(TOKEN, status=503, times=1))
    cfg = sandbox.config(flow="password")
    for acc in cfg.incoming.accounts:            # each account signs in on its own: two more MSAL apps
        acc.username, acc.password = sample.MFA_USER, sample.MFA_PASSWORD
    report = check(cfg, sleeps)
    assert step(report, "token").status == "pass" and step(report, "token").details["attempts"] == 2
    assert len([r for r in sandbox.requests if r.path == TOKEN]) == 4
    assert len([r for r in sandbox.requests if r.path == OIDC]) == 1


def test_discovery_cache_keeps_only_good_discovery_answers():
    from types import SimpleNamespace as R
    from wizard.identity.signin import DiscoveryCache
    c = DiscoveryCache()
    c["GET https://x/v2.0/.well-known/openid-configuration hash=1 2xx"] = R(
        status_code=200, headers={"content-type": "application/json"})
    c["GET https://x/page hash=1 2xx"] = R(status_code=200, headers={"content-type": "text/html"})
    c["POST https://x/token hash=2 400"] = R(status_code=400, headers={"content-type": "application/json"})
    c["_index_"] = ([], {})
    assert sorted(c) == ["GET https://x/v2.0/.well-known/openid-configuration hash=1 2xx", "_index_"]


def test_tuning_from_the_environment():
    t = Tuning.from_env({"MAILWIZARD_TIMEOUT": "3,7", "MAILWIZARD_MAX_WAIT": "0.5"})
    assert t.timeout == (3.0, 7.0)
    assert (t.auth_max_wait, t.busy_wait, t.propagation_interval, t.propagation_wait) == (0.5, 0.5, 0.5, 2.0)
    assert Tuning.from_env({"MAILWIZARD_TIMEOUT": "4"}).timeout == (4.0, 4.0)
    assert Tuning.from_env({}) == Tuning()
    for bad in ({"MAILWIZARD_TIMEOUT": "0"}, {"MAILWIZARD_TIMEOUT": "nan"}, {"MAILWIZARD_MAX_WAIT": "-2"}, {"MAILWIZARD_MAX_WAIT": "0"},
                {"MAILWIZARD_TIMEOUT": "1,,2"}):
        with pytest.raises(ValueError, match="MAILWIZARD_"):
            Tuning.from_env(bad)
