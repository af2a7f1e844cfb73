"""The connection test (``run_check``, and ``mailwizard check --json``) on
Microsoft Graph, SMTP and IMAP against the sandbox on 127.0.0.1: each protocol
and flow passes end to end, ``send_to`` delivers a message, and each
documented failure lands on the right step with its own code, a fix and the
screen to go back to. No secret or token appears in any output; none is
logged at DEBUG level either (``wizard.net.redact``)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from urllib.parse import parse_qs, unquote

import pytest

from cli_helpers import run as run_cli
from runtime_helpers import grant_all
from sandbox_helpers import record_issued_tokens
from wizard.config import files as config_io
from wizard.net import probes as netcheck
from wizard.config.schema import Config, IncomingAccount, secrets_of
from wizard.check.engine import Report, Step, Tuning, plan, run_check
from wizard.runtime.ews_client import TEST_SUBJECT
from wizard.sandbox import Fault, sample
from wizard.sandbox.tenant import Message

ORDERS, INVOICES = sample.INCOMING
TOKEN = f"/{sample.TENANT_ID}/oauth2/v2.0/token"
KNOWN_SECRETS = [sample.SECRET_VALUE, sample.EXPIRED_SECRET_VALUE, sample.NO_CONSENT_SECRET_VALUE,
                 sample.SERVICE_PASSWORD, sample.MFA_PASSWORD]
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
XOAUTH2_BLOB = "dXNlcj1"            # base64 of "user=": the start of every SASL XOAUTH2 response
STEP_KEYS = {"id", "status", "ms", "summary", "code", "fix"}
CASES = [("graph", "client_secret"), ("graph", "password"), ("smtp+imap", "client_secret"),
         ("smtp+imap", "password")]


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def issued(sandbox, monkeypatch):
    """Every access token the sandbox hands out during the test."""
    return record_issued_tokens(sandbox, monkeypatch)


def cfg_for(sb, protocol, flow="client_secret", **overrides) -> Config:
    grant_all(sb)
    return sb.config(flow=flow, protocol=protocol, **overrides)


def check(cfg, sleeps=None, **kw) -> Report:
    kw.setdefault("tuning", Tuning(sleep=sleeps if sleeps is not None else Sleeps(), tick=3600))
    return run_check(cfg, **kw)


def step(report: Report, step_id: str) -> Step:
    return next(s for s in report.steps if s.id == step_id)


def table(report: Report):
    return [(s.id, s.status, s.code, s.summary) for s in report.steps]


def assert_clean(text: str, cfg, tokens) -> None:
    for secret in {*KNOWN_SECRETS, *secrets_of(cfg), *tokens}:
        assert secret not in text, "a secret, password or token leaked"
    assert not JWT.search(text), "something that looks like an access token leaked"
    assert XOAUTH2_BLOB not in text, "an XOAUTH2 sign-in blob leaked"


def report_text(report: Report) -> str:
    return json.dumps(report.to_json()) + json.dumps([dataclasses.asdict(s) for s in report.steps], default=str)


def assert_failure(report, failed, status, code, screen, cfg, tokens):
    s = step(report, failed)
    assert (s.status, s.code) == (status, code), table(report)
    assert s.fix and s.summary, s
    assert s.screen == screen, s
    if status == "fail":
        assert not report.ok
    assert_clean(report_text(report), cfg, tokens)
    return s


def put_mail(sb, address, n_read, n_unread):
    mb = sb.tenant.mailbox(address)
    for i in range(n_read + n_unread):
        mb.inbox.append(Message(id=f"AAMkTest{address}{i}", sender=sample.RECIPIENT, to=[address],
                                subject=f"Order {i}", body="hello", received="2026-11-20T10:00:00Z",
                                is_read=i < n_read))


# -- happy paths: every protocol and flow --------------------------------------------------

@pytest.mark.parametrize("protocol,flow", CASES)
def test_every_protocol_and_flow_passes(sandbox, issued, protocol, flow):
    cfg = cfg_for(sandbox, protocol, flow)
    put_mail(sandbox, ORDERS, 2, 3)
    report = check(cfg)
    assert report.ok, table(report)
    assert [s.id for s in report.steps] == ["config", "dns", "tcp", "tls", "token", "claims", "mailbox",
                                            f"mailbox:{ORDERS}", f"mailbox:{INVOICES}"]
    assert all(s.status == "pass" for s in report.steps), table(report)
    orders = step(report, f"mailbox:{ORDERS}")
    assert (orders.details["total"], orders.details["unread"]) == (5, 3)
    service = "Microsoft Graph" if protocol == "graph" else "IMAP"
    assert f"over {service}: 5 messages, 3 unread" in orders.summary
    # one sign-in: Exchange (SMTP + IMAP) or Graph share one token for both directions
    assert len([r for r in sandbox.requests if r.path == TOKEN]) == 1
    assert len(issued) == 1
    assert_clean(report_text(report), cfg, issued)


def test_graph_mailbox_is_one_inbox_request_per_mailbox(sandbox, issued):
    cfg = cfg_for(sandbox, "graph")
    put_mail(sandbox, sample.SENDER, 1, 1)
    report = check(cfg)
    mailbox = step(report, "mailbox")
    assert (mailbox.status, mailbox.details["total"], mailbox.details["unread"]) == ("pass", 2, 1)
    graph = [unquote(r.path) for r in sandbox.requests if r.path.startswith("/v1.0/")]
    assert [p.split("?")[0] for p in graph] == [f"/v1.0/users/{a}/mailFolders/inbox"
                                                for a in (sample.SENDER, ORDERS, INVOICES)]
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in sandbox.requests
               if r.path.startswith("/v1.0/"))


def test_smtp_mailbox_signs_in_as_the_sender_without_sending(sandbox, issued):
    cfg = cfg_for(sandbox, "smtp+imap")
    sent_before = sum(len(m.inbox) for m in sandbox.tenant.mailboxes)
    report = check(cfg)
    mailbox = step(report, "mailbox")
    assert mailbox.status == "pass" and mailbox.title == "Sign in to the SMTP server as the sender"
    assert f"as {sample.SENDER}" in mailbox.summary and "XOAUTH2" in mailbox.summary
    assert sum(len(m.inbox) for m in sandbox.tenant.mailboxes) == sent_before
    assert "send" not in [s.id for s in report.steps]


def test_delegated_smtp_says_send_as_is_checked_only_by_sending(sandbox, issued):
    cfg = cfg_for(sandbox, "smtp+imap", "password", system="efecte_esm")
    report = check(cfg)
    mailbox = step(report, "mailbox")
    assert mailbox.status == "pass"
    assert f"as {sample.SERVICE_USER}" in mailbox.summary and "Send As" in mailbox.summary
    body = next(r.body for r in sandbox.requests if r.path == TOKEN).decode()
    assert "SMTP.Send" in body and "IMAP.AccessAsUser.All" in body and "EWS.AccessAsUser.All" not in body


def test_delegated_graph_asks_for_the_runtime_scopes(sandbox, issued):
    cfg = cfg_for(sandbox, "graph", "password")
    assert check(cfg).ok
    body = next(r.body for r in sandbox.requests if r.path == TOKEN).decode()
    scopes = {s.rpartition("/")[2] for s in parse_qs(body)["scope"][0].split()}
    assert {"Mail.Send", "Mail.Send.Shared", "Mail.ReadWrite", "Mail.ReadWrite.Shared"} <= scopes, scopes


def test_outgoing_and_incoming_on_different_apis_get_a_token_each(sandbox, issued):
    cfg = cfg_for(sandbox, "graph+imap")          # Graph out, IMAP in
    assert (cfg.outgoing.protocol, cfg.incoming.protocol) == ("graph", "imap")
    report = check(cfg)
    assert report.ok, table(report)
    token = step(report, "token")
    assert "Microsoft Graph and Office 365 Exchange Online" in token.summary
    assert token.details["apis"] == ["graph", "exchange"]
    claims = step(report, "claims")
    assert "graph.microsoft.com" in claims.summary and "outlook.office365.com" in claims.summary
    assert len(issued) == 2
    assert "over IMAP" in step(report, f"mailbox:{ORDERS}").summary
    assert "over Microsoft Graph" in step(report, "mailbox").summary


@pytest.mark.parametrize("protocol,flow,services", [
    ("smtp", "client_secret", ("SMTP", "EWS")), ("smtp", "password", ("SMTP", "EWS")),
    ("imap", "client_secret", ("EWS", "IMAP")), ("imap", "password", ("EWS", "IMAP")),
    ("graph+smtp", "client_secret", ("SMTP", "Microsoft Graph")),
])
def test_one_new_protocol_beside_another(sandbox, issued, protocol, flow, services):
    cfg = cfg_for(sandbox, protocol, flow)
    if cfg.incoming.protocol == "ews":      # incoming EWS on the sandbox's own port
        cfg.incoming.server, cfg.incoming.port = sandbox.host, sandbox.port
    report = check(cfg, send_to=sample.RECIPIENT)
    assert report.ok, table(report)
    assert all(s.status == "pass" for s in report.steps), table(report)
    out, inc = services
    mailbox, orders = step(report, "mailbox"), step(report, f"mailbox:{ORDERS}")
    assert ("XOAUTH2" in mailbox.summary) if out == "SMTP" else (f"over {out}" in mailbox.summary or out == "EWS")
    assert f"over {inc}" in orders.summary or inc == "EWS"
    assert_clean(report_text(report), cfg, issued)


def test_graph_401_is_explained(sandbox, issued):
    cfg = cfg_for(sandbox, "graph")
    sandbox.inject(Fault("/v1.0/users/", status=401, times=None))
    s = assert_failure(check(cfg), "mailbox", "fail", "UnknownError", "registration", cfg, issued)
    assert "401" in s.summary and s.code == "UnknownError"      # the service's own code, not ours


def test_incoming_token_is_checked_for_its_own_api(sandbox, issued):
    cfg = cfg_for(sandbox, "graph+imap")
    sandbox.tenant.app(sample.SECRET_APP_ID).roles["exchange"].discard("IMAP.AccessAsApp")
    report = check(cfg)
    claims = assert_failure(report, "claims", "fail", "claims.roles", "registration", cfg, issued)
    assert "IMAP.AccessAsApp" in claims.summary and "Office 365 Exchange Online" in claims.fix


# -- send_to ---------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol,flow", CASES)
def test_send_to_delivers_a_marked_message(sandbox, issued, protocol, flow):
    cfg = cfg_for(sandbox, protocol, flow)
    report = check(cfg, send_to=sample.RECIPIENT)
    assert report.ok, table(report)
    send = step(report, "send")
    assert send.status == "pass" and sample.RECIPIENT in send.summary
    got = [m for m in sandbox.tenant.mailbox(sample.RECIPIENT).inbox if m.subject == TEST_SUBJECT]
    assert len(got) == 1
    assert got[0].sender.lower() == sample.SENDER
    assert "mailwizard" in got[0].body and cfg.microsoft.client_id in got[0].body
    assert_clean(report_text(report), cfg, issued)


# -- documented failures ------------------------------------------------------------------------

@pytest.mark.parametrize("flow,whose", [("client_secret", sample.SENDER), ("password", sample.SERVICE_USER)])
def test_smtp_auth_disabled_for_the_mailbox_is_535_5_7_139(sandbox, issued, flow, whose):
    cfg = cfg_for(sandbox, "smtp+imap", flow)
    sandbox.tenant.mailbox(whose).smtp_auth_disabled = True
    report = check(cfg)
    s = assert_failure(report, "mailbox", "fail", "535 5.7.139", "mail", cfg, issued)
    assert f"Set-CASMailbox -Identity {whose} -SmtpClientAuthenticationDisabled $false" in s.fix
    assert all(step(report, f"mailbox:{a}").status == "skip" for a in sample.INCOMING)


def test_smtp_auth_disabled_for_the_tenant_is_535_5_7_139(sandbox, issued):
    cfg = cfg_for(sandbox, "smtp+imap")
    sandbox.tenant.smtp_auth_disabled = True
    s = assert_failure(check(cfg), "mailbox", "fail", "535 5.7.139", "mail", cfg, issued)
    assert "Get-TransportConfig" in s.fix


def test_smtp_without_service_principal_is_535_5_7_3(sandbox, issued):
    cfg = cfg_for(sandbox, "smtp+imap")
    sandbox.tenant.app(sample.SECRET_APP_ID).exchange_service_principal = False
    report = check(cfg)
    s = assert_failure(report, "mailbox", "fail", "535 5.7.3", "registration", cfg, issued)
    assert "New-ServicePrincipal" in s.fix and cfg.microsoft.client_id in s.fix
    assert step(report, "claims").status == "pass"      # the token is right; Exchange does not know the app


def test_smtp_send_as_denied_is_554_5_2_252_on_the_send_step(sandbox, issued):
    cfg = cfg_for(sandbox, "smtp+imap", "password")
    sandbox.tenant.mailbox(sample.SENDER).send_as.clear()
    report = check(cfg, send_to=sample.RECIPIENT)
    assert step(report, "mailbox").status == "pass"      # signing in works; sending as the sender does not
    s = assert_failure(report, "send", "fail", "554 5.2.252", "mail", cfg, issued)
    assert "Send As" in s.fix and sample.SENDER in s.fix
    assert not [m for m in sandbox.tenant.mailbox(sample.RECIPIENT).inbox if m.subject == TEST_SUBJECT]


@pytest.mark.parametrize("flow", ["client_secret", "password"])
def test_imap_disabled_is_authenticate_failed_for_that_account_only(sandbox, issued, flow):
    cfg = cfg_for(sandbox, "smtp+imap", flow)
    sandbox.tenant.mailbox(ORDERS).imap_disabled = True
    report = check(cfg)
    s = assert_failure(report, f"mailbox:{ORDERS}", "fail", "IMAP AUTHENTICATE failed", "registration", cfg,
                       issued)
    assert f"Set-CASMailbox -Identity {ORDERS} -ImapEnabled $true" in s.fix
    assert step(report, f"mailbox:{INVOICES}").status == "pass"       # one account's failure is its own
    assert step(report, "mailbox").status == "pass"


def test_imap_without_mailbox_rights_is_authenticate_failed(sandbox, issued):
    cfg = cfg_for(sandbox, "smtp+imap")
    sandbox.tenant.mailbox(INVOICES).full_access.discard(sample.SECRET_APP_ID)
    s = assert_failure(check(cfg), f"mailbox:{INVOICES}", "fail", "IMAP AUTHENTICATE failed", "registration",
                       cfg, issued)
    assert "Add-MailboxPermission" in s.fix


def test_graph_role_missing_fails_on_claims_before_any_mailbox_call(sandbox, issued):
    cfg = cfg_for(sandbox, "graph")
    sandbox.tenant.app(sample.SECRET_APP_ID).roles["graph"].discard("Mail.Send")
    report = check(cfg)
    s = assert_failure(report, "claims", "fail", "claims.roles", "registration", cfg, issued)
    assert "Mail.Send" in s.summary and "Microsoft Graph" in s.fix and "Application" in s.fix
    assert not [r for r in sandbox.requests if r.path.startswith("/v1.0/")]


def test_graph_mail_read_without_readwrite_fails_and_says_why(sandbox, issued):
    cfg = cfg_for(sandbox, "graph")
    sandbox.tenant.app(sample.SECRET_APP_ID).roles["graph"] = {"Mail.Send", "Mail.Read"}
    s = assert_failure(check(cfg), "claims", "fail", "claims.readwrite", "registration", cfg, issued)
    assert "Mail.ReadWrite" in s.fix and "Application" in s.fix and "Processed" in s.summary


def test_graph_403_access_denied_on_the_mailbox(sandbox, issued):
    cfg = cfg_for(sandbox, "graph")
    sandbox.tenant.mailbox(sample.SENDER).scoped_out_apps.add(sample.SECRET_APP_ID)
    report = check(cfg)
    s = assert_failure(report, "mailbox", "fail", "ErrorAccessDenied", "registration", cfg, issued)
    assert "Mail.Send" in s.fix and sample.SENDER in s.summary
    assert "403" in s.details["service_message"]


def test_graph_404_user_without_mailbox(sandbox, issued):
    cfg = cfg_for(sandbox, "graph", sender=sample.MFA_USER)       # a user with no mailbox
    s = assert_failure(check(cfg), "mailbox", "fail", "MailboxNotEnabledForRESTAPI", "mail", cfg, issued)
    assert sample.MFA_USER in s.summary
    assert s.details["field"] == "outgoing.sender"         # where the wizard's "go back" lands


def test_graph_404_unknown_user_on_an_incoming_account(sandbox, issued):
    cfg = cfg_for(sandbox, "graph")
    cfg.incoming.accounts.append(IncomingAccount(address=sample.NO_MAILBOX))
    report = check(cfg)
    s = assert_failure(report, f"mailbox:{sample.NO_MAILBOX}", "fail", "ErrorInvalidUser", "mail", cfg, issued)
    assert sample.NO_MAILBOX in s.summary
    assert step(report, f"mailbox:{ORDERS}").status == "pass"


def test_graph_429_waits_retry_after_then_passes(sandbox, issued):
    cfg = cfg_for(sandbox, "graph")
    sandbox.inject(Fault("/v1.0/users/", status=429, retry_after=3, times=1))
    sleeps = Sleeps()
    report = check(cfg, sleeps)
    assert report.ok, table(report)
    assert sleeps == [3]


def test_graph_429_that_persists_fails_bounded(sandbox, issued):
    cfg = cfg_for(sandbox, "graph")
    sandbox.inject(Fault("/v1.0/users/", status=429, retry_after=120, times=None))
    sleeps = Sleeps()
    report = check(cfg, sleeps, tuning=Tuning(sleep=sleeps, tick=3600, busy_wait=2.0))
    s = assert_failure(report, "mailbox", "fail", "http.429", None, cfg, issued)
    assert sleeps == [2.0]                  # Retry-After capped by the tuning, one retry only
    assert "Wait" in s.fix


def test_graph_delegated_user_without_rights_on_the_sender(sandbox, issued):
    cfg = cfg_for(sandbox, "graph", "password")
    sandbox.tenant.mailbox(sample.SENDER).send_as.clear()
    sandbox.tenant.mailbox(sample.SENDER).full_access.discard(sample.SERVICE_USER)
    report = check(cfg, send_to=sample.RECIPIENT)
    s = assert_failure(report, "mailbox", "fail", "ErrorAccessDenied", "registration", cfg, issued)
    assert sample.SENDER in s.summary and s.fix


# -- the network steps target the hosts the protocols use -------------------------------------------

def test_network_targets_per_protocol_for_exchange_online():
    cfg = Config()
    cfg.incoming.accounts = [IncomingAccount(address="orders@contoso.com")]
    cfg.outgoing.protocol, cfg.incoming.protocol = "smtp", "imap"
    cfg.outgoing.server, cfg.outgoing.port = "smtp.office365.com", 587
    assert netcheck.targets(cfg) == [("login", "login.microsoftonline.com", 443),
                                     ("smtp", "smtp.office365.com", 587), ("imap", "outlook.office365.com", 993)]
    cfg.outgoing.port = 443                                   # 443 in the form means "not set" for SMTP
    assert ("smtp", "smtp.office365.com", 587) in netcheck.targets(cfg)
    cfg.outgoing.protocol = cfg.incoming.protocol = "graph"
    assert netcheck.targets(cfg) == [("login", "login.microsoftonline.com", 443),
                                     ("graph", "graph.microsoft.com", 443)]
    cfg.outgoing.protocol, cfg.outgoing.server, cfg.outgoing.port = "ews", "outlook.office365.com", 443
    assert netcheck.targets(cfg) == [("login", "login.microsoftonline.com", 443),
                                     ("ews", "outlook.office365.com", 443), ("graph", "graph.microsoft.com", 443)]
    cfg.microsoft.cloud = "usgov"
    assert ("graph", "graph.microsoft.us", 443) in netcheck.targets(cfg)


def test_tls_step_does_starttls_on_smtp_and_implicit_tls_on_imap(sandbox, issued):
    cfg = cfg_for(sandbox, "smtp+imap")
    report = check(cfg)
    tls = step(report, "tls")
    assert tls.status == "pass"
    assert f"127.0.0.1:{sandbox.smtp_port} (SMTP after STARTTLS" in tls.summary
    assert f"127.0.0.1:{sandbox.imap_port} (IMAP, TLS" in tls.summary
    tcp = step(report, "tcp")
    assert f"127.0.0.1:{sandbox.smtp_port} (SMTP)" in tcp.summary
    assert f"127.0.0.1:{sandbox.imap_port} (IMAP)" in tcp.summary


def test_smtp_and_imap_are_checked_without_the_proxy(sandbox, monkeypatch):
    # smtplib / imaplib in the runtime never use HTTPS_PROXY: neither does the test for them.
    cfg = cfg_for(sandbox, "smtp+imap")
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("NO_PROXY", "")
    assert netcheck.proxy_for("127.0.0.1") == ("127.0.0.1", dead)
    for port in (sandbox.smtp_port, sandbox.imap_port):
        assert netcheck.connect(cfg, "127.0.0.1", port, (2, 2), direct=True) is None
    assert netcheck.handshake(cfg, "127.0.0.1", sandbox.smtp_port, (2, 2), starttls=True, direct=True)["starttls"]
    assert netcheck.handshake(cfg, "127.0.0.1", sandbox.imap_port, (2, 2), direct=True)["version"].startswith("TLS")


def test_smtp_starttls_verifies_the_certificate(sandbox, issued):
    import certifi      # public CAs only: the sandbox's throwaway CA is not among them
    cfg = cfg_for(sandbox, "smtp+imap", ca_bundle=certifi.where())
    with pytest.raises(Exception) as exc:
        netcheck.handshake(cfg, "127.0.0.1", sandbox.smtp_port, (2, 2), starttls=True, direct=True)
    assert "certificate verify failed" in str(exc.value).lower()
    report = check(cfg)
    assert_failure(report, "tls", "fail", "tls.untrusted", "target", cfg, issued)


# -- mailwizard check --json ---------------------------------------------------------------------------


@pytest.fixture
def small_bounds(monkeypatch):
    monkeypatch.setenv("MAILWIZARD_TIMEOUT", "2,2")
    monkeypatch.setenv("MAILWIZARD_MAX_WAIT", "0.02")


def assert_shape(data):
    assert isinstance(data, dict) and set(data) == {"ok", "steps"}
    assert isinstance(data["ok"], bool) and isinstance(data["steps"], list) and data["steps"]
    for s in data["steps"]:
        assert set(s) == STEP_KEYS, s
        assert isinstance(s["id"], str) and isinstance(s["summary"], str)
        assert isinstance(s["ms"], (int, float)) and not isinstance(s["ms"], bool) and s["ms"] >= 0
        assert s["status"] in ("pass", "warn", "fail", "skip")
        assert s["code"] is None or isinstance(s["code"], str)
        assert s["fix"] is None or isinstance(s["fix"], str)


@pytest.mark.parametrize("protocol,flow", CASES)
def test_check_json_on_each_protocol(sandbox, issued, capsys, tmp_path, small_bounds, protocol, flow):
    cfg = cfg_for(sandbox, protocol, flow)
    path = str(config_io.save(cfg, tmp_path / "mw.toml"))
    rc, out, err = run_cli(capsys, "check", "--json", "--config", path, "--send-to", sample.RECIPIENT)
    data = json.loads(out)
    assert_shape(data)
    assert rc == 0 and data["ok"], data
    assert [s["id"] for s in data["steps"]] == [s.id for s in plan(cfg, send_to=sample.RECIPIENT)]
    assert all(s["status"] == "pass" for s in data["steps"])
    assert_clean(out + err, cfg, issued)


@pytest.mark.parametrize("breakage,failed,code", [
    (lambda sb: setattr(sb.tenant.mailbox(sample.SENDER), "smtp_auth_disabled", True), "mailbox", "535 5.7.139"),
    (lambda sb: setattr(sb.tenant.app(sample.SECRET_APP_ID), "exchange_service_principal", False), "mailbox",
     "535 5.7.3"),
    (lambda sb: setattr(sb.tenant.mailbox(ORDERS), "imap_disabled", True), f"mailbox:{ORDERS}",
     "IMAP AUTHENTICATE failed"),
])
def test_check_json_failures_on_smtp_imap(sandbox, issued, capsys, tmp_path, small_bounds, breakage, failed, code):
    cfg = cfg_for(sandbox, "smtp+imap")
    breakage(sandbox)
    path = str(config_io.save(cfg, tmp_path / "mw.toml"))
    rc, out, err = run_cli(capsys, "check", "--json", "--config", path)
    data = json.loads(out)
    assert_shape(data)
    assert rc == 1 and not data["ok"]
    s = next(x for x in data["steps"] if x["id"] == failed)
    assert (s["status"], s["code"]) == ("fail", code) and s["fix"]
    assert_clean(out + err, cfg, issued)


def test_check_json_graph_403(sandbox, issued, capsys, tmp_path, small_bounds):
    cfg = cfg_for(sandbox, "graph")
    sandbox.tenant.mailbox(sample.SENDER).scoped_out_apps.add(sample.SECRET_APP_ID)
    path = str(config_io.save(cfg, tmp_path / "mw.toml"))
    rc, out, err = run_cli(capsys, "check", "--json", "--config", path)
    data = json.loads(out)
    assert_shape(data)
    s = next(x for x in data["steps"] if x["id"] == "mailbox")
    assert rc == 1 and (s["status"], s["code"]) == ("fail", "ErrorAccessDenied") and s["fix"]
    assert_clean(out + err, cfg, issued)


def test_check_text_output_on_smtp_imap(sandbox, issued, capsys, tmp_path, small_bounds):
    cfg = cfg_for(sandbox, "smtp+imap", "password")
    sandbox.tenant.mailbox(INVOICES).imap_disabled = True
    path = str(config_io.save(cfg, tmp_path / "mw.toml"))
    rc, out, err = run_cli(capsys, "check", "--config", path)
    assert rc == 1
    assert "IMAP AUTHENTICATE failed" in out and "-ImapEnabled $true" in out
    assert_clean(out + err, cfg, issued)


# -- no token in the logs at DEBUG level ---------------------------------------------------------------

def logged_text(caplog) -> str:
    fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(fmt.format(r) for r in caplog.records) + caplog.text


@pytest.mark.parametrize("protocol,flow", [("ews", "client_secret"), ("ews", "password"), ("graph", "client_secret"),
                                           ("smtp+imap", "password")])
def test_a_check_logs_no_token_or_secret_at_debug(sandbox, issued, caplog, protocol, flow):
    cfg = cfg_for(sandbox, protocol, flow)
    caplog.set_level(logging.DEBUG)
    report = check(cfg, send_to=sample.RECIPIENT)
    assert report.ok, table(report)
    text = logged_text(caplog)
    assert_clean(text, cfg, issued)
    if protocol == "ews":
        # requests_oauthlib did log the token dict and the Authorization header: masked
        oauth = [r for r in caplog.records if r.name.startswith("requests_oauthlib")]
        assert oauth and any("********" in r.getMessage() for r in oauth)


@pytest.mark.parametrize("protocol", ["ews", "graph", "smtp+imap"])
def test_a_runtime_send_logs_no_token_or_secret_at_debug(sandbox, issued, caplog, tmp_path, protocol):
    from runtime_helpers import FakeClock
    from wizard.runtime import Mailer
    cfg = cfg_for(sandbox, protocol, "client_secret")
    clock = FakeClock()
    caplog.set_level(logging.DEBUG)
    with Mailer(cfg, clock=clock, sleep=clock.sleep, token_cache=tmp_path / "tokens.json") as mailer:
        mailer.send(sample.RECIPIENT, "Invoice 1001", "See attached.")
        if protocol != "ews":
            mailer.fetch(ORDERS)
    assert [m for m in sandbox.tenant.mailbox(sample.RECIPIENT).inbox if m.subject == "Invoice 1001"]
    assert_clean(logged_text(caplog), cfg, issued)


def test_redact_masks_what_the_libraries_log():
    from wizard.net.redact import redact
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwcyJ9.c2lnbmF0dXJlLXBhcnQ"
    samples = [
        f"Adding token {{'access_token': '{jwt}', 'token_type': 'Bearer'}} to request.",
        f"Supplying headers {{'Authorization': 'Bearer {jwt}'}} and data None",
        "Authorization: Bearer opaque-token-value-123456",
        f"grant_type=password&username=u&password={sample.SERVICE_PASSWORD}&client_secret={sample.SECRET_VALUE}",
        '{"refresh_token": "0.AAAArefresh-token-value"}',
    ]
    for text in samples:
        out = redact(text)
        for secret in (jwt, "opaque-token-value-123456", sample.SERVICE_PASSWORD, sample.SECRET_VALUE,
                       "0.AAAArefresh-token-value"):
            assert secret not in out, (text, out)
        assert "********" in out
    assert redact("password flow, token valid for 59 min") == "password flow, token valid for 59 min"


def test_child_loggers_are_covered(caplog):
    from wizard.net import redact
    child = logging.getLogger("requests_oauthlib.some.new_module")
    redact.install()
    caplog.set_level(logging.DEBUG)
    child.debug("Adding token %s to request.", {"access_token": "eyJabcdefgh.eyJabcdefgh.sig"})
    assert "eyJabcdefgh" not in caplog.text and "********" in caplog.text


# -- the names the runtime shares ---------------------------------------------------------------------

def test_ews_client_shares_public_names_with_the_runtime():
    from wizard.runtime import ews_client
    from wizard.runtime import ews as runtime_ews
    assert ews_client._route is ews_client.route
    assert ews_client._credentials_cls is ews_client.credentials_cls
    assert ews_client._forget is ews_client.forget
    source = open(runtime_ews.__file__, encoding="utf-8").read()
    assert "ews_client import _" not in source
