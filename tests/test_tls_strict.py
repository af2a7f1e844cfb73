"""Certificates on every supported Python: 3.13's ssl verifies with
VERIFY_X509_STRICT, so a certificate chain that breaks an RFC 5280 rule (as
TLS-inspecting proxies often make them) fails there and passes on 3.10-3.12.
The check must name that case plainly, and still tell a wrong host name apart."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import sys
import threading

import pytest
import requests

from wizard.net import probes as netcheck
from wizard.diagnosis.catalogue import lookup
from wizard.config.schema import Config
from wizard.diagnosis.classify import diagnose_network, network_code, strict_problem
from wizard.net.session import make_session

STRICT_PYTHON = sys.version_info >= (3, 13)     # ssl.create_default_context() sets VERIFY_X509_STRICT


def _chain(tmp_path, *, ca_bc_critical=True, leaf_aki=True, name="127.0.0.1"):
    """A CA and a certificate it signed for ``name``, as files; by default both
    follow RFC 5280 (what a strict verifier wants)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Inspection CA of a test company")])
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=ca_bc_critical)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **usage),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    try:
        san = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        san = x509.DNSName(name)
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([san]), critical=False))
    if leaf_aki:
        leaf = leaf.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False)
    leaf = leaf.sign(ca_key, hashes.SHA256())
    paths = {n: tmp_path / f"{n}.pem" for n in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


@pytest.fixture
def tls_server():
    """start(paths) -> port of a TLS server on 127.0.0.1 showing that certificate."""
    stop, started = threading.Event(), []

    def start(paths) -> int:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(paths["cert"], paths["key"])
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.settimeout(0.2)

        def serve():
            while not stop.is_set():
                try:
                    conn, _ = srv.accept()
                except OSError:
                    continue
                try:
                    conn.settimeout(2)
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)       # until the client closes (or the HTTPS request arrives)
                        tls.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass
                finally:
                    conn.close()
        t = threading.Thread(target=serve, daemon=True, name="test-tls-server")
        t.start()
        started.append((srv, t))
        return srv.getsockname()[1]
    yield start
    stop.set()
    for srv, t in started:
        t.join(2)
        srv.close()


def _config(ca_path) -> Config:
    cfg = Config()
    cfg.endpoints.ca_bundle = str(ca_path)
    return cfg


def _check(cfg, port):
    """The check's TLS step: its result, or the Diagnosis it shows."""
    try:
        return netcheck.handshake(cfg, "127.0.0.1", port, (5, 5), direct=True)
    except (OSError, ssl.SSLError) as exc:
        return netcheck.diagnose(exc, cfg, "127.0.0.1", port, "tls.error", "imap")


NOT_STRICT = [
    # what is wrong, how the chain is made, OpenSSL's words on 3.13
    ("CA's Basic Constraints not critical", dict(ca_bc_critical=False),
     "Basic Constraints of CA cert not marked critical"),
    ("certificate without Authority Key Identifier", dict(leaf_aki=False), "Missing Authority Key Identifier"),
]


@pytest.mark.parametrize("what,make,words", NOT_STRICT, ids=[c[0] for c in NOT_STRICT])
def test_a_not_strict_inspection_ca_gets_its_own_diagnosis_on_3_13(tmp_path, tls_server, what, make, words):
    paths = _chain(tmp_path, **make)
    result = _check(_config(paths["ca"]), tls_server(paths))
    if not STRICT_PYTHON:      # 3.10-3.12 accept the chain: the check passes
        assert isinstance(result, dict) and result["version"].startswith("TLS"), result
        return
    assert result.code == "tls.ca_not_strict", result
    assert words in result.cause and "127.0.0.1" in result.cause and "3.13" in result.cause
    assert "Basic Constraints" in result.fix and "Authority Key Identifier" in result.fix
    assert "never switched off" in result.fix
    assert result.screen == "target"


@pytest.mark.parametrize("what,make,words", NOT_STRICT, ids=[c[0] for c in NOT_STRICT])
def test_https_through_requests_names_a_not_strict_ca_too(tmp_path, tls_server, what, make, words):
    """MSAL, Graph and EWS go through requests/urllib3, which is strict on 3.13 as well."""
    paths = _chain(tmp_path, **make)
    port = tls_server(paths)
    with make_session(_config(paths["ca"]), timeout=(5, 5)) as session:
        if not STRICT_PYTHON:
            assert session.get(f"https://127.0.0.1:{port}/").status_code == 204
            return
        with pytest.raises(requests.exceptions.SSLError) as e:
            session.get(f"https://127.0.0.1:{port}/")
    d = diagnose_network(e.value, host="127.0.0.1", port=port)
    assert d.code == "tls.ca_not_strict" and words in d.cause


@pytest.mark.parametrize("strict", [True, False], ids=["RFC 5280 CA", "not strict CA"])
def test_a_certificate_for_another_name_is_a_hostname_problem(tmp_path, tls_server, strict):
    make = {} if strict else dict(ca_bc_critical=False)
    paths = _chain(tmp_path, name="mail.other-company.example", **make)
    d = _check(_config(paths["ca"]), tls_server(paths))
    # On 3.13 a not strict chain fails on that first; everywhere else the name is what is wrong.
    expected = "tls.ca_not_strict" if STRICT_PYTHON and not strict else "tls.hostname"
    assert d.code == expected, d


def test_a_strict_chain_passes_on_every_python(tmp_path, tls_server):
    paths = _chain(tmp_path)
    info = _check(_config(paths["ca"]), tls_server(paths))
    assert isinstance(info, dict) and info["issuer"] == "Inspection CA of a test company", info


def _cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    e = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    e.verify_code, e.verify_message = code, message
    return e


@pytest.mark.parametrize("exc,code", [
    (_cert_error(89, "Basic Constraints of CA cert not marked critical"), "tls.ca_not_strict"),
    (_cert_error(92, "CA cert does not include key usage extension"), "tls.ca_not_strict"),
    (_cert_error(86, "Missing Subject Key Identifier"), "tls.ca_not_strict"),
    # urllib3 / requests may hand over only the text
    (requests.exceptions.SSLError("HTTPSConnectionPool(host='x', port=443): Max retries exceeded (Caused by "
                                  "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
                                  "verify failed: Missing Authority Key Identifier (_ssl.c:1020)')))"),
     "tls.ca_not_strict"),
    (_cert_error(20, "unable to get local issuer certificate"), "tls.untrusted"),
    (_cert_error(62, "Hostname mismatch, certificate is not valid for 'x'."), "tls.hostname"),
])
def test_openssl_strict_errors_are_told_apart(exc, code):
    assert network_code(exc) == code
    d = diagnose_network(exc, host="proxy.example", port=443)
    assert d.code == code and "proxy.example" in d.cause and "<" not in d.cause
    if code == "tls.ca_not_strict":      # the rule broken, in OpenSSL's words
        assert strict_problem(exc).lower() in d.cause.lower() and strict_problem(exc).lower() in str(exc).lower()


def test_the_catalogue_entry_is_plain_and_filled():
    d = lookup("tls.ca_not_strict", host="outlook.office365.com", port=443,
               problem="Missing Authority Key Identifier")
    assert "outlook.office365.com" in d.cause and "Missing Authority Key Identifier" in d.cause
    assert "{" not in d.cause + d.fix and "<" not in d.cause + d.fix
    assert "endpoints.ca_bundle" in d.fix
