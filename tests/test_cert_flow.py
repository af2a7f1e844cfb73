"""The certificate flow: key + self-signed certificate, client assertions
checked by the sandbox against the uploaded certificate, run_check end to end,
and the AADSTS700027/700024/700021/700023 answers with their advice."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import stat
import time
import uuid

import pytest

from wizard.identity.certificates import (CertificateError, certificate_info, client_credential, create_certificate,
                          load_certificate)
from wizard.check.engine import Tuning, run_check
from wizard.sandbox import sample
from wizard.sandbox.assertion import ASSERTION_TYPE, upload

# the sample app's consented Exchange application permissions, as the token lists them
APP_ROLES = ["IMAP.AccessAsApp", "SMTP.SendAsApp", "full_access_as_app"]

EXCHANGE = "https://outlook.office365.com"


def make_cert(tmp_path, name="mailwizard test", days=30, **kw):
    d = tmp_path / name.replace(" ", "-")
    info = create_certificate(name, days=days, key_path=d / "key.pem", cert_path=d / "app.cer", **kw)
    return info


def cert_config(sb, info):
    cfg = sb.config()
    a = cfg.auth
    a.flow, a.client_secret, a.secret_expires = "certificate", "", None
    a.certificate, a.thumbprint, a.certificate_expires = str(info.key_path), info.thumbprint, info.expires
    return cfg


def fast():
    return Tuning(timeout=(3.0, 5.0), auth_attempts=1, propagation_wait=0, sleep=lambda s: None)


def token_posts(sb):
    return [r for r in sb.requests if r.method == "POST" and r.path.endswith("/oauth2/v2.0/token")]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- creating the certificate ---------------------------------------------------------------

def test_create_writes_a_private_key_and_a_cer_with_matching_thumbprint(tmp_path):
    info = make_cert(tmp_path, days=90)
    assert stat.S_IMODE(info.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(info.key_path.parent.stat().st_mode) == 0o700
    cer = info.cer_path.read_bytes()
    assert cer.startswith(b"-----BEGIN CERTIFICATE-----") and b"PRIVATE KEY" not in cer
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    der = x509.load_pem_x509_certificate(cer).public_bytes(serialization.Encoding.DER)
    assert info.thumbprint_sha1_hex == hashlib.sha1(der).hexdigest().upper()
    assert info.thumbprint_sha256 == hashlib.sha256(der).hexdigest().upper()
    left = info.not_after - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=89) < left <= dt.timedelta(days=90)
    key, cert, thumb = load_certificate(info.key_path)
    assert thumb == info.thumbprint and cert is not None and key.key_size == 2048
    assert certificate_info(info.cer_path).thumbprint == info.thumbprint


def test_create_refuses_to_overwrite_a_key_and_bad_validity(tmp_path):
    info = make_cert(tmp_path)
    with pytest.raises(FileExistsError):
        create_certificate("x", days=30, key_path=info.key_path, cert_path=tmp_path / "other.cer")
    for days in (0, 5000):
        with pytest.raises(ValueError):
            create_certificate("x", days=days, key_path=tmp_path / "k.pem", cert_path=tmp_path / "c.cer")


def test_cer_given_as_key_file_is_explained(tmp_path):
    info = make_cert(tmp_path)
    with pytest.raises(CertificateError) as e:
        load_certificate(info.cer_path)
    assert e.value.diagnosis.code == "cert.no_key" and ".cer" in e.value.diagnosis.cause


# -- tokens against the sandbox -------------------------------------------------------------------

def test_certificate_flow_end_to_end_run_check_passes(sandbox, tmp_path):
    info = make_cert(tmp_path)
    upload(sandbox.tenant, sample.SECRET_APP_ID, str(info.cer_path))
    cfg = cert_config(sandbox, info)
    report = run_check(cfg, tuning=fast())
    assert report.ok, [(s.id, s.status, s.code, s.summary) for s in report.steps]
    token = next(s for s in report.steps if s.id == "token")
    assert "app-only, certificate" in token.summary
    post = token_posts(sandbox)[0]
    body = post.body.decode()
    assert "client_secret" not in body and "client_assertion_type=" in body
    from urllib.parse import parse_qs
    form = {k: v[0] for k, v in parse_qs(body).items()}
    assert form["client_assertion_type"] == ASSERTION_TYPE
    import json
    header = json.loads(base64.urlsafe_b64decode(form["client_assertion"].split(".")[0] + "=="))
    assert header["alg"] == "PS256"              # MSAL's SHA-256 thumbprint path (x5t#S256)
    assert header["x5t#S256"].rstrip("=") == b64url(bytes.fromhex(info.thumbprint_sha256))


def test_key_only_file_uses_the_sha1_thumbprint_of_the_config(sandbox, tmp_path):
    info = make_cert(tmp_path)
    upload(sandbox.tenant, sample.SECRET_APP_ID, str(info.cer_path))
    text = info.key_path.read_text()
    key_only = tmp_path / "key-only.pem"
    key_only.write_text(text[: text.index("-----BEGIN CERTIFICATE-----")])
    key_only.chmod(0o600)
    cfg = cert_config(sandbox, info)
    cfg.auth.certificate = str(key_only)
    assert client_credential(cfg)["thumbprint"] == info.thumbprint
    from wizard.identity.signin import acquire_token
    tok = acquire_token(cfg)
    assert tok.claims["roles"] == APP_ROLES and tok.claims["appid"] == sample.SECRET_APP_ID


def test_unregistered_certificate_is_aadsts700027_with_cause_and_fix(sandbox, tmp_path):
    info = make_cert(tmp_path)                  # never uploaded
    other = make_cert(tmp_path, name="another one")
    upload(sandbox.tenant, sample.SECRET_APP_ID, str(other.cer_path))
    report = run_check(cert_config(sandbox, info), tuning=fast())
    token = next(s for s in report.steps if s.id == "token")
    assert not report.ok and token.status == "fail"
    assert token.code == "AADSTS700027"
    assert sample.SECRET_APP_ID in token.summary and "thumbprint" in token.summary.lower()
    assert "Upload certificate" in token.fix and "auth.thumbprint" in token.fix
    assert token.screen == "registration"
    assert "The key was not found" in token.details["service_message"]


def test_thumbprint_that_does_not_match_the_key_file_fails_before_any_request(sandbox, tmp_path):
    info = make_cert(tmp_path)
    other = make_cert(tmp_path, name="another one")
    cfg = cert_config(sandbox, info)
    cfg.auth.thumbprint = other.thumbprint
    report = run_check(cfg, tuning=fast())
    token = next(s for s in report.steps if s.id == "token")
    assert token.code == "cert.thumbprint_mismatch" and info.thumbprint in token.fix
    assert not token_posts(sandbox)


def test_expired_certificate_is_caught_locally(sandbox, tmp_path):
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)
    info = make_cert(tmp_path, days=30, now=past)
    upload(sandbox.tenant, sample.SECRET_APP_ID, str(info.cer_path))
    cfg = cert_config(sandbox, info)
    report = run_check(cfg, tuning=fast())
    config_step = report.steps[0]       # the expiry date in the config catches it first
    assert config_step.status == "fail" and "certificate_expires" in config_step.summary
    assert "in the past" in config_step.summary and not sandbox.requests
    cfg.auth.certificate_expires = None  # without the date, the certificate itself is read
    report = run_check(cfg, tuning=fast())
    token = next(s for s in report.steps if s.id == "token")
    assert token.code == "cert.expired" and "mailwizard cert create" in token.fix


# -- the sandbox's assertion checks, with hand-made assertions -----------------------------------------

def post_assertion(sb, assertion: str, client_id=sample.SECRET_APP_ID):
    from wizard.net.session import make_session
    s = make_session(sb.config())
    try:
        return s.post(f"{sb.base_url}/{sample.TENANT_ID}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": client_id, "scope": f"{EXCHANGE}/.default",
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})
    finally:
        s.close()


def assertion(sb, info, *, alg="RS256", sha256=False, **claims):
    import jwt
    key, _cert, _ = load_certificate(info.key_path)
    now = int(time.time())
    payload = {"aud": f"{sb.base_url}/{sample.TENANT_ID}/oauth2/v2.0/token", "iss": sample.SECRET_APP_ID,
               "sub": sample.SECRET_APP_ID, "jti": str(uuid.uuid4()), "nbf": now, "exp": now + 600}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    header = {"x5t#S256": b64url(bytes.fromhex(info.thumbprint_sha256))} if sha256 else \
        {"x5t": b64url(bytes.fromhex(info.thumbprint))}
    return jwt.encode(payload, key, algorithm=alg, headers=header)


@pytest.fixture
def uploaded(sandbox, tmp_path):
    info = make_cert(tmp_path)
    upload(sandbox.tenant, sample.SECRET_APP_ID, str(info.cer_path))
    return info


@pytest.mark.parametrize("alg,sha256", [("RS256", False), ("PS256", True), ("RS256", True)])
def test_valid_assertions_get_an_app_only_token(sandbox, uploaded, alg, sha256):
    r = post_assertion(sandbox, assertion(sandbox, uploaded, alg=alg, sha256=sha256))
    assert r.status_code == 200, r.text
    from wizard.identity.claims import decode_jwt
    claims = decode_jwt(r.json()["access_token"])
    assert claims["roles"] == APP_ROLES and claims["idtyp"] == "app"


@pytest.mark.parametrize("change,code", [
    ({"exp": int(time.time()) - 3600, "nbf": int(time.time()) - 4000}, 700024),
    ({"nbf": int(time.time()) + 3600, "exp": int(time.time()) + 4000}, 700024),
    ({"iss": sample.PASSWORD_APP_ID}, 700021),
    ({"sub": None}, 700021),
    ({"aud": "https://login.microsoftonline.com/common/oauth2/v2.0/token"}, 700023),
    ({"jti": None}, 50027),
])
def test_assertion_claims_are_checked(sandbox, uploaded, change, code):
    r = post_assertion(sandbox, assertion(sandbox, uploaded, **change))
    assert r.status_code in (400, 401)
    assert r.json()["error_codes"] == [code]


def test_tampered_signature_and_unknown_key(sandbox, uploaded, tmp_path):
    token = assertion(sandbox, uploaded)
    head, body, sig = token.split(".")
    forged = f"{head}.{b64url(base64.urlsafe_b64decode(body + '==').replace(b'jti', b'jtj'))}.{sig}"
    r = post_assertion(sandbox, forged)
    assert r.json()["error_codes"] == [700027] and "signature value did not match" in r.json()["error_description"]
    stranger = make_cert(tmp_path, name="not uploaded")
    r = post_assertion(sandbox, assertion(sandbox, stranger))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.json()["error_codes"] == [700027] and stranger.thumbprint in r.json()["error_description"]
    assert post_assertion(sandbox, "not-a-jwt").json()["error_codes"] == [50027]


def test_expired_uploaded_certificate_is_700027(sandbox, tmp_path):
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)
    info = make_cert(tmp_path, days=30, now=past)
    upload(sandbox.tenant, sample.SECRET_APP_ID, str(info.cer_path))
    r = post_assertion(sandbox, assertion(sandbox, info))
    assert r.json()["error_codes"] == [700027] and "expired" in r.json()["error_description"]


# -- the CLI -------------------------------------------------------------------------------------------

def test_cli_cert_create_prints_the_portal_path_and_thumbprint(tmp_path, capsys):
    from wizard.cli.main import main
    out_dir = tmp_path / "certs"
    assert main(["cert", "create", "--days", "30", "--out", str(out_dir), "--name", "Monitor G5"]) == 0
    text = capsys.readouterr().out
    key = out_dir / "mailwizard-monitor-g5-key.pem"
    cer = out_dir / "mailwizard-monitor-g5.cer"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and cer.is_file()
    thumb = certificate_info(cer).thumbprint
    assert thumb in text and "Certificates & secrets > Certificates > Upload certificate" in text
    assert f'certificate = "{key}"' in text and "PRIVATE" not in text
    assert main(["cert", "show", str(cer)]) == 0 and thumb in capsys.readouterr().out
    assert main(["cert", "create", "--days", "30", "--out", str(out_dir), "--name", "Monitor G5"]) == 1
    with pytest.raises(SystemExit) as e:
        main(["cert", "create", "--days", "0", "--out", str(out_dir)])
    assert e.value.code == 2


def test_cli_cert_create_save_switches_the_config(sandbox, tmp_path, capsys):
    from wizard.cli.main import main
    from wizard.config.files import load, save
    path = tmp_path / "mw.toml"
    save(sandbox.config(flow="password"), path)          # switching from another flow clears its keys
    assert main(["--config", str(path), "cert", "create", "--days", "30", "--out", str(tmp_path / "c"),
                 "--save"]) == 0
    cfg = load(path)                                     # strict: validates, one method only
    assert cfg.auth.flow == "certificate" and not cfg.auth.password and not cfg.auth.username
    assert cfg.auth.thumbprint == certificate_info(cfg.auth.certificate).thumbprint
    cfg.microsoft.client_id = sample.SECRET_APP_ID       # the app with full_access_as_app
    upload(sandbox.tenant, sample.SECRET_APP_ID, cfg.auth.certificate)
    assert run_check(cfg, tuning=fast()).ok


def test_sandbox_certificate_config_helper(sandbox, tmp_path):
    from wizard.config.schema import validate
    from wizard.sandbox.assertion import certificate_config
    info = make_cert(tmp_path)
    cfg = certificate_config(sandbox, info.key_path)
    assert not [p for p in validate(cfg) if not p.warning]
    assert run_check(cfg, tuning=fast()).ok
    sandbox.reset()
    bare = certificate_config(sandbox, info.key_path, upload_certificate=False)
    token = next(s for s in run_check(bare, tuning=fast()).steps if s.id == "token")
    assert token.code == "AADSTS700027"
