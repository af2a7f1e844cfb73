"""The relay's IMAP pass-through: imaplib and curl log in with relay credentials and read the client's
mailbox, which the relay opened upstream with XOAUTH2 (the sandbox's IMAP server)."""

from __future__ import annotations

import imaplib
import shutil
import subprocess
import time

import pytest

from relay_helpers import PASSWORD, RunningRelay, relay_config, wait_for
from wizard.config.relay import RelayClient
from wizard.relay.auth import hash_password

MAILBOX = "orders@contoso.com"


@pytest.fixture
def relay(sandbox, tmp_path):
    from wizard.sandbox.mailstore import deliver, from_mime
    msg = from_mime(b"From: customer@example.com\r\nTo: orders@contoso.com\r\nSubject: Order 42\r\n"
                    b"Message-ID: <order42@example.com>\r\n\r\nTwo boxes, please.\r\n")
    deliver(sandbox.tenant, msg, [MAILBOX])
    cfg = relay_config(sandbox, tmp_path, protocol="graph+imap", clients=[
        RelayClient(name="esm", password_hash=hash_password(PASSWORD), senders=["invoices@contoso.com"],
                    mailbox=MAILBOX)])
    r = RunningRelay(cfg)
    wait_for(lambda: r.imap_port, what="the IMAP listener")
    yield r
    r.close()


def test_imaplib_reads_the_clients_mailbox_through_the_relay(relay):
    with imaplib.IMAP4("127.0.0.1", relay.imap_port[0], timeout=10) as imap:
        assert "AUTH=PLAIN" in imap.capabilities
        imap.login("esm", PASSWORD)
        assert imap.select("INBOX")[0] == "OK"
        typ, data = imap.search(None, "ALL")
        assert typ == "OK" and data[0].split()
        typ, parts = imap.fetch(data[0].split()[-1], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Order 42" in parts[0][1]
    assert any("imap: esm opened orders@contoso.com" in line for line in relay.lines)


def test_wrong_password_refused_after_a_delay(relay):
    with imaplib.IMAP4("127.0.0.1", relay.imap_port[0], timeout=10) as imap:
        started = time.monotonic()
        with pytest.raises(imaplib.IMAP4.error) as exc:
            imap.login("esm", "wrong")
        assert "AUTHENTICATIONFAILED" in str(exc.value) and time.monotonic() - started >= 0.9
    assert any("imap: refused login for 'esm'" in line for line in relay.lines)


def test_authenticate_plain(relay):
    with imaplib.IMAP4("127.0.0.1", relay.imap_port[0], timeout=10) as imap:
        assert imap.authenticate("PLAIN", lambda _: f"\0esm\0{PASSWORD}".encode())[0] == "OK"
        assert imap.select("INBOX", readonly=True)[0] == "OK"


def test_curl_lists_the_mailbox(relay):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    out = subprocess.run(["curl", "-sS", f"imap://127.0.0.1:{relay.imap_port[0]}/INBOX?ALL",
                          "--user", f"esm:{PASSWORD}"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("* SEARCH") and out.stdout.split()[2:]


@pytest.fixture
def tls_relay(sandbox, tmp_path):
    """The pass-through with a certificate (implicit TLS), a client whose mailbox holds an 8 MB message."""
    import os
    from email.message import EmailMessage
    from wizard.sandbox.mailstore import deliver, from_mime
    big = EmailMessage()
    big["From"], big["To"], big["Subject"] = "scanner@example.com", MAILBOX, "Scans"
    big.set_content("Scans attached.\n")
    payload = os.urandom(6 * 1024 * 1024)
    big.add_attachment(payload, maintype="application", subtype="octet-stream", filename="scans.bin")
    raw = big.as_bytes()
    deliver(sandbox.tenant, from_mime(raw), [MAILBOX])
    mat = sandbox.material
    cfg = relay_config(sandbox, tmp_path, protocol="graph+imap", certificate=mat.cert_path, key=mat.key_path,
                       clients=[RelayClient(name="esm", password_hash=hash_password(PASSWORD),
                                            senders=["invoices@contoso.com"], mailbox=MAILBOX)])
    r = RunningRelay(cfg)
    wait_for(lambda: r.imap_port, what="the IMAP listener")
    yield r, payload
    r.close()


def _tls_imap(sandbox, port):
    import ssl
    return imaplib.IMAP4_SSL("127.0.0.1", port, timeout=30,
                             ssl_context=ssl.create_default_context(cafile=sandbox.ca_path))


def test_a_large_message_passes_whole_over_tls(sandbox, tls_relay):
    """An 8 MB FETCH through the pass-through: TLS records arrive in pieces on both sides
    (a partial record is a wait, not the end of the session)."""
    import email
    import email.policy
    r, payload = tls_relay
    for _ in range(2):
        with _tls_imap(sandbox, r.imap_port[0]) as imap:
            imap.login("esm", PASSWORD)
            imap.select("INBOX", readonly=True)
            typ, data = imap.fetch("1", "(BODY.PEEK[])")
            assert typ == "OK"
            got = email.message_from_bytes(data[0][1], policy=email.policy.default)
            attachment = next(got.iter_attachments())
            assert attachment.get_content() == payload          # all 6 MB, nothing cut
            # what the client sends right behind its login arrives too (bytes TLS already decrypted)
            tags = [imap._new_tag() for _ in range(300)]
            imap.send(b"".join(t + b" NOOP\r\n" for t in tags))
            answered = set()
            while len(answered) < len(tags):
                line = imap.readline()
                assert line, "the pass-through dropped the session"
                answered.add(line.split(b" ", 1)[0])


def test_a_plain_client_on_the_tls_port_is_logged(sandbox, tls_relay):
    import socket
    r, _ = tls_relay
    with socket.create_connection(("127.0.0.1", r.imap_port[0]), timeout=10) as s:
        s.sendall(b"a1 CAPABILITY\r\n")
        try:
            s.recv(100)
        except OSError:                                  # the relay closes it: no TLS hello came
            pass
    wait_for(lambda: any("TLS handshake with 127.0.0.1 failed" in line for line in r.lines),
             what="the handshake log line")


def test_authenticate_plain_as_another_client_is_refused(relay):
    import base64
    with imaplib.IMAP4("127.0.0.1", relay.imap_port[0], timeout=10) as imap:
        blob = base64.b64encode(f"someone-else\0esm\0{PASSWORD}".encode()).decode()
        typ, data = imap._simple_command("AUTHENTICATE", "PLAIN", blob)
        assert typ == "NO" and b"may not act as" in data[-1]


@pytest.mark.parametrize("plus", ["", "+"])
def test_login_with_literals_and_the_password_never_comes_back(relay, plus):
    """`LOGIN esm {14}` with the password as a literal (RFC 3501; `{14+}` without waiting, RFC 7888),
    as clients do for a password with odd characters: logged in, and no reply repeats the password."""
    import socket
    with socket.create_connection(("127.0.0.1", relay.imap_port[0]), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(f"a1 LOGIN {{3{plus}}}\r\n".encode())
        if not plus:
            assert f.readline().startswith(b"+ ")
        s.sendall(f"esm {{{len(PASSWORD)}{plus}}}\r\n".encode())
        if not plus:
            assert f.readline().startswith(b"+ ")
        s.sendall(PASSWORD.encode() + b"\r\n")
        said = f.readline()
        assert said.startswith(b"a1 OK"), said
        s.sendall(b"a2 LOGOUT\r\n")
        rest = f.read()
    assert PASSWORD.encode() not in said + rest
