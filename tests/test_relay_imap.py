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
