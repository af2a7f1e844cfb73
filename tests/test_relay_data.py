"""The relay's DATA: UTF-8 header addresses (RFC 6531/6532), bare-LF messages of any size stored with CRLF,
and only CRLF.CRLF ending DATA (no SMTP smuggling). Real smtplib against the relay and the sandbox."""

from __future__ import annotations

import base64
import smtplib
import socket
from email.message import EmailMessage

import pytest

from relay_helpers import PASSWORD, SENDER, TO, RunningRelay, message, relay_config, wait_for
from wizard.config.relay import RelayClient
from wizard.relay.auth import hash_password
from wizard.sandbox.tenant import Mailbox

UTF8_SENDER, UTF8_TO = "üser@contoso.com", "rëcipient@contoso.com"


@pytest.fixture
def relay(sandbox, tmp_path):
    r = RunningRelay(relay_config(sandbox, tmp_path))
    yield r
    r.close()


def _login(port: int, user: str = "erp", password: str = PASSWORD) -> smtplib.SMTP:
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    s.login(user, password)
    return s


def _journal(spool, mid: str) -> dict:
    return next(j for where in ("queue", "done", "dead") for j in [spool.journal(mid, where)] if j)


def _stored(spool, mid: str) -> bytes:
    for where in ("queue", "done", "dead"):
        try:
            return spool.message(mid, where)
        except OSError:
            pass
    raise AssertionError(f"{mid} is not in the spool")


def _queued_as(reply: bytes) -> str:
    return reply.decode().rsplit(" ", 1)[-1]


def test_utf8_header_addresses_smtputf8_are_read_as_utf8(sandbox, tmp_path):
    """smtplib sends MAIL FROM:<üser@...> SMTPUTF8 and the header From: üser@... in raw UTF-8 (RFC 6532):
    the header sender is allowed (case-insensitively, as MAIL FROM), the UTF-8 To: is a visible recipient
    (no Bcc: to Graph), and Python's RFC 2047-encoded form of the same address is understood too."""
    sandbox.tenant.mailboxes += [Mailbox(UTF8_SENDER), Mailbox(UTF8_TO)]
    cfg = relay_config(sandbox, tmp_path, clients=[
        RelayClient(name="other", password_hash=hash_password(PASSWORD), senders=[UTF8_SENDER, "other@contoso.com"])])
    r = RunningRelay(cfg)
    try:
        m = message(sender="Üser <ÜSER@contoso.com>", to=f"Jürgen Müller <{UTF8_TO}>", subject="Grüße")
        with _login(r.port, "other") as s:
            s.ehlo()
            assert "smtputf8" in s.esmtp_features
            assert s.send_message(m, from_addr=UTF8_SENDER) == {}           # SMTPUTF8, raw UTF-8 headers
            # the same address as EmailMessage.as_bytes() writes it: =?utf-8?q?=C3=BCser?=@contoso.com
            encoded = message(sender=UTF8_SENDER, to=UTF8_TO, subject="encoded")
            raw = encoded.as_bytes(policy=encoded.policy.clone(linesep="\r\n"))
            assert b"=?utf-8?q?=C3=BCser?=@contoso.com" in raw
            code, reply = s.data(raw) if (s.mail(UTF8_SENDER, ["SMTPUTF8"])[0] == 250
                                          and s.rcpt(UTF8_TO)[0] == 250) else (0, b"")
            assert code == 250, reply
        got = wait_for(lambda: [x for x in sandbox.tenant.mailbox(UTF8_TO).inbox
                                if x.internet_message_id == m["Message-ID"]], what="the UTF-8 message")
        assert got
        journals = [_journal(r.spool, mid) for mid in r.spool.ids() + r.spool.ids("done") + r.spool.ids("dead")]
        assert len(journals) == 2 and all(j["bcc"] == [] for j in journals), journals
        drafts = [q.body for q in sandbox.requests if q.method == "POST" and q.path.endswith("/messages")]
        assert drafts and not any(b"Bcc:" in base64.b64decode(body) for body in drafts)
    finally:
        r.close()


def test_utf8_header_from_not_among_senders_is_named_readably(sandbox, relay):
    m = message(sender="ëve@contoso.com")
    with _login(relay.port) as s:
        with pytest.raises(smtplib.SMTPDataError) as exc:
            s.send_message(m, from_addr=SENDER)
    assert exc.value.smtp_code == 553
    assert "Header From <ëve@contoso.com> is not allowed" in exc.value.smtp_error.decode("utf-8")
    assert relay.spool.ids() == []
