"""The certificate flow: a key pair and a self-signed certificate for the app
registration, and the MSAL client credential built from them.

Client credentials with a signed client assertion instead of a client secret:
the private key never leaves this computer, only the public certificate is
uploaded to the app (App registrations > the app > Certificates & secrets >
Certificates > Upload certificate). Microsoft recommends certificates over
secrets; the validity is chosen here (no forced 6-24 month rotation).

Files written by ``create_certificate``:
- ``key_path``: the private key (PKCS#8 PEM, unencrypted) followed by the
  certificate (PEM), mode 0600. This is what ``auth.certificate`` points at.
- ``cert_path``: the public certificate (PEM) to upload; the portal accepts
  .cer, .pem and .crt files.

No msal import here at module level; ``cryptography`` only.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from wizard.diagnosis.catalogue import Diagnosis, DiagnosisError

MIN_DAYS, MAX_DAYS = 1, 3650
DEFAULT_DAYS = 730
PORTAL_PATH = ("Microsoft Entra admin center (or Azure portal) > App registrations > your app > "
               "Certificates & secrets > Certificates > Upload certificate")
GUIDE = ("Certificate (recommended where the system supports it): app-only like the client secret flow, "
         "but the app proves itself with a private key that never leaves this computer; only the public "
         "certificate is uploaded to the app. No secret to copy, paste or leak, and the validity is yours "
         "to choose: no surprise expiry every 6-24 months. Needs the same API permissions and admin consent "
         "as the client secret flow.")


class CertificateError(DiagnosisError):
    """A certificate/key file problem, with a plain-words Diagnosis."""


@dataclass
class CertInfo:
    thumbprint_sha1_hex: str        # what the portal's Thumbprint column shows (upper-case hex)
    thumbprint_sha256: str          # hex; MSAL signs with this one (x5t#S256, PS256)
    not_after: dt.datetime          # UTC
    cer_path: Path                  # the public certificate to upload
    key_path: Path | None = None    # the private key + certificate (mode 0600): auth.certificate
    common_name: str = ""

    @property
    def expires(self) -> dt.date:
        return self.not_after.date()

    @property
    def thumbprint(self) -> str:
        return self.thumbprint_sha1_hex


def thumbprints(cert) -> tuple[str, str]:
    """(SHA-1 hex, SHA-256 hex), upper case, of an x509 certificate."""
    from cryptography.hazmat.primitives import hashes
    return cert.fingerprint(hashes.SHA1()).hex().upper(), cert.fingerprint(hashes.SHA256()).hex().upper()


def normalise_thumbprint(text: str) -> str:
    """'ab:cd ef..' -> 'ABCDEF..' (the portal shows upper-case hex without separators)."""
    return re.sub(r"[\s:]", "", text or "").upper()


def _not_after(cert) -> dt.datetime:
    try:
        return cert.not_valid_after_utc
    except AttributeError:      # cryptography < 42
        return cert.not_valid_after.replace(tzinfo=dt.timezone.utc)


def _not_before(cert) -> dt.datetime:
    try:
        return cert.not_valid_before_utc
    except AttributeError:
        return cert.not_valid_before.replace(tzinfo=dt.timezone.utc)


def create_certificate(common_name: str, *, days: int = DEFAULT_DAYS, key_path: str | os.PathLike,
                       cert_path: str | os.PathLike, now: dt.datetime | None = None) -> CertInfo:
    """Generate an RSA 2048 key and a self-signed certificate valid ``days`` days.

    Writes the key (+ certificate) to ``key_path`` with mode 0600 and the
    public certificate to ``cert_path`` (to upload). Refuses to overwrite an
    existing key file (FileExistsError): a replaced key would break the
    running system until the new certificate is uploaded."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"validity must be {MIN_DAYS}-{MAX_DAYS} days, not {days!r}")
    common_name = (common_name or "").strip()
    if not common_name or len(common_name) > 64:
        raise ValueError("the certificate name (CN) must be 1-64 characters")
    key_path, cert_path = Path(key_path).expanduser(), Path(cert_path).expanduser()
    if key_path.exists():
        raise FileExistsError(f"{key_path} exists already; choose another folder or remove it first")
    now = now or dt.datetime.now(dt.timezone.utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    from wizard.config.files import write_private
    write_private(Path(key_path), key_pem + cert_pem)
    write_private(Path(cert_path), cert_pem, mode=0o644)   # the public part, to upload
    sha1, sha256 = thumbprints(cert)
    return CertInfo(sha1, sha256, _not_after(cert), cert_path, key_path, common_name)


def load_certificate(path: str | os.PathLike):
    """(private key, certificate or None, SHA-1 thumbprint hex or None) from a PEM
    file holding the private key and (normally) its certificate.

    Raises CertificateError with a Diagnosis when the file cannot be read, has
    no private key, or its certificate does not belong to the key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CertificateError(Diagnosis(
            "cert.unreadable", f"The certificate file {p} cannot be read ({exc.strerror or exc}).",
            "Give auth.certificate the path of the PEM file with the private key (`mailwizard cert create` "
            "writes one), and check that this user may read it.", None, "ids")) from None
    key_block = re.search(rb"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----",
                          data, re.S)
    if key_block is None:
        raise CertificateError(Diagnosis(
            "cert.no_key", f"{p} holds no private key: it is probably the public certificate (.cer) meant for "
            "the portal.",
            "Point auth.certificate at the key file (mailwizard-*.pem written next to the .cer); the .cer is "
            "the file you upload to the app.", None, "ids"))
    if b"ENCRYPTED" in key_block.group(0):
        raise CertificateError(Diagnosis(
            "cert.encrypted", f"The private key in {p} is protected by a passphrase.",
            "Use an unencrypted key file with mode 0600 (e.g. `openssl pkcs8 -in key.pem -out plain.pem "
            "-nocrypt`), or create a new one with `mailwizard cert create`.", None, "ids"))
    try:
        key = serialization.load_pem_private_key(key_block.group(0), password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(Diagnosis(
            "cert.unreadable", f"The private key in {p} cannot be read ({exc}).",
            "Create a new key and certificate with `mailwizard cert create` and upload the new .cer.",
            None, "ids")) from None
    cert_block = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data, re.S)
    if cert_block is None:
        return key, None, None
    try:
        cert = x509.load_pem_x509_certificate(cert_block.group(0))
    except ValueError as exc:
        raise CertificateError(Diagnosis(
            "cert.unreadable", f"The certificate in {p} cannot be read ({exc}).",
            "Create a new key and certificate with `mailwizard cert create` and upload the new .cer.",
            None, "ids")) from None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, pub) != \
            key.public_key().public_bytes(serialization.Encoding.DER, pub):
        raise CertificateError(Diagnosis(
            "cert.key_mismatch", f"The certificate in {p} does not belong to the private key in the same file.",
            "Use the key file and the .cer that were created together (`mailwizard cert create` writes both), "
            "and upload that .cer.", None, "ids"))
    return key, cert, thumbprints(cert)[0]


def certificate_info(path: str | os.PathLike) -> CertInfo:
    """Thumbprints and expiry of the certificate in a key file or a .cer/.pem (PEM or DER)."""
    from cryptography import x509
    p = Path(path).expanduser()
    data = p.read_bytes()
    m = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data, re.S)
    cert = x509.load_pem_x509_certificate(m.group(0)) if m else x509.load_der_x509_certificate(data)
    sha1, sha256 = thumbprints(cert)
    cn = cert.subject.rfc4514_string()
    return CertInfo(sha1, sha256, _not_after(cert), p, None, cn)


def client_credential(cfg, *, now: dt.datetime | None = None) -> dict:
    """The MSAL ``client_credential`` dict for the config's certificate.

    With the certificate in the file (as ``create_certificate`` writes it),
    MSAL signs the assertion with PS256 and the SHA-256 thumbprint
    (``x5t#S256``), Microsoft's current recommendation; a key-only file falls
    back to RS256 with the SHA-1 thumbprint of the config (``x5t``).
    Raises CertificateError before any request when the files and the config
    disagree (wrong thumbprint, expired certificate)."""
    from cryptography.hazmat.primitives import serialization
    a = cfg.auth
    if not a.certificate:
        raise CertificateError(Diagnosis(
            "config.invalid", "auth.certificate is empty.",
            "Create a key and certificate with `mailwizard cert create`, upload the .cer to the app and put "
            "the key file's path in auth.certificate.", None, "ids"))
    key, cert, sha1 = load_certificate(a.certificate)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    want = normalise_thumbprint(a.thumbprint)
    if cert is None:
        if not re.fullmatch(r"[0-9A-F]{40}", want):
            raise CertificateError(Diagnosis(
                "config.invalid", "auth.thumbprint must be the certificate's SHA-1 thumbprint (40 hex characters).",
                "Copy the Thumbprint column from Certificates & secrets > Certificates.", None, "ids"))
        return {"private_key": key_pem, "thumbprint": want}
    if want and want != sha1:
        raise CertificateError(Diagnosis(
            "cert.thumbprint_mismatch",
            f"auth.thumbprint ({want}) is not the thumbprint of the certificate in {a.certificate} ({sha1}).",
            f"Set auth.thumbprint = \"{sha1}\", and check that the app's Certificates & secrets page lists "
            "that thumbprint (upload the matching .cer if not).", None, "ids"))
    now = now or dt.datetime.now(dt.timezone.utc)
    if _not_after(cert) < now:
        raise CertificateError(Diagnosis(
            "cert.expired", f"The certificate {sha1} expired on {_not_after(cert).date().isoformat()}.",
            "Create a new one with `mailwizard cert create`, upload its .cer to the app (Certificates & secrets "
            "> Certificates > Upload certificate), then put the new key file and thumbprint in the config.",
            None, "registration"))
    if _not_before(cert) > now + dt.timedelta(minutes=10):
        raise CertificateError(Diagnosis(
            "cert.not_yet_valid", f"The certificate {sha1} is valid only from "
            f"{_not_before(cert).isoformat(timespec='minutes')}: this computer's clock is probably wrong.",
            "Set the computer's date and time correctly (or turn on time sync).", None, None))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return {"private_key": key_pem, "public_certificate": cert_pem}


__all__ = ["CertInfo", "CertificateError", "create_certificate", "load_certificate", "certificate_info",
           "client_credential", "thumbprints", "normalise_thumbprint", "PORTAL_PATH", "GUIDE"]
