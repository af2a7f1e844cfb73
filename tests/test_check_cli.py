"""`mailwizard check` / `report` end to end, in process through ``wizard.cli.main``,
against the sandbox on 127.0.0.1 with fault injection (issue 4).

Every case checks: exit code, the failing step's id/status/code and a
non-empty fix, the exact public JSON shape, and that no secret, password or
access token appears on stdout or stderr. Nothing here leaves 127.0.0.1: the
DNS case resolves through an injected resolver, proxies are a local CONNECT
proxy, and waits are bounded with MAILWIZARD_TIMEOUT / MAILWIZARD_MAX_WAIT
(no sleeps in the tests).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import re
import select
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from sandbox_helpers import record_issued_tokens
from wizard.config import files as config_io
from wizard.cli.main import main
from wizard.sandbox import Fault, sample

TOKEN = f"/{sample.TENANT_ID}/oauth2/v2.0/token"
OIDC = f"/{sample.TENANT_ID}/v2.0/.well-known/openid-configuration"
KNOWN_SECRETS = [sample.SECRET_VALUE, sample.EXPIRED_SECRET_VALUE, sample.NO_CONSENT_SECRET_VALUE,
                 sample.SERVICE_PASSWORD, sample.MFA_PASSWORD]
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
STEP_KEYS = {"id": str, "status": str, "ms": (int, float), "summary": str, "code": (str, type(None)),
             "fix": (str, type(None))}
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
             "NO_PROXY", "no_proxy")


# -- helpers -------------------------------------------------------------------------

def assert_shape(data) -> None:
    """The public --json shape, exactly: {"ok": bool, "steps": [{id, status, ms, summary, code, fix}]}."""
    assert isinstance(data, dict) and set(data) == {"ok", "steps"}, data
    assert isinstance(data["ok"], bool)
    assert isinstance(data["steps"], list) and data["steps"]
    for s in data["steps"]:
        assert isinstance(s, dict) and set(s) == set(STEP_KEYS), s
        for key, types in STEP_KEYS.items():
            assert isinstance(s[key], types) and not isinstance(s[key], bool), (key, s)
        assert s["status"] in ("pass", "warn", "fail", "skip"), s
        assert s["ms"] >= 0 and s["id"]
    assert data["ok"] == all(s["status"] != "fail" for s in data["steps"]) or not data["ok"]


@pytest.fixture
def tokens(sandbox, monkeypatch):
    """Every access token the sandbox issues during a test."""
    return record_issued_tokens(sandbox, monkeypatch)


def assert_no_secrets(text: str, sandbox, tokens, extra=()) -> None:
    bearer = [r.headers.get("Authorization", "").partition(" ")[2] for r in sandbox.requests]
    for secret in {*KNOWN_SECRETS, *tokens, *extra, *(b for b in bearer if b)}:
        assert secret not in text, "a secret, password or token leaked"
    assert not JWT.search(text), "something that looks like an access token leaked"


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        rc = main(list(argv))
    except SystemExit as exc:     # argparse usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def write(tmp_path, cfg, name="mw.toml") -> str:
    return str(config_io.save(cfg, tmp_path / name))


def check_json(capsys, path, *extra) -> tuple[int, dict, str]:
    rc, out, err = run(capsys, "check", "--json", "--config", path, *extra)
    data = json.loads(out)          # exactly one JSON object on stdout
    assert_shape(data)
    return rc, data, out + err


def step(data, step_id):
    return next(s for s in data["steps"] if s["id"] == step_id)


@pytest.fixture(autouse=True)
def fast_and_local(monkeypatch):
    """Small bounds for every check in this file; no proxy from the machine."""
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAILWIZARD_TIMEOUT", "1,1")
    monkeypatch.setenv("MAILWIZARD_MAX_WAIT", "0.02")
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def no_dns(monkeypatch):
    """A resolver that fails for *.invalid without sending anything anywhere."""
    real = socket.getaddrinfo
    asked = []

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and host.rstrip(".").lower().endswith(".invalid"):
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def blackhole():
    """A port whose connect never completes: a listener with a full backlog."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    held = []
    for _ in range(8):
        c = socket.socket()
        c.settimeout(0.2)
        try:
            c.connect(("127.0.0.1", port))
        except (TimeoutError, socket.timeout):
            c.close()
            break
        held.append(c)
    else:
        pytest.skip("this system completes every loopback connect; no connect timeout to provoke")
    yield port
    for c in held:
        c.close()
    srv.close()


# -- a TLS server whose certificate is for another name --------------------------------

@pytest.fixture(scope="module")
def wrong_name_server(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("wrongname")
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA for a wrong name")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          # what Python 3.13's strict verification wants of a CA (RFC 5280), so only the name is wrong
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wrong.example")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("wrong.example"),
                                                        x509.IPAddress(ipaddress.ip_address("192.0.2.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (d / "ca.pem").write_bytes(ca_pem)
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except OSError:
                pass
            finally:
                conn.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], ca_pem
    stop.set()
    t.join(2)
    srv.close()


# -- a tiny CONNECT proxy on 127.0.0.1 ----------------------------------------------------

class ConnectProxy:
    """HTTP CONNECT proxy for the tests: 127.0.0.1 only, counts the tunnels.
    ``answer`` other than 200 refuses every CONNECT with that status;
    ``credentials`` ("user:pass") makes it ask for Proxy-Authorization (407)."""

    def __init__(self, answer: int = 200, credentials: str | None = None):
        self.answer, self.credentials = answer, credentials
        self.connects: list[str] = []
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(32)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except OSError:
                continue
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        upstream = None
        try:
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(1)
                if not chunk:
                    return
                head += chunk
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            host, _, port = target.rpartition(":")
            if method != "CONNECT" or host.strip("[]") not in ("127.0.0.1", "localhost"):
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            if self.credentials:
                import base64
                want = "Basic " + base64.b64encode(self.credentials.encode()).decode()
                if headers.get("proxy-authorization") != want:
                    conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                    return
            if self.answer != 200:
                conn.sendall(f"HTTP/1.1 {self.answer} Refused by policy\r\nContent-Length: 0\r\n\r\n".encode())
                return
            upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
            self.connects.append(target)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.relay(conn, upstream)
        except OSError:
            pass
        finally:
            conn.close()
            if upstream is not None:
                upstream.close()

    def relay(self, a, b):
        socks = [a, b]
        while not self.stop.is_set():
            ready, _, _ = select.select(socks, [], [], 0.2)
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.srv.close()


@pytest.fixture
def proxy():
    p = ConnectProxy()
    yield p
    p.close()


# -- the happy path and exit codes ----------------------------------------------------------

def test_passing_check_exits_0_with_a_tree_and_json(sandbox, tmp_path, capsys, tokens):
    path = write(tmp_path, sandbox.config())
    rc, out, err = run(capsys, "check", "--config", path, "--send-to", sample.RECIPIENT)
    assert rc == 0, out + err
    assert "Result: OK" in out and "\x1b[" not in out          # no colour when not a terminal
    for step_id in ("config", "dns", "tcp", "tls", "token", "claims", "mailbox", "send",
                    "mailbox:orders@contoso.com"):
        assert re.search(rf"PASS\s+\d+ ms\s+{re.escape(step_id)}\b", out), step_id
    assert_no_secrets(out + err, sandbox, tokens)
    rc, data, text = check_json(capsys, path)
    assert rc == 0 and data["ok"] is True
    assert [s["status"] for s in data["steps"]] == ["pass"] * len(data["steps"])
    assert_no_secrets(text, sandbox, tokens)
    assert tokens, "the sandbox issued no token: the secret search proved nothing"


def test_warning_only_still_exits_0(sandbox, tmp_path, capsys, tokens):
    cfg = sandbox.config(secret_expires=dt.date.today() + dt.timedelta(days=5))
    rc, data, text = check_json(capsys, write(tmp_path, cfg))
    assert rc == 0 and data["ok"] is True
    assert (step(data, "config")["status"], step(data, "config")["code"]) == ("warn", "secret.expiring")
    assert step(data, "config")["fix"]
    assert_no_secrets(text, sandbox, tokens)


def test_failed_step_exits_1_and_later_steps_are_skipped(sandbox, tmp_path, capsys, tokens):
    path = write(tmp_path, sandbox.config(client_secret=sample.SECRET_VALUE[:-1] + "X"))
    rc, out, err = run(capsys, "check", "--config", path)
    assert rc == 1
    assert "FAIL" in out and "AADSTS7000215" in out and "fix:" in out and "Result: FAILED" in out
    rc, data, text = check_json(capsys, path)
    assert rc == 1 and data["ok"] is False
    assert [s["status"] for s in data["steps"][5:]] == ["skip"] * len(data["steps"][5:])
    assert_no_secrets(out + err + text, sandbox, tokens)


@pytest.mark.parametrize("argv", [["--send-to", "not an address"], ["--no-such-option"]])
def test_usage_errors_exit_2(sandbox, tmp_path, capsys, argv):
    path = write(tmp_path, sandbox.config())
    rc, out, err = run(capsys, "check", "--config", path, *argv)
    assert rc == 2 and err
    assert sandbox.requests == []


@pytest.mark.parametrize("name,value", [("MAILWIZARD_TIMEOUT", "soon"), ("MAILWIZARD_TIMEOUT", "1,2,3"),
                                        ("MAILWIZARD_TIMEOUT", "-1"), ("MAILWIZARD_MAX_WAIT", "x")])
def test_bad_bounds_in_the_environment_exit_2(sandbox, tmp_path, capsys, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    path = write(tmp_path, sandbox.config())
    rc, out, err = run(capsys, "check", "--config", path)
    assert rc == 2 and name in err
    rc, data, _ = check_json(capsys, path)
    assert rc == 2 and name in data["steps"][0]["summary"]
    assert sandbox.requests == []


# -- faults: each gives the expected step, status, code and a fix ---------------------------

def _set(**overrides):
    return lambda sb, ctx: sb.config(**overrides)


def _fault(*faults, **overrides):
    def setup(sb, ctx):
        for f in faults:
            sb.inject(dataclasses.replace(f))     # a fresh copy: a Fault counts down its times
        return sb.config(**overrides)
    return setup


def _tenant(change, **overrides):
    def setup(sb, ctx):
        change(sb.tenant)
        return sb.config(**overrides)
    return setup


def _short(setup):
    """A case that waits for a timeout: shorter bounds, to keep the suite fast."""
    def wrapped(sb, ctx):
        ctx["env"]("MAILWIZARD_TIMEOUT", "0.4,0.4")
        return setup(sb, ctx)
    return wrapped


def _blocked(t):
    t.ews_blocked = True


def _new_registration(t):
    t.app(sample.SECRET_APP_ID).propagation_delay = 10 ** 6


DIAG_401 = '2000008;reason="The token contains no permissions, or permissions can not be understood.";error_category="invalid_grant"'

FAULTS = [
    # name, setup, failing step, code, exit code
    ("connection refused", lambda sb, ctx: sb.config(port=closed_port()), "tcp", "net.refused", 1),
    ("dns failure", lambda sb, ctx: sb.config(server="mail.nonexistent.invalid"), "dns", "net.dns", 1),
    ("dns failure of the login host", lambda sb, ctx: sb.config(authority="https://login.nonexistent.invalid"),
     "dns", "net.dns", 1),
    ("untrusted CA (no CA bundle)", _set(ca_bundle=""), "tls", "tls.untrusted", 1),
    ("certificate for another name", lambda sb, ctx: ctx["wrong_name"](sb), "tls", "tls.hostname", 1),
    ("connect timeout", _short(lambda sb, ctx: sb.config(port=ctx["blackhole"]())), "tcp", "net.timeout", 1),
    ("read timeout: token endpoint hangs", _short(_fault(Fault(TOKEN, hang=True))), "token", "net.timeout", 1),
    ("read timeout: discovery hangs", _short(_fault(Fault(OIDC, hang=True))), "token", "net.timeout", 1),
    ("read timeout: EWS hangs", _short(_fault(Fault("/EWS/", hang=True))), "mailbox", "net.timeout", 1),
    ("identity 5xx then OK", _fault(Fault(TOKEN, status=503, times=2)), "token", None, 0),
    ("identity 5xx every time", _fault(Fault(TOKEN, status=503, times=None)), "token", "http.5xx", 1),
    ("discovery 5xx then OK", _fault(Fault(OIDC, status=500, times=1)), "token", None, 0),
    ("429 then OK", _fault(Fault(TOKEN, status=429, retry_after=1, times=1)), "token", None, 0),
    ("429 every time", _fault(Fault(TOKEN, status=429, retry_after=1, times=None)), "token", "http.429", 1),
    ("HTML page instead of the discovery JSON", _fault(Fault(OIDC, html=True)), "token", "http.html", 1),
    ("HTML page instead of the token JSON", _fault(Fault(TOKEN, html=True)), "token", "http.html", 1),
    ("HTML page instead of EWS", _fault(Fault("/EWS/", html=True, times=None)), "mailbox", "http.html", 1),
    ("EWS 403 right after registration, for good", _tenant(_new_registration), "mailbox", "ews.403", 1),
    ("EWS 403 right after registration, then OK", _fault(Fault("/EWS/", status=403, times=2)), "mailbox",
     None, 0),
    ("EWS blocked by tenant policy", _tenant(_blocked), "mailbox", "X-EWS-Policy-Reason", 1),
    ("EWS 401 with x-ms-diagnostics", _fault(Fault("/EWS/", status=401, times=None,
                                                   headers={"x-ms-diagnostics": DIAG_401})),
     "mailbox", "ews.401.2000008", 1),
    ("EWS ErrorServerBusy then OK", _fault(Fault("/EWS/", ews_error="ErrorServerBusy", retry_after=1, times=1)),
     "mailbox", None, 0),
    ("EWS ErrorServerBusy every time", _fault(Fault("/EWS/", ews_error="ErrorServerBusy", retry_after=1,
                                                    times=None)), "mailbox", "ErrorServerBusy", 1),
    ("wrong secret", _set(client_secret=sample.SECRET_VALUE[:-1] + "X"), "token", "AADSTS7000215", 1),
    ("sender without mailbox", _set(sender=sample.NO_MAILBOX), "mailbox", "ErrorNonExistentMailbox", 1),
]


@pytest.fixture
def ctx(request, wrong_name_server, tmp_path, monkeypatch):
    def wrong_name(sb):
        port, ca_pem = wrong_name_server
        bundle = tmp_path / "bundle.pem"
        bundle.write_bytes(Path(sb.ca_path).read_bytes() + ca_pem)
        return sb.config(port=port, ca_bundle=str(bundle))

    def hole():
        return request.getfixturevalue("blackhole")
    return {"wrong_name": wrong_name, "blackhole": hole, "env": monkeypatch.setenv}


@pytest.mark.parametrize("setup,failed,code,rc", [c[1:] for c in FAULTS], ids=[c[0] for c in FAULTS])
def test_fault(sandbox, tmp_path, capsys, tokens, no_dns, ctx, setup, failed, code, rc):
    path = write(tmp_path, setup(sandbox, ctx))
    start = time.monotonic()
    got, data, text = check_json(capsys, path)
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"the check took {elapsed:.1f} s"
    assert got == rc, data
    s = step(data, failed)
    if code is None:           # a transient fault that the retry rides out
        assert data["ok"] is True and s["status"] == "pass", s
    else:
        assert data["ok"] is False
        assert (s["status"], s["code"]) == ("fail", code), s
        assert s["fix"] and s["fix"].strip() and s["summary"]
        ids = [x["id"] for x in data["steps"]]
        assert all(x["status"] == "skip" for x in data["steps"][ids.index(failed) + 1:])
    # the readable tree for the same case (faults set up afresh): same exit code, the fix under the failure
    sandbox.reset()
    path = write(tmp_path, setup(sandbox, ctx), "again.toml")
    got2, out, err = run(capsys, "check", "--config", path)
    assert got2 == rc
    if code is not None:
        assert code in out and "fix:" in out
    assert_no_secrets(text + out + err, sandbox, tokens)


def test_dns_failure_sends_nothing_anywhere(sandbox, tmp_path, capsys, no_dns):
    path = write(tmp_path, sandbox.config(server="mail.nonexistent.invalid"))
    rc, data, _ = check_json(capsys, path)
    assert rc == 1 and no_dns == ["mail.nonexistent.invalid"]
    assert "mail.nonexistent.invalid" in step(data, "dns")["summary"]


def test_hanging_endpoint_fails_within_its_bound(sandbox, tmp_path, capsys, tokens, monkeypatch):
    # 0.8 s, not less: the TLS step before it reads with the same bound, and a loaded CI machine
    # (two suites on two cores) has taken over 0.3 s for a handshake.
    monkeypatch.setenv("MAILWIZARD_TIMEOUT", "2,0.8")
    sandbox.inject(Fault(TOKEN, hang=True))
    path = write(tmp_path, sandbox.config())
    start = time.monotonic()
    rc, data, _ = check_json(capsys, path)
    elapsed = time.monotonic() - start
    assert rc == 1 and step(data, "token")["code"] == "net.timeout", data
    assert 0.8 <= step(data, "token")["ms"] / 1000 < 2.5
    assert elapsed < 4.0, f"a 0.8 s read timeout took {elapsed:.1f} s"


def test_connect_timeout_is_bounded(sandbox, tmp_path, capsys, blackhole, monkeypatch):
    monkeypatch.setenv("MAILWIZARD_TIMEOUT", "0.3,2")
    path = write(tmp_path, sandbox.config(port=blackhole))
    start = time.monotonic()
    rc, data, _ = check_json(capsys, path)
    assert rc == 1 and step(data, "tcp")["code"] == "net.timeout"
    assert time.monotonic() - start < 1.5


def test_whole_check_is_bounded_even_when_everything_is_slow(sandbox, tmp_path, capsys, monkeypatch):
    # Every EWS call hangs: the sender and both incoming mailboxes would each
    # wait; the chain stops at the first failure, so one timeout is all it costs.
    monkeypatch.setenv("MAILWIZARD_TIMEOUT", "1,0.3")
    sandbox.inject(Fault("/EWS/", hang=True, times=None))
    path = write(tmp_path, sandbox.config())
    start = time.monotonic()
    rc, data, _ = check_json(capsys, path)
    assert rc == 1 and step(data, "mailbox")["code"] == "net.timeout"
    assert all(s["status"] == "skip" for s in data["steps"] if s["id"].startswith("mailbox:"))
    assert time.monotonic() - start < 2.0


def test_5xx_then_ok_is_retried_with_one_discovery(sandbox, tmp_path, capsys):
    sandbox.inject(Fault(TOKEN, status=503, times=2))
    rc, data, _ = check_json(capsys, write(tmp_path, sandbox.config()))
    assert rc == 0
    assert len([r for r in sandbox.requests if r.path == TOKEN]) == 3
    assert len([r for r in sandbox.requests if r.path == OIDC]) == 1


def test_403_after_registration_is_retried_within_its_bound_then_explained(sandbox, tmp_path, capsys):
    _new_registration(sandbox.tenant)
    rc, data, _ = check_json(capsys, write(tmp_path, sandbox.config()))
    mailbox = step(data, "mailbox")
    assert rc == 1 and mailbox["code"] == "ews.403"
    assert "Tried 5 times" in mailbox["summary"]
    assert "Wait a few minutes" in mailbox["fix"]
    assert len([r for r in sandbox.requests if r.path.startswith("/EWS/")]) == 5


def test_ews_policy_block_gives_powershell_and_graph(sandbox, tmp_path, capsys):
    _blocked(sandbox.tenant)
    rc, data, _ = check_json(capsys, write(tmp_path, sandbox.config()))
    fix = step(data, "mailbox")["fix"]
    assert rc == 1
    assert "Set-OrganizationConfig" in fix and f'@{{Add="{sample.SECRET_APP_ID}"}}' in fix
    assert "Graph" in fix


def test_401_keeps_the_diagnostics(sandbox, tmp_path, capsys):
    sandbox.inject(Fault("/EWS/", status=401, times=None, headers={"x-ms-diagnostics": DIAG_401}))
    rc, data, _ = check_json(capsys, write(tmp_path, sandbox.config()))
    mailbox = step(data, "mailbox")
    assert rc == 1 and mailbox["code"] == "ews.401.2000008"
    assert "full_access_as_app" in mailbox["fix"] + mailbox["summary"]


# -- bad config files: exit 2, the field named, no traceback -----------------------------------

BAD_CONFIGS = [
    # name, edit of the good file's text, what the message must name
    ("syntax error", lambda t: t.replace('flow = "client_secret"', 'flow = "client_secret'), ":13"),
    ("wrong type: port as text", lambda t: re.sub(r"port = \d+", 'port = "443"', t), "outgoing.port"),
    ("wrong type: date as number", lambda t: re.sub(r"secret_expires = \S+", "secret_expires = 20280518", t),
     "auth.secret_expires"),
    ("wrong type: section as value", lambda t: t.replace("[endpoints]\n", "endpoints = 1\n[nothing]\n"),
     "endpoints"),
    ("unknown key", lambda t: t.replace("[outgoing]\n", "[outgoing]\nservr = \"x\"\n"), "outgoing.servr"),
    ("unknown section", lambda t: t + "\n[smtp]\nhost = \"x\"\n", "smtp"),
    ("empty client ID", lambda t: re.sub(r'client_id = "[^"]*"', 'client_id = ""', t), "microsoft.client_id"),
    ("empty sender", lambda t: re.sub(r'sender = "[^"]*"', 'sender = ""', t), "outgoing.sender"),
    ("empty secret", lambda t: re.sub(r'client_secret = "[^"]*"', 'client_secret = ""', t), "auth.client_secret"),
    ("non-GUID client ID", lambda t: re.sub(r'client_id = "[^"]*"', 'client_id = "monitor-g5-app"', t),
     "microsoft.client_id"),
    ("Secret ID as the secret", lambda t: t.replace(sample.SECRET_VALUE, sample.SECRET_ID), "auth.client_secret"),
    ("env: reference not set", lambda t: t.replace(sample.SECRET_VALUE, "env:MW_TEST_NO_SUCH_VARIABLE"),
     "auth.client_secret"),
    ("file: reference missing", lambda t: t.replace(sample.SECRET_VALUE, "file:/nonexistent/mailwizard/secret"),
     "auth.client_secret"),
    ("port out of range", lambda t: re.sub(r"port = \d+", "port = 70000", t), "outgoing.port"),
    ("authority not https", lambda t: re.sub(r'authority = "https', 'authority = "http', t), "endpoints.authority"),
    ("CA bundle missing", lambda t: re.sub(r'ca_bundle = "[^"]*"', 'ca_bundle = "/nonexistent/ca.pem"', t),
     "endpoints.ca_bundle"),
]


@pytest.mark.parametrize("edit,named", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_exits_2_naming_the_field(sandbox, tmp_path, capsys, tokens, edit, named):
    good = config_io.render(sandbox.config())
    path = tmp_path / "bad.toml"
    path.write_text(edit(good), encoding="utf-8")
    assert path.read_text() != good
    rc, out, err = run(capsys, "check", "--config", str(path))
    assert rc == 2, out + err
    assert named in err and str(path) in err
    assert out == ""
    rc, data, text = check_json(capsys, str(path))
    assert rc == 2 and data["ok"] is False
    assert data["steps"][0]["id"] == "config" and data["steps"][0]["status"] == "fail"
    assert named in data["steps"][0]["summary"] and data["steps"][0]["fix"]
    assert sandbox.requests == []          # nothing was sent
    assert_no_secrets(out + err + text, sandbox, tokens)


def test_password_flow_reference_not_set(sandbox, tmp_path, capsys):
    cfg = sandbox.config(flow="password", password="env:MW_TEST_NO_SUCH_PASSWORD")
    for acc in cfg.incoming.accounts:
        acc.username = acc.password = ""
    path = write(tmp_path, cfg)
    rc, out, err = run(capsys, "check", "--config", path)
    assert rc == 2 and "auth.password" in err and "MW_TEST_NO_SUCH_PASSWORD" in err


def test_env_and_file_references_that_resolve_work(sandbox, tmp_path, capsys, monkeypatch, tokens):
    monkeypatch.setenv("MW_TEST_SECRET", sample.SECRET_VALUE)
    assert run(capsys, "check", "--config", write(tmp_path, sandbox.config(client_secret="env:MW_TEST_SECRET")))[0] == 0
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(sample.SECRET_VALUE + "\n")
    rc, data, text = check_json(capsys, write(tmp_path, sandbox.config(client_secret=f"file:{secret_file}"), "f.toml"))
    assert rc == 0
    assert_no_secrets(text, sandbox, tokens)


# -- proxies and CA bundles: MSAL and EWS alike ---------------------------------------------

def test_https_proxy_carries_every_connection(sandbox, tmp_path, capsys, monkeypatch, proxy, tokens):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    rc, data, text = check_json(capsys, write(tmp_path, sandbox.config()), "--send-to", sample.RECIPIENT)
    assert rc == 0, data
    target = f"127.0.0.1:{sandbox.port}"
    assert set(proxy.connects) == {target}
    # tcp step + tls step + MSAL's session + one EWS session per mailbox checked and the send
    assert len(proxy.connects) >= 4
    assert f"proxy 127.0.0.1:{proxy.port}" in step(data, "tcp")["summary"]
    assert f"proxy 127.0.0.1:{proxy.port}" in step(data, "tls")["summary"]
    assert any(r.path == TOKEN for r in sandbox.requests)
    assert any(r.path.startswith("/EWS/") for r in sandbox.requests)
    assert_no_secrets(text, sandbox, tokens)


def test_msal_and_ews_use_the_proxy(sandbox, monkeypatch, proxy):
    from wizard.identity.signin import acquire_token
    from wizard.runtime.ews_client import check_mailbox
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    cfg = sandbox.config()
    token = acquire_token(cfg)
    after_msal = len(proxy.connects)
    assert after_msal >= 1
    check_mailbox(cfg, token.access_token, sample.SENDER)
    assert len(proxy.connects) > after_msal


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
def test_no_proxy_bypasses_it(sandbox, tmp_path, capsys, monkeypatch, proxy, no_proxy):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    rc, data, _ = check_json(capsys, write(tmp_path, sandbox.config()))
    assert rc == 0, data
    assert proxy.connects == []
    assert "proxy" not in step(data, "tcp")["summary"]


def test_lower_case_proxy_variables_work_too(sandbox, tmp_path, capsys, monkeypatch, proxy):
    monkeypatch.setenv("https_proxy", proxy.url)
    rc, _, _ = check_json(capsys, write(tmp_path, sandbox.config()))
    assert rc == 0 and proxy.connects


def test_proxy_that_is_down(sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    rc, data, _ = check_json(capsys, write(tmp_path, sandbox.config()))
    tcp = step(data, "tcp")
    assert rc == 1 and (tcp["status"], tcp["code"]) == ("fail", "net.proxy") and tcp["fix"]
    assert "HTTPS_PROXY" in tcp["fix"]


def test_proxy_that_refuses_the_host(sandbox, tmp_path, capsys, monkeypatch):
    p = ConnectProxy(answer=403)
    try:
        monkeypatch.setenv("HTTPS_PROXY", p.url)
        rc, data, _ = check_json(capsys, write(tmp_path, sandbox.config()))
    finally:
        p.close()
    tcp = step(data, "tcp")
    assert rc == 1 and tcp["code"] == "net.proxy" and "403" in tcp["summary"]


def test_proxy_sign_in(sandbox, tmp_path, capsys, monkeypatch, tokens):
    p = ConnectProxy(credentials="mwuser:Pr0xy-Secret-99")
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{p.port}")
        rc, data, text = check_json(capsys, write(tmp_path, sandbox.config()))
        assert rc == 1 and step(data, "tcp")["code"] == "net.proxy" and "407" in step(data, "tcp")["summary"]
        monkeypatch.setenv("HTTPS_PROXY", f"http://mwuser:Pr0xy-Secret-99@127.0.0.1:{p.port}")
        rc, data, text2 = check_json(capsys, write(tmp_path, sandbox.config()))
        assert rc == 0, data
        assert p.connects
        assert_no_secrets(text + text2, sandbox, tokens, extra=["Pr0xy-Secret-99"])
    finally:
        p.close()


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_ca_bundle_from_the_environment(sandbox, tmp_path, capsys, monkeypatch, variable):
    monkeypatch.setenv(variable, sandbox.ca_path)
    rc, data, _ = check_json(capsys, write(tmp_path, sandbox.config(ca_bundle="")), "--send-to", sample.RECIPIENT)
    assert rc == 0, data        # TLS step, MSAL and EWS all trusted the sandbox CA


def test_config_ca_bundle_beats_the_environment(sandbox, tmp_path, capsys, monkeypatch):
    import certifi
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    rc, data, _ = check_json(capsys, write(tmp_path, sandbox.config()), "--send-to", sample.RECIPIENT)
    assert rc == 0, data


def test_corporate_ca_through_the_proxy(sandbox, tmp_path, capsys, monkeypatch, proxy):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("SSL_CERT_FILE", sandbox.ca_path)
    rc, data, _ = check_json(capsys, write(tmp_path, sandbox.config(ca_bundle="")))
    assert rc == 0 and proxy.connects


def test_verification_is_never_switched_off(sandbox):
    import certifi
    import requests
    from wizard.net.session import make_session
    cfg = sandbox.config(ca_bundle=certifi.where())
    with make_session(cfg) as session, pytest.raises(requests.exceptions.SSLError):
        session.get(f"{sandbox.base_url}{OIDC}", verify=False)


# -- the support bundle --------------------------------------------------------------------------

@pytest.mark.parametrize("outcome", ["failed", "passed"])
def test_report_has_no_secret_but_what_support_needs(sandbox, tmp_path, capsys, tokens, outcome):
    secret = sample.SECRET_VALUE if outcome == "passed" else sample.SECRET_VALUE[:-1] + "X"
    path = write(tmp_path, sandbox.config(client_secret=secret))
    rc, data, _ = check_json(capsys, path, "--send-to", sample.RECIPIENT)
    assert rc == (0 if outcome == "passed" else 1)
    bundle = tmp_path / "bundle.txt"
    rc, out, err = run(capsys, "report", "--config", path, "-o", str(bundle))
    assert rc == 0 and str(bundle) in out
    text = bundle.read_text(encoding="utf-8")
    assert_no_secrets(text + out + err, sandbox, tokens, extra=[secret])
    from wizard import __version__
    assert f"mailwizard: {__version__}" in text and "python:" in text and "msal:" in text
    assert secret[:3] + "********" in text                      # the masked config
    assert sample.SECRET_APP_ID in text and sample.TENANT_ID in text
    last = json.loads(text.split("== last check\n", 1)[1])
    assert_shape({k: last["report"][k] for k in ("ok", "steps")})
    assert [s["code"] for s in last["report"]["steps"]] == [s["code"] for s in data["steps"]]
    if outcome == "failed":
        assert "AADSTS7000215" in text
        token_details = next(d for d in last["report"]["details"] if d["id"] == "token")
        assert re.fullmatch(r"[0-9a-f-]{36}", token_details["trace_id"])
        assert re.fullmatch(r"[0-9a-f-]{36}", token_details["correlation_id"])
    # to stdout as well, equally clean
    rc, out, err = run(capsys, "report", "--config", path)
    assert rc == 0 and "== last check" in out
    assert_no_secrets(out + err, sandbox, tokens, extra=[secret])


# -- start-up and terminal behaviour ----------------------------------------------------------

def test_check_does_not_import_textual(sandbox, tmp_path):
    import subprocess
    import sys
    path = write(tmp_path, sandbox.config())
    code = ("import sys\nfrom wizard.cli.main import main\n"
            f"rc = main(['check', '--json', '--config', {path!r}])\n"
            "print('RESULT', rc, 'textual' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip().splitlines()[-1] == "RESULT 0 False"


def test_colour_only_on_a_terminal_and_no_color_honoured(monkeypatch):
    from wizard.cli.output import use_colour

    class Tty:
        def isatty(self):
            return True
    monkeypatch.setenv("TERM", "xterm")
    assert use_colour(Tty()) is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_colour(Tty()) is False
    monkeypatch.delenv("NO_COLOR")
    with open(__file__) as not_a_tty:
        assert use_colour(not_a_tty) is False


def test_proxy_url_forms(monkeypatch):
    from wizard.net import probes as netcheck
    monkeypatch.setenv("HTTPS_PROXY", "http://user:S3cret-Pass@proxy.example")
    assert netcheck.proxy_for("outlook.office365.com") == ("proxy.example", 80)     # as requests uses it
    assert netcheck.proxy_secrets() == ["S3cret-Pass", "S3cret-Pass"]
    monkeypatch.setenv("HTTPS_PROXY", "proxy.example:3128")
    assert netcheck.proxy_for("outlook.office365.com") == ("proxy.example", 3128)
    monkeypatch.setenv("NO_PROXY", ".office365.com")
    assert netcheck.proxy_for("outlook.office365.com") is None


# -- Ctrl-C (issue 14, item 16) ------------------------------------------------------------

@pytest.mark.parametrize("as_json", [True, False])
def test_ctrl_c_in_the_middle_still_prints_the_report(sandbox, tmp_path, monkeypatch, as_json):
    """`check --json` stopped with Ctrl-C while the mailbox step waits on a server that
    never answers: exit 130 and still exactly one JSON object on stdout, the finished steps
    as they ended and the rest "skip", ok false (without --json: the tree)."""
    import os
    import signal
    import subprocess
    import sys

    path = write(tmp_path, sandbox.config())
    waiting = threading.Event()
    real = sandbox.dispatch

    def dispatch(method, target, headers, body):
        if target.lower().startswith("/ews/"):
            waiting.set()                  # the mailbox step is running
        return real(method, target, headers, body)
    monkeypatch.setattr(sandbox, "dispatch", dispatch)
    sandbox.inject(Fault("/EWS/", hang=True, times=None))
    env = dict(os.environ, MAILWIZARD_TIMEOUT="60,60", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    argv = [sys.executable, "-m", "wizard", "check", "--config", path] + (["--json"] if as_json else [])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert waiting.wait(30), "the check never reached the mailbox step"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err and "interrupted" in err
    if not as_json:
        assert "Result: FAILED" in out and "interrupted (Ctrl-C)" in out
        return
    data = json.loads(out)
    assert_shape(data)
    statuses = {s["id"]: s["status"] for s in data["steps"]}
    assert data["ok"] is False
    assert [statuses[i] for i in ("config", "dns", "tcp", "tls", "token", "claims")] == ["pass"] * 6, statuses
    assert statuses["mailbox"] == "skip" and "interrupted" in step(data, "mailbox")["summary"]
    assert all(statuses[f"mailbox:{a}"] == "skip" for a in sample.INCOMING)
    assert sample.SECRET_VALUE not in out + err
