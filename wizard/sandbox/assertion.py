"""Certificate credentials at the sandbox token endpoint: client assertions.

A confidential client proves itself with ``client_assertion_type =
urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and
``client_assertion`` = a JWT it signed (RS256 or PS256) with the private key
of a certificate uploaded to the app. The header names the certificate by
thumbprint: ``x5t`` (SHA-1) or ``x5t#S256`` (SHA-256), base64url of the hash
bytes. Claims: ``aud`` = the tenant's token endpoint, ``iss`` = ``sub`` = the
client ID, ``exp`` / ``nbf`` (a few minutes of clock skew allowed), ``jti``.

Errors as the real service names them:
- AADSTS700027 (401 invalid_client): no uploaded certificate with that
  thumbprint ("The key was not found"), the certificate expired ("The key used
  is expired"), or the signature does not verify;
- AADSTS700024: the assertion is outside its valid time range;
- AADSTS700021: iss/sub are not the client_id;
- AADSTS700023: aud is not this tenant's token endpoint;
- AADSTS50027: not a well-formed JWT (or an unsupported algorithm, no jti).

A ``jti`` seen before is accepted: MSAL reuses one assertion for several
minutes, and so does the real service.
"""

from __future__ import annotations

import datetime as dt
import time

import jwt
from cryptography import x509
from jwt.utils import base64url_decode

from wizard.sandbox.tenant import App, Certificate

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SKEW = 300          # seconds of clock skew tolerated on exp / nbf
ALGORITHMS = ("RS256", "PS256")
# The signature alone: the claims are checked one by one below, each with its own AADSTS error.
_SIGNATURE_ONLY = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
                   "verify_iss": False, "verify_sub": False, "verify_jti": False}


def certificate_from(data: bytes | str, description: str = "") -> Certificate:
    """A tenant Certificate from a .cer/.pem file's bytes (PEM or DER) or a path."""
    from pathlib import Path
    from cryptography.hazmat.primitives import serialization
    if isinstance(data, str):
        data = Path(data).expanduser().read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        start = data.index(b"-----BEGIN CERTIFICATE-----")
        cert = x509.load_pem_x509_certificate(data[start:])
    else:
        cert = x509.load_der_x509_certificate(data)
    return Certificate(cert.public_bytes(serialization.Encoding.DER), description)


def upload(tenant, client_id: str, data: bytes | str, description: str = "") -> Certificate:
    """What 'Upload certificate' does in the portal: add the public certificate to the app."""
    app = tenant.app(client_id)
    if app is None:
        raise KeyError(client_id)
    cert = certificate_from(data, description)
    app.certificates.append(cert)
    return cert


def _find(app: App, header: dict) -> tuple[Certificate | None, str]:
    """(the uploaded certificate the header names, the thumbprint the client sent as hex)."""
    for name, attr in (("x5t#S256", "thumbprint_sha256"), ("x5t", "thumbprint")):   # SHA-256 first
        if header.get(name):
            try:
                sent = base64url_decode(str(header[name])).hex().upper()
            except ValueError:
                sent = str(header[name])
            return next((c for c in app.certificates if getattr(c, attr) == sent), None), sent
    return None, "null"


def _verify(cert: x509.Certificate, alg: str, token: str) -> bool:
    try:
        jwt.decode(token, cert.public_key(), algorithms=[alg], options=_SIGNATURE_ONLY)
        return True
    except (jwt.PyJWTError, TypeError, ValueError):
        return False


def _not_after(cert) -> dt.datetime:
    try:
        return cert.not_valid_after_utc
    except AttributeError:
        return cert.not_valid_after.replace(tzinfo=dt.timezone.utc)


def audiences(identity) -> set[str]:
    """The token endpoint URLs of this tenant (by GUID or any of its domains), lower case."""
    base = identity.base_url.rstrip("/")
    names = [identity.tenant.tenant_id, *identity.tenant.domains]
    out = set()
    for n in names:
        out.add(f"{base}/{n}/oauth2/v2.0/token".lower())
        out.add(f"{base}/{n}/oauth2/token".lower())
    return out


def check_client_assertion(identity, app: App, form: dict, *, now: float | None = None):
    """None when the form's client assertion authenticates ``app``, else the
    error Response the real service would give."""
    now = time.time() if now is None else now
    kind = form.get("client_assertion_type", "")
    if not kind:
        return identity._missing("client_assertion_type")
    if kind != ASSERTION_TYPE:
        return identity.error(400, "invalid_request", 50027,
                              f"Invalid JWT token. The client_assertion_type '{kind}' is not supported; "
                              f"use '{ASSERTION_TYPE}'.")
    token = form.get("client_assertion", "")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise ValueError("not a JSON object")
    except (jwt.PyJWTError, ValueError, TypeError):
        return identity.error(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        return identity.error(400, "invalid_request", 50027,
                              f"Invalid JWT token. '{alg}' is not a supported signature algorithm for client "
                              f"assertions. Supported algorithms: {', '.join(ALGORITHMS)}.")
    cert_entry, sent = _find(app, header)
    portal = (f"Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for "
              f"app Id '{app.client_id}'.")
    if cert_entry is None:
        return identity.error(401, "invalid_client", 700027,
                              f"Client assertion contains an invalid signature. [Reason - The key was not found., "
                              f"Thumbprint of key used by client: '{sent}', {portal}]")
    cert = x509.load_der_x509_certificate(cert_entry.der)
    if _not_after(cert).timestamp() < now:
        return identity.error(401, "invalid_client", 700027,
                              f"Client assertion contains an invalid signature. [Reason - The key used is expired., "
                              f"Thumbprint of key used by client: '{cert_entry.thumbprint}', Found key 'Start="
                              f"{cert.not_valid_before_utc:%m/%d/%Y %H:%M:%S}, End={_not_after(cert):%m/%d/%Y %H:%M:%S}'"
                              f", {portal}]")
    if not _verify(cert, alg, token):
        return identity.error(401, "invalid_client", 700027,
                              "Client assertion contains an invalid signature. [Reason - The provided signature "
                              f"value did not match the expected signature value., Thumbprint of key used by "
                              f"client: '{cert_entry.thumbprint}', {portal}]")
    cid = app.client_id.lower()
    if str(claims.get("iss", "")).lower() != cid or str(claims.get("sub", "")).lower() != cid:
        return identity.error(401, "invalid_client", 700021,
                              "Client assertion application identifier doesn't match 'client_id' parameter. "
                              "Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/"
                              "develop/active-directory-certificate-credentials .")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if not any(isinstance(a, str) and a.rstrip("/").lower() in audiences(identity) for a in auds):
        return identity.error(401, "invalid_client", 700023,
                              "Client assertion audience claim does not match Realm issuer. Review the "
                              "documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/"
                              "active-directory-certificate-credentials .")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, (int, float)):
        return identity.error(400, "invalid_request", 50027, "JWT token is invalid or malformed: no 'exp' claim.")
    if exp < now - SKEW or (isinstance(nbf, (int, float)) and nbf > now + SKEW):
        def stamp(t):
            return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%m/%d/%Y %H:%M:%S")
        start = stamp(nbf) if isinstance(nbf, (int, float)) else "(none)"
        return identity.error(401, "invalid_client", 700024,
                              f"Client assertion is not within its valid time range. Current time: {stamp(now)}, "
                              f"assertion valid from {start}, expiry time of assertion {stamp(exp)}. Review the "
                              "documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/"
                              "active-directory-certificate-credentials .")
    if not claims.get("jti"):
        return identity.error(400, "invalid_request", 50027, "JWT token is invalid or malformed: no 'jti' claim.")
    return None


__all__ = ["ASSERTION_TYPE", "check_client_assertion", "certificate_from", "upload", "audiences",
           "certificate_config"]


def certificate_config(sb, key_path, *, upload_certificate: bool = True):
    """A Config for the certificate flow against the sandbox ``sb``: the sample
    app with full_access_as_app, the key file ``key_path`` (key + certificate,
    as ``wizard.identity.certificates.create_certificate`` writes it) and its thumbprint; the
    certificate is uploaded to the app unless ``upload_certificate`` is False
    (to show AADSTS700027). For demos and tests."""
    from wizard.identity.certificates import certificate_info
    from wizard.sandbox.sample import SECRET_APP_ID
    info = certificate_info(key_path)
    if upload_certificate:
        upload(sb.tenant, SECRET_APP_ID, str(key_path), "mailwizard sandbox")
    cfg = sb.config()
    a = cfg.auth
    a.flow, a.client_secret, a.secret_expires = "certificate", "", None
    a.certificate, a.thumbprint, a.certificate_expires = str(key_path), info.thumbprint, info.expires
    return cfg
