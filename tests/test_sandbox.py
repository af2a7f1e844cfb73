"""Behaviour of the embedded sandbox tenant: identity platform, EWS, faults."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import msal
import pytest
import requests
from cryptography import x509
from requests.adapters import HTTPAdapter

from sandbox_helpers import app_token, token_request
from wizard.sandbox import Fault, Sandbox, sample, sample_tenant
from wizard.sandbox.ca import material
from wizard.sandbox.tenant import User

EXCHANGE = "https://outlook.office365.com"
GRAPH = "https://graph.microsoft.com"
EWS_SCOPE = f"{EXCHANGE}/EWS.AccessAsUser.All"
ERROR_KEYS = {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}


# -- helpers ---------------------------------------------------------------------------

def ca_adapter(ca_path: str) -> type[HTTPAdapter]:
    """An HTTPAdapter class that always verifies against the sandbox CA (whatever the env says)."""

    class SandboxCA(HTTPAdapter):
        def cert_verify(self, conn, url, verify, cert):
            return super().cert_verify(conn, url, ca_path, cert)

        def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
            return super().get_connection_with_tls_context(request, ca_path, proxies=proxies, cert=cert)

    return SandboxCA


def session(sb: Sandbox, timeout: float = 5) -> requests.Session:
    """A session that trusts the sandbox CA, puts back the port MSAL's user realm URL drops,
    and applies a timeout (MSAL ignores its own ``timeout`` when given an http_client)."""

    class S(requests.Session):
        def request(self, method, url, *args, **kwargs):
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url.replace("https://127.0.0.1/", sb.base_url + "/"), *args, **kwargs)

    s = S()
    s.verify = sb.ca_path
    s.mount("https://", ca_adapter(sb.ca_path)())
    return s


def user_token(sb: Sandbox, username=sample.SERVICE_USER, password=sample.SERVICE_PASSWORD,
               client_id=sample.PASSWORD_APP_ID, scope=EWS_SCOPE) -> requests.Response:
    return token_request(sb, grant_type="password", client_id=client_id, username=username, password=password,
                         scope=f"{scope} openid profile offline_access")


def claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def aadsts(resp: requests.Response) -> int:
    body = resp.json()
    assert ERROR_KEYS <= set(body), body
    code = body["error_codes"][0]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert body["error_uri"].endswith(f"?code={code}")
    return code


def confidential(sb, client_id=sample.SECRET_APP_ID, secret=sample.SECRET_VALUE, tenant=sample.TENANT_ID):
    return msal.ConfidentialClientApplication(client_id, client_credential=secret,
                                              authority=f"{sb.base_url}/{tenant}",
                                              instance_discovery=False, http_client=session(sb))


@pytest.fixture
def ews(monkeypatch):
    """exchangelib wired to a sandbox: returns account(sb, address, token, delegate=False)."""
    from exchangelib import (DELEGATE, IMPERSONATION, Account, Build, Configuration, FailFast,
                             OAuth2AuthorizationCodeCredentials, Version)
    from exchangelib.protocol import BaseProtocol

    def account(sb, address, token, delegate=False):
        monkeypatch.setattr(BaseProtocol, "HTTP_ADAPTER_CLS", ca_adapter(sb.ca_path))
        monkeypatch.setattr(BaseProtocol, "TIMEOUT", 5)
        config = Configuration(
            service_endpoint=f"{sb.base_url}/EWS/Exchange.asmx",
            credentials=OAuth2AuthorizationCodeCredentials(access_token={"access_token": token,
                                                                         "token_type": "Bearer"}),
            version=Version(build=Build(15, 20)), retry_policy=FailFast())
        return Account(primary_smtp_address=address, config=config, autodiscover=False,
                       access_type=DELEGATE if delegate else IMPERSONATION)

    return account


def soap_get_inbox(sb, token, anchor=sample.SENDER, **headers) -> requests.Response:
    body = (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            f'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
            f'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header>'
            f'<t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID>'
            f'<t:PrimarySmtpAddress>{anchor}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>'
            f'</s:Header><s:Body><m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>'
            f'<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></s:Body></s:Envelope>')
    h = {"Content-Type": "text/xml; charset=utf-8", "Authorization": f"Bearer {token}"}
    if anchor:
        h["X-AnchorMailbox"] = anchor
    h.update(headers)
    return requests.post(f"{sb.base_url}/EWS/Exchange.asmx", data=body, headers=h, verify=sb.ca_path, timeout=5)


# -- TLS and lifecycle -------------------------------------------------------------------

def test_ca_material_is_cached_and_names_localhost():
    m = material()
    assert material() is m
    cert = x509.load_pem_x509_certificate(Path(m.cert_path).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]


def test_untrusted_without_the_sandbox_ca(sandbox):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{sandbox.base_url}/{sample.TENANT_ID}/v2.0/.well-known/openid-configuration", timeout=5)
    r = requests.get(f"{sandbox.base_url}/{sample.TENANT_ID}/v2.0/.well-known/openid-configuration",
                     verify=sandbox.ca_path, timeout=5)
    assert r.status_code == 200


def test_start_stop_many_times_quickly():
    t0 = time.perf_counter()
    for _ in range(5):
        with Sandbox() as sb:
            assert sb.host == "127.0.0.1" and sb.port > 0 and sb.base_url == f"https://127.0.0.1:{sb.port}"
            assert requests.get(f"{sb.base_url}/common/userrealm/a@contoso.com?api-version=1.0",
                                verify=sb.ca_path, timeout=5).status_code == 200
    assert time.perf_counter() - t0 < 3


def test_requests_are_recorded_and_cleared(sandbox):
    token_request(sandbox, grant_type="client_credentials", client_id=sample.SECRET_APP_ID,
                  client_secret="wrong", scope=f"{EXCHANGE}/.default")
    [rec] = sandbox.requests
    assert (rec.method, rec.path, rec.status) == ("POST", f"/{sample.TENANT_ID}/oauth2/v2.0/token", 401)
    assert rec.headers["content-type"] == "application/x-www-form-urlencoded"
    assert b"grant_type=client_credentials" in rec.body
    sandbox.clear()
    assert sandbox.requests == []


def test_config_points_at_the_sandbox(sandbox):
    cfg = sandbox.config()
    assert cfg.endpoints.authority == sandbox.base_url and cfg.endpoints.ca_bundle == sandbox.ca_path
    assert (cfg.outgoing.server, cfg.outgoing.port) == ("127.0.0.1", sandbox.port)
    assert cfg.outgoing.ews_url == f"{sandbox.base_url}/EWS/Exchange.asmx"
    assert (cfg.microsoft.tenant_id, cfg.microsoft.client_id) == (sample.TENANT_ID, sample.SECRET_APP_ID)
    assert cfg.auth.client_secret == sample.SECRET_VALUE and cfg.auth.flow == "client_secret"
    assert cfg.outgoing.sender == sample.SENDER and cfg.outgoing.test_recipient == sample.RECIPIENT
    assert [a.address for a in cfg.incoming.accounts] == sample.INCOMING
    assert cfg.authority_url == f"{sandbox.base_url}/{sample.TENANT_ID}"

    pw = sandbox.config(flow="password", sender=sample.SERVICE_USER, client_secret="x")
    assert (pw.microsoft.client_id, pw.auth.username, pw.auth.password) == \
        (sample.PASSWORD_APP_ID, sample.SERVICE_USER, sample.SERVICE_PASSWORD)
    assert pw.outgoing.sender == sample.SERVICE_USER and pw.auth.client_secret == "x"
    with pytest.raises(TypeError):
        sandbox.config(no_such_field=1)


def test_config_validates_clean(sandbox):
    from wizard.config.schema import validate
    assert [p for p in validate(sandbox.config()) if not p.warning] == []
    assert [p for p in validate(sandbox.config(flow="password")) if not p.warning] == []


def test_config_for_the_certificate_and_device_code_flows():
    from wizard.identity.certificates import certificate_info
    from wizard.config.schema import validate
    with Sandbox() as sb:
        cfg = sb.config(flow="certificate", protocol="graph")
        key = Path(cfg.auth.certificate)
        assert (cfg.auth.flow, cfg.microsoft.client_id, cfg.auth.client_secret) == \
            ("certificate", sample.SECRET_APP_ID, "")
        assert cfg.outgoing.protocol == "graph" and key.is_file() and key.stat().st_mode & 0o077 == 0
        assert cfg.auth.thumbprint == certificate_info(key).thumbprint
        assert [p for p in validate(cfg) if not p.warning] == []
        app = sb.tenant.app(sample.SECRET_APP_ID)
        assert [c.thumbprint for c in app.certificates] == [cfg.auth.thumbprint]
        again = sb.config(flow="certificate", sender=sample.RECIPIENT)       # same key, uploaded once
        assert again.auth.certificate == str(key) and again.outgoing.sender == sample.RECIPIENT
        assert len(app.certificates) == 1
        sb.reset()                                                          # the tenant forgets the upload
        assert sb.config(flow="certificate").auth.certificate == str(key)
        assert len(sb.tenant.app(sample.SECRET_APP_ID).certificates) == 1

        dc = sb.config(flow="device_code", protocol="smtp+imap")
        assert (dc.auth.flow, dc.microsoft.client_id, dc.auth.username, dc.auth.password) == \
            ("device_code", sample.PASSWORD_APP_ID, sample.SERVICE_USER, "")
        assert (dc.outgoing.protocol, dc.incoming.protocol) == ("smtp", "imap")
        assert [p for p in validate(dc) if not p.warning] == []
    assert not key.exists() and not key.parent.exists()                    # removed at stop()


@pytest.mark.parametrize("protocol", ["ews", "graph", "smtp+imap"])
@pytest.mark.parametrize("flow", ["client_secret", "password", "certificate"])
def test_sample_tenant_is_set_up_for_the_runtime(sandbox, protocol, flow):
    """`mailwizard demo` on any protocol: the sample apps have every permission the runtime
    uses (send, read, mark read, move to a folder) without a test granting anything."""
    from wizard.runtime import Mailer
    orders = sample.INCOMING[0]
    with Mailer(sandbox.config(flow=flow, protocol=protocol)) as mailer:
        mailer.send(orders, f"demo {protocol}", "x")
        [msg] = mailer.fetch(orders)
        mailer.mark_processed(orders, msg)
        assert mailer.fetch(orders) == []
    box = sandbox.tenant.mailbox(orders)
    assert [m.subject for m in next(v for k, v in box.folders.items() if k.lower() == "processed")] == \
        [f"demo {protocol}"]


def test_main_prints_ids_but_no_secrets():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "wizard.sandbox"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    try:
        while not lines or "Ctrl-C" not in lines[-1]:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    text = "".join(lines)
    assert "https://127.0.0.1:" in text and sample.TENANT_ID in text and sample.SECRET_APP_ID in text
    assert "ca.pem" in text
    ports = {line.split()[0]: int(line.split()[1].rsplit(":", 1)[1]) for line in lines
             if line.startswith(("SMTP ", "IMAP "))}
    assert set(ports) == {"SMTP", "IMAP"} and all(p > 0 for p in ports.values())
    for secret in (sample.SECRET_VALUE, sample.EXPIRED_SECRET_VALUE, sample.NO_CONSENT_SECRET_VALUE,
                   sample.SERVICE_PASSWORD):
        assert secret not in text
    assert proc.returncode == 0


def test_stop_on_signals_survives_a_burst_of_signals(tmp_path):
    """A burst of SIGINT/SIGTERM while the main loop waits: the process ends normally. The handler once
    set a threading.Event, whose lock the interrupted main thread may hold inside wait(): the
    sandbox then hung on Ctrl-C (or handlers piled up to a RecursionError)."""
    script = tmp_path / "burst.py"
    script.write_text(
        "import os, signal, sys, threading, time\n"
        "from wizard.sandbox.cleanup import stop_on_signals\n"
        "stop = stop_on_signals()\n"
        "def burst():\n"
        "    for i in range(2000):\n"
        "        os.kill(os.getpid(), signal.SIGINT if i % 2 else signal.SIGTERM)\n"
        "        time.sleep(0.001)\n"
        "    done.set()\n"
        "done = threading.Event()\n"
        "threading.Thread(target=burst, daemon=True).start()\n"
        "while not done.is_set():\n"
        "    stop.wait(0.0001)\n"
        "print('stopped', stop.wait(0))\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert (done.returncode, done.stdout, done.stderr[-300:]) == (0, "stopped True\n", "")


# -- discovery ----------------------------------------------------------------------------

@pytest.mark.parametrize("tenant", [sample.TENANT_ID, sample.DOMAIN, "CONTOSO.onmicrosoft.com"])
def test_openid_configuration_by_guid_or_domain(sandbox, tenant):
    r = requests.get(f"{sandbox.base_url}/{tenant}/v2.0/.well-known/openid-configuration",
                     verify=sandbox.ca_path, timeout=5)
    doc = r.json()
    assert r.status_code == 200
    base = f"{sandbox.base_url}/{sample.TENANT_ID}"
    assert doc["issuer"] == f"{base}/v2.0"
    assert doc["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert doc["device_authorization_endpoint"] == f"{base}/oauth2/v2.0/devicecode"
    assert doc["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert doc["tenant_region_scope"] == "EU"


def test_unknown_and_malformed_tenant(sandbox):
    r = requests.get(f"{sandbox.base_url}/fabrikam.com/v2.0/.well-known/openid-configuration",
                     verify=sandbox.ca_path, timeout=5)
    assert r.status_code == 400 and aadsts(r) == 90002 and r.json()["error"] == "invalid_tenant"
    assert "Tenant 'fabrikam.com' not found" in r.json()["error_description"]
    r = requests.get(f"{sandbox.base_url}/not_a_tenant!/v2.0/.well-known/openid-configuration",
                     verify=sandbox.ca_path, timeout=5)
    assert r.status_code == 400 and aadsts(r) == 900023
    r = token_request(sandbox, tenant="00000000-1111-2222-3333-444444444444", grant_type="client_credentials")
    assert aadsts(r) == 90002


def test_msal_raises_value_error_for_unknown_tenant(sandbox):
    with pytest.raises(ValueError):
        confidential(sandbox, tenant="fabrikam.com")


def test_jwks_verifies_tokens_independently(sandbox):
    import jwt  # PyJWT, an msal dependency: an independent RS256 check
    keys = requests.get(f"{sandbox.base_url}/{sample.DOMAIN}/discovery/v2.0/keys",
                        verify=sandbox.ca_path, timeout=5).json()["keys"]
    token = app_token(sandbox)
    header = jwt.get_unverified_header(token)
    [jwk] = [k for k in keys if k["kid"] == header["kid"]]
    decoded = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=EXCHANGE)
    assert decoded["tid"] == sample.TENANT_ID


def test_user_realm(sandbox):
    r = requests.get(f"{sandbox.base_url}/common/userrealm/{sample.SERVICE_USER}?api-version=1.0",
                     verify=sandbox.ca_path, timeout=5).json()
    assert r["account_type"] == "Managed" and r["domain_name"] == sample.DOMAIN
    assert r["cloud_instance_name"] == "microsoftonline.com"
    r = requests.get(f"{sandbox.base_url}/common/userrealm/someone@gmail.com?api-version=1.0",
                     verify=sandbox.ca_path, timeout=5).json()
    assert r["account_type"] == "Unknown"


# -- client credentials ---------------------------------------------------------------------

def test_msal_client_credentials_token_claims(sandbox):
    result = confidential(sandbox, tenant=sample.DOMAIN).acquire_token_for_client([f"{EXCHANGE}/.default"])
    assert result["token_type"] == "Bearer" and result["expires_in"] == 3599 and "ext_expires_in" in result
    c = claims(result["access_token"])
    assert c["aud"] == EXCHANGE and c["iss"] == f"https://sts.windows.net/{sample.TENANT_ID}/"
    assert c["tid"] == sample.TENANT_ID and c["appid"] == sample.SECRET_APP_ID
    assert c["roles"] == ["IMAP.AccessAsApp", "SMTP.SendAsApp", "full_access_as_app"]   # all consented, sorted
    assert "scp" not in c and "upn" not in c
    assert c["iat"] <= c["nbf"] + 1 and 3500 < c["exp"] - c["iat"] <= 3600 and c["oid"]
    graph = claims(app_token(sandbox, resource=GRAPH))
    assert graph["aud"] == GRAPH and graph["roles"] == ["Mail.Read", "Mail.ReadWrite", "Mail.Send"]


def test_consent_missing_still_gets_a_token_without_roles(sandbox):
    c = claims(app_token(sandbox, client_id=sample.NO_CONSENT_APP_ID, secret=sample.NO_CONSENT_SECRET_VALUE))
    assert c["appid"] == sample.NO_CONSENT_APP_ID and "roles" not in c


CLIENT_CREDENTIAL_ERRORS = [
    # (client_id, secret, scope, status, error, code)
    ("11111111-2222-3333-4444-555555555555", sample.SECRET_VALUE, f"{EXCHANGE}/.default", 400, "unauthorized_client", 700016),
    (sample.SECRET_APP_ID, sample.SECRET_ID, f"{EXCHANGE}/.default", 401, "invalid_client", 7000215),
    (sample.SECRET_APP_ID, "Qm48Q~wrongwrongwrongwrongwrongwrongwron", f"{EXCHANGE}/.default", 401, "invalid_client", 7000215),
    (sample.SECRET_APP_ID, sample.EXPIRED_SECRET_VALUE, f"{EXCHANGE}/.default", 401, "invalid_client", 7000222),
    (sample.SECRET_APP_ID, "", f"{EXCHANGE}/.default", 401, "invalid_client", 7000218),
    (sample.SECRET_APP_ID, sample.SECRET_VALUE, f"{EXCHANGE}/full_access_as_app", 400, "invalid_scope", 1002012),
    (sample.SECRET_APP_ID, sample.SECRET_VALUE, "https://outlook.office365.us/.default", 400, "invalid_resource", 500011),
    (sample.SECRET_APP_ID, sample.SECRET_VALUE, "", 400, "invalid_request", 900144),
]


@pytest.mark.parametrize("client_id,secret,scope,status,error,code", CLIENT_CREDENTIAL_ERRORS)
def test_client_credentials_errors(sandbox, client_id, secret, scope, status, error, code):
    form = dict(grant_type="client_credentials", client_id=client_id, scope=scope)
    if secret:
        form["client_secret"] = secret
    r = token_request(sandbox, **form)
    assert (r.status_code, r.json()["error"], aadsts(r)) == (status, error, code)


def test_error_echoes_client_request_id_and_msal_returns_dict(sandbox):
    app = confidential(sandbox, secret=sample.SECRET_ID)
    result = app.acquire_token_for_client([f"{EXCHANGE}/.default"])
    assert result["error"] == "invalid_client" and result["error_codes"] == [7000215]
    assert "client secret value, not the client secret ID" in result["error_description"]
    sent = [r for r in sandbox.requests if r.path.endswith("/token")][-1]
    assert sent.headers.get("client-request-id") == result["correlation_id"]


def test_common_endpoint_refused_for_single_tenant_app(sandbox):
    r = token_request(sandbox, tenant="common", grant_type="client_credentials",
                      client_id=sample.SECRET_APP_ID, client_secret=sample.SECRET_VALUE,
                      scope=f"{EXCHANGE}/.default")
    assert aadsts(r) == 50194


# -- password (ROPC) ------------------------------------------------------------------------

def test_msal_password_flow_token_claims(sandbox):
    app = msal.PublicClientApplication(sample.PASSWORD_APP_ID, authority=f"{sandbox.base_url}/{sample.TENANT_ID}",
                                       instance_discovery=False, http_client=session(sandbox))
    result = app.acquire_token_by_username_password(sample.SERVICE_USER, sample.SERVICE_PASSWORD, scopes=[EWS_SCOPE])
    assert "access_token" in result, result
    c = claims(result["access_token"])
    assert c["aud"] == EXCHANGE and c["upn"] == sample.SERVICE_USER and c["appid"] == sample.PASSWORD_APP_ID
    assert "EWS.AccessAsUser.All" in c["scp"].split() and "roles" not in c
    assert "refresh_token" in result
    assert any(r.path.startswith(f"/common/userrealm/{sample.SERVICE_USER}") for r in sandbox.requests)


def _tenant_with_problem_users():
    t = sample_tenant()
    t.users += [User("disabled@contoso.com", "pw-Disabled1", disabled=True),
                User("blocked@contoso.com", "pw-Blocked1", conditional_access_block=True)]
    t.mailboxes[0].send_as.add("disabled@contoso.com")
    t.app(sample.NO_CONSENT_APP_ID).public_client = True
    return t


PASSWORD_ERRORS = [
    # (client_id, username, password, extra form, status, error, code)
    (sample.SECRET_APP_ID, sample.SERVICE_USER, sample.SERVICE_PASSWORD, {}, 401, "invalid_client", 7000218),
    (sample.PASSWORD_APP_ID, sample.SERVICE_USER, "wrong", {}, 400, "invalid_grant", 50126),
    (sample.PASSWORD_APP_ID, "nobody@contoso.com", "x", {}, 400, "invalid_grant", 50034),
    (sample.PASSWORD_APP_ID, sample.MFA_USER, sample.MFA_PASSWORD, {}, 400, "invalid_grant", 50076),
    (sample.PASSWORD_APP_ID, "disabled@contoso.com", "pw-Disabled1", {}, 400, "invalid_grant", 50057),
    (sample.PASSWORD_APP_ID, "blocked@contoso.com", "pw-Blocked1", {}, 400, "invalid_grant", 53003),
    (sample.NO_CONSENT_APP_ID, sample.SERVICE_USER, sample.SERVICE_PASSWORD, {}, 400, "invalid_grant", 65001),
    (sample.PASSWORD_APP_ID, sample.SERVICE_USER, sample.SERVICE_PASSWORD, {"client_secret": "nope"}, 401, "invalid_client", 7000215),
    (sample.PASSWORD_APP_ID, sample.SERVICE_USER, sample.SERVICE_PASSWORD,
     {"scope": "https://outlook.office365.com/EWS.AccessAsUser.All https://graph.microsoft.com/Mail.Send"}, 400, "invalid_scope", 28000),
    (sample.PASSWORD_APP_ID, sample.SERVICE_USER, sample.SERVICE_PASSWORD,
     {"scope": "https://outlook.office365.com/EWS.Secret.All"}, 400, "invalid_grant", 65001),
]


def test_password_errors(fresh_sandbox):
    fresh_sandbox.tenant = _tenant_with_problem_users()
    for client_id, username, password, extra, status, error, code in PASSWORD_ERRORS:
        form = dict(grant_type="password", client_id=client_id, username=username, password=password,
                    scope=f"{EWS_SCOPE} openid profile offline_access")
        form.update(extra)
        r = token_request(fresh_sandbox, **form)
        assert (r.status_code, r.json()["error"], aadsts(r)) == (status, error, code), (username, r.text)
    mfa = token_request(fresh_sandbox, grant_type="password", client_id=sample.PASSWORD_APP_ID,
                        username=sample.MFA_USER, password=sample.MFA_PASSWORD, scope=EWS_SCOPE).json()
    assert mfa["suberror"] == "basic_action" and "claims" in mfa


def test_password_grant_with_client_secret_on_confidential_app(sandbox):
    r = token_request(sandbox, grant_type="password", client_id=sample.SECRET_APP_ID,
                      client_secret=sample.SECRET_VALUE, username=sample.SERVICE_USER,
                      password=sample.SERVICE_PASSWORD, scope=EWS_SCOPE)
    # the secret app has no delegated permissions consented
    assert aadsts(r) == 65001


# -- EWS through exchangelib ---------------------------------------------------------------------

def test_ews_get_folder_and_send(sandbox, ews):
    token = app_token(sandbox)
    account = ews(sandbox, sample.SENDER, token)
    assert account.inbox.total_count == 0 and account.inbox.name == "Inbox"
    sandbox.clear()
    from exchangelib import Message
    Message(account=account, subject="mailwizard test", body="hello",
            to_recipients=[sample.RECIPIENT]).send(save_copy=False)
    [create] = [r for r in sandbox.requests if b"CreateItem" in r.body]
    assert b'MessageDisposition="SendOnly"' in create.body
    assert create.headers["X-AnchorMailbox"] == sample.SENDER
    [got] = sandbox.tenant.mailbox(sample.RECIPIENT).inbox
    assert (got.sender, got.subject, got.body) == (sample.SENDER, "mailwizard test", "hello")
    assert sandbox.tenant.mailbox(sample.SENDER).sent == []       # SendOnly: "no copy is saved"
    recipient = ews(sandbox, sample.RECIPIENT, token)
    assert recipient.inbox.total_count == 1 and recipient.inbox.unread_count == 1
    [item] = list(recipient.inbox.all())
    assert item.subject == "mailwizard test" and item.sender.email_address == sample.SENDER


def test_ews_tenant_reset_between_tests(sandbox):
    assert sandbox.tenant.mailbox(sample.RECIPIENT).inbox == []


def test_ews_missing_mailbox(sandbox, ews):
    from exchangelib.errors import ErrorNonExistentMailbox
    with pytest.raises(ErrorNonExistentMailbox):
        ews(sandbox, sample.NO_MAILBOX, app_token(sandbox)).inbox.total_count


def test_ews_token_without_permission_is_2000008(sandbox, ews):
    from exchangelib.errors import UnauthorizedError
    token = app_token(sandbox, client_id=sample.NO_CONSENT_APP_ID, secret=sample.NO_CONSENT_SECRET_VALUE)
    r = soap_get_inbox(sandbox, token)
    assert r.status_code == 401
    assert r.headers["x-ms-diagnostics"] == ('2000008;reason="The token contains no permissions, or permissions '
                                             'can not be understood.";error_category="invalid_grant"')
    with pytest.raises(UnauthorizedError):
        ews(sandbox, sample.SENDER, token).inbox.total_count


def test_ews_bad_tokens(sandbox):
    assert soap_get_inbox(sandbox, "not.a.jwt").headers["x-ms-diagnostics"].startswith("2000001;")
    forged = app_token(sandbox)[:-4] + "AAAA"
    assert soap_get_inbox(sandbox, forged).status_code == 401
    graph = soap_get_inbox(sandbox, app_token(sandbox, resource=GRAPH))
    assert graph.status_code == 401 and graph.headers["x-ms-diagnostics"].startswith("2000003;")
    missing = requests.post(f"{sandbox.base_url}/EWS/Exchange.asmx", data=b"<x/>", verify=sandbox.ca_path, timeout=5)
    assert missing.status_code == 401 and "Bearer" in missing.headers["WWW-Authenticate"]


def test_ews_app_only_needs_anchor_mailbox(sandbox):
    r = soap_get_inbox(sandbox, app_token(sandbox), anchor="")
    assert r.status_code == 500 and b"ErrorInternalServerError" in r.content
    ok = soap_get_inbox(sandbox, app_token(sandbox))
    assert ok.status_code == 200 and b'ResponseClass="Success"' in ok.content and b"<t:DisplayName>Inbox" in ok.content


def test_ews_blocked_by_tenant_policy(fresh_sandbox, ews):
    from exchangelib.errors import MalformedResponseError
    fresh_sandbox.tenant.ews_blocked = True
    token = app_token(fresh_sandbox)
    r = soap_get_inbox(fresh_sandbox, token)
    assert r.status_code == 403 and r.headers["X-EWS-Policy-Reason"]
    with pytest.raises(MalformedResponseError, match="Code: 403"):
        ews(fresh_sandbox, sample.SENDER, token).inbox.total_count
    fresh_sandbox.tenant.ews_allowed_app_ids.add(sample.SECRET_APP_ID)
    assert soap_get_inbox(fresh_sandbox, token).status_code == 200


def test_ews_permissions_not_yet_propagated(fresh_sandbox):
    fresh_sandbox.tenant.app(sample.SECRET_APP_ID).propagation_delay = 3600
    r = soap_get_inbox(fresh_sandbox, app_token(fresh_sandbox))
    assert r.status_code == 403 and "X-EWS-Policy-Reason" not in r.headers


def test_ews_scoped_out_mailbox(fresh_sandbox, ews):
    from exchangelib.errors import ErrorImpersonateUserDenied
    fresh_sandbox.tenant.mailbox(sample.SENDER).scoped_out_apps.add(sample.SECRET_APP_ID)
    with pytest.raises(ErrorImpersonateUserDenied):
        ews(fresh_sandbox, sample.SENDER, app_token(fresh_sandbox)).inbox.total_count


def test_ews_delegated_send_as(sandbox, ews):
    from exchangelib import Message
    from exchangelib.errors import ErrorAccessDenied, ErrorSendAsDenied
    resp = user_token(sandbox)
    token = resp.json()["access_token"]
    sender = ews(sandbox, sample.SENDER, token, delegate=True)     # svc-erp has Send As on erp@
    Message(account=sender, subject="as erp", body="x", to_recipients=[sample.RECIPIENT]).send()
    assert sandbox.tenant.mailbox(sample.RECIPIENT).inbox[-1].sender == sample.SENDER
    own = ews(sandbox, sample.SERVICE_USER, token, delegate=True)
    with pytest.raises(ErrorSendAsDenied):
        Message(account=own, author=sample.RECIPIENT, subject="x", body="x",
                to_recipients=[sample.SENDER]).send(save_copy=False)
    with pytest.raises(ErrorAccessDenied):
        ews(sandbox, sample.RECIPIENT, token, delegate=True).inbox.total_count


def test_ews_server_busy_back_off(sandbox, ews):
    from exchangelib.errors import ErrorServerBusy
    account = ews(sandbox, sample.SENDER, app_token(sandbox))
    sandbox.inject(Fault("/EWS/", ews_error="ErrorServerBusy", retry_after=3))
    with pytest.raises(ErrorServerBusy) as info:
        account.inbox.total_count
    assert info.value.back_off == 3.0


# -- faults --------------------------------------------------------------------------------------

def test_fault_500_twice_then_ok(sandbox):
    sandbox.inject(Fault(f"/{sample.TENANT_ID}/oauth2/", status=500, times=2))
    form = dict(grant_type="client_credentials", client_id=sample.SECRET_APP_ID,
                client_secret=sample.SECRET_VALUE, scope=f"{EXCHANGE}/.default")
    assert [token_request(sandbox, **form).status_code for _ in range(3)] == [500, 500, 200]
    assert [r.status for r in sandbox.requests] == [500, 500, 200]


def test_fault_429_retry_after(sandbox):
    sandbox.inject(Fault(f"/{sample.TENANT_ID}/oauth2/", status=429, retry_after=7))
    r = token_request(sandbox, grant_type="client_credentials")
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"


def test_fault_html_login_page_breaks_msal(sandbox):
    sandbox.inject(Fault(f"/{sample.TENANT_ID}/v2.0/", html=True))
    r = requests.get(f"{sandbox.base_url}/{sample.TENANT_ID}/v2.0/.well-known/openid-configuration",
                     verify=sandbox.ca_path, timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html") and b"<html" in r.content
    sandbox.inject(Fault(f"/{sample.TENANT_ID}/v2.0/", html=True))
    with pytest.raises(ValueError):
        confidential(sandbox)


def test_fault_custom_body_and_headers_and_unlimited(sandbox):
    sandbox.inject(Fault("/common/userrealm/", status=503, times=None, body='{"x": 1}', headers={"X-Test": "1"}))
    for _ in range(3):
        r = requests.get(f"{sandbox.base_url}/common/userrealm/a@contoso.com", verify=sandbox.ca_path, timeout=5)
        assert (r.status_code, r.json(), r.headers["X-Test"]) == (503, {"x": 1}, "1")


def test_fault_hang_is_bounded_by_client_timeout_and_stop(fresh_sandbox):
    fresh_sandbox.inject(Fault("/", hang=True))
    t0 = time.perf_counter()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{fresh_sandbox.base_url}/common/userrealm/a@contoso.com", verify=fresh_sandbox.ca_path,
                     timeout=0.3)
    fresh_sandbox.stop()
    assert time.perf_counter() - t0 < 2
    deadline = time.monotonic() + 5               # the hung handler's thread records it as it ends
    while not fresh_sandbox.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    [rec] = fresh_sandbox.requests
    assert rec.status is None


def test_a_hang_given_up_after_a_reset_is_not_recorded_in_the_next_tests_requests(fresh_sandbox, monkeypatch):
    """A hung request gives up HANG_LIMIT (300 s) later; by then another test runs on the shared sandbox.
    Its record went into that test's requests (a stray EWS GetFolder failed a TUI test in CI)."""
    import threading

    from wizard.sandbox import server
    monkeypatch.setattr(server, "HANG_LIMIT", 0.3)
    hang = fresh_sandbox.inject(Fault("/EWS/", hang=True))
    done = []

    def client():
        try:
            requests.post(f"{fresh_sandbox.base_url}/EWS/Exchange.asmx", data=b"<x/>", verify=fresh_sandbox.ca_path,
                          timeout=5)
        except requests.exceptions.RequestException as exc:
            done.append(exc)
    t = threading.Thread(target=client)
    t.start()
    deadline = time.monotonic() + 5
    while hang.times and time.monotonic() < deadline:          # the request is in, hanging
        time.sleep(0.01)
    fresh_sandbox.reset()                                         # the next test begins
    t.join(10)
    assert done and fresh_sandbox.requests == []


def test_msal_hang_is_bounded_by_the_session_timeout(sandbox):
    app = msal.ConfidentialClientApplication(
        sample.SECRET_APP_ID, client_credential=sample.SECRET_VALUE, authority=f"{sandbox.base_url}/{sample.TENANT_ID}",
        instance_discovery=False, http_client=session(sandbox, timeout=0.3))
    sandbox.inject(Fault(f"/{sample.TENANT_ID}/oauth2/", hang=True))
    with pytest.raises(requests.exceptions.ReadTimeout):
        app.acquire_token_for_client([f"{EXCHANGE}/.default"])


def test_msal_token_endpoint_faults(sandbox):
    sandbox.inject(Fault(f"/{sample.TENANT_ID}/oauth2/", status=500))
    with pytest.raises(msal.exceptions.MsalServiceError):
        confidential(sandbox).acquire_token_for_client([f"{EXCHANGE}/.default"])
    sandbox.inject(Fault(f"/{sample.TENANT_ID}/oauth2/", status=429, retry_after=30))
    app = confidential(sandbox)
    sandbox.clear()
    first = app.acquire_token_for_client([f"{EXCHANGE}/.default"])
    again = app.acquire_token_for_client([f"{EXCHANGE}/.default"])
    assert first["error"] == again["error"] == "temporarily_unavailable"
    assert len(sandbox.requests) == 1          # MSAL answers the repeat from its throttle cache
    sandbox.inject(Fault(f"/{sample.TENANT_ID}/oauth2/", html=True))
    with pytest.raises(ValueError):            # json.JSONDecodeError
        confidential(sandbox).acquire_token_for_client([f"{EXCHANGE}/.default"])


def test_ews_hang_becomes_timeout_in_exchangelib(sandbox, ews, monkeypatch):
    from exchangelib.errors import ErrorTimeoutExpired
    from exchangelib.protocol import BaseProtocol
    account = ews(sandbox, sample.SENDER, app_token(sandbox))
    monkeypatch.setattr(BaseProtocol, "TIMEOUT", 0.3)
    sandbox.inject(Fault("/EWS/", hang=True))
    with pytest.raises(ErrorTimeoutExpired):
        account.inbox.refresh()


def test_latency_delays_responses():
    with Sandbox(latency=0.2) as sb:
        t0 = time.perf_counter()
        requests.get(f"{sb.base_url}/common/userrealm/a@contoso.com", verify=sb.ca_path, timeout=5)
        assert time.perf_counter() - t0 >= 0.2


def test_env_ca_bundle_does_not_beat_the_adapter(sandbox, monkeypatch):
    import certifi
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    r = session(sandbox).get(f"{sandbox.base_url}/{sample.DOMAIN}/v2.0/.well-known/openid-configuration", timeout=5)
    assert r.status_code == 200


def test_secret_expiry_follows_today():
    t = sample_tenant(today=date(2030, 1, 1))
    expired = [s for s in t.app(sample.SECRET_APP_ID).secrets if s.expires < date(2030, 1, 1)]
    assert [s.value for s in expired] == [sample.EXPIRED_SECRET_VALUE]
    assert t.app(sample.SECRET_APP_ID).secrets[0].expires - date(2030, 1, 1) == timedelta(days=540)
