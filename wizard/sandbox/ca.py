"""Throwaway TLS material for the sandbox: a CA, a server certificate for
127.0.0.1/localhost signed by it, and an RSA key that signs the JWTs.

Generated once per process (cached) into a private temp directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from jwt.utils import base64url_encode
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Material:
    directory: Path
    ca_path: str            # PEM of the CA certificate: what clients trust
    cert_path: str          # server certificate (PEM)
    key_path: str           # server private key (PEM)
    jwt_key: rsa.RSAPrivateKey
    kid: str                # key id in the JWT header and the JWKS

    def jwk(self) -> dict:
        """The public JWT key as a JSON Web Key (RS256)."""
        from jwt.algorithms import RSAAlgorithm
        key = RSAAlgorithm.to_jwk(self.jwt_key.public_key(), as_dict=True)
        return {**key, "use": "sig", "kid": self.kid, "x5t": self.kid}


_lock = threading.Lock()
_cached: Material | None = None


def material() -> Material:
    """The process-wide TLS and signing material (generated on first use)."""
    global _cached
    with _lock:
        if _cached is None or not Path(_cached.ca_path).is_file():
            _cached = _generate()
        return _cached


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailwizard sandbox"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _generate() -> Material:
    directory = Path(tempfile.mkdtemp(prefix="mailwizard-sandbox-"))
    from wizard.sandbox.cleanup import remove_at_end
    remove_at_end(directory)        # at exit; also by the watcher when a command started one
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=2)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("mailwizard sandbox throwaway CA")
    ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)

    jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = jwt_key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = base64url_encode(hashlib.sha1(der).digest()).decode("ascii")
    return Material(directory, str(ca_path), str(cert_path), str(key_path), jwt_key, kid)
