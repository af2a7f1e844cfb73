"""The relay's DATA: UTF-8 header addresses (RFC 6531/6532), bare-LF messages of any size stored with CRLF,
and only CRLF.CRLF ending DATA (no SMTP smuggling). Real smtplib against the relay and the sandbox."""

from __future__ import annotations

import base64
import smtplib
import socket

import pytest

from relay_helpers import (login, PASSWORD, SENDER, TO, RunningRelay, inbox_ids, message, relay_config, wait_for)
from wizard.config.relay import RelayClient
from wizard.relay.auth import hash_password
from wizard.sandbox.tenant import Mailbox

UTF8_SENDER, UTF8_TO = "üser@contoso.com", "rëcipient@contoso.com"


_login = login


def _journal(spool, mid: str) -> dict:
    return next(j for where in ("queue", "done", "dead") for j in [spool.journal(mid, where)] if j)


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
            assert s.mail(UTF8_SENDER, ["SMTPUTF8"])[0] == 250 and s.rcpt(UTF8_TO)[0] == 250
            code, reply = s.data(raw)
            assert code == 250, reply
        got = wait_for(lambda: [x for x in sandbox.tenant.mailbox(UTF8_TO).inbox
                                if x.internet_message_id == m["Message-ID"]], what="the UTF-8 message")
        assert got
        wait_for(lambda: not r.spool.ids(), what="both out of the queue")     # a listing meanwhile counts one twice
        journals = [_journal(r.spool, mid) for mid in r.spool.ids("done") + r.spool.ids("dead")]
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


def _drafts(sandbox) -> list[bytes]:
    """The MIME of every draft the relay made over Graph (POST /users/{from}/messages, base64)."""
    return [base64.b64decode(q.body) for q in sandbox.requests if q.method == "POST" and q.path.endswith("/messages")]


@pytest.mark.parametrize("lines", [3, 200, 240, 6000])          # ~0.3 KB, 11 KB, 13 KB, 330 KB
def test_bare_lf_messages_of_any_size_are_taken_and_go_to_exchange_with_crlf(sandbox, relay, lines):
    """``sendmail(frm, to, msg.as_bytes())`` sends LF line ends: taken at any size (aiosmtpd counted such a
    message as one line: "500 Line too long" from about 12 KB on) and stored with CRLF (Exchange Online
    refuses bare LF), dot-stuffed lines (smtplib doubles a leading ".") unstuffed."""
    body = "".join(f".{i} line of an invoice, with some words to make it longer\n" if i % 7 == 0 else
                   f"{i} line of an invoice, with some words to make it longer\n" for i in range(lines)) + ".\n"
    m = message(body=body)
    raw = m.as_bytes()
    assert b"\r" not in raw and b"\n.0 line" in raw
    with _login(relay.port) as s:
        assert s.sendmail(SENDER, [TO], raw) == {}
    wait_for(lambda: m["Message-ID"] in inbox_ids(sandbox, TO), what="the bare-LF message")
    # smtplib ends the data with CRLF before the final ".": one empty line more
    assert [d for d in _drafts(sandbox) if m["Message-ID"].encode() in d] == [raw.replace(b"\n", b"\r\n") + b"\r\n"]


def test_only_crlf_dot_crlf_ends_data(sandbox, relay):
    """A "." line after a bare LF or ending in one is content, never the end of DATA (SMTP smuggling: the
    commands after it would otherwise run as a second message, here with a forged sender)."""
    smuggled = (b"one\n.\nMAIL FROM:<ceo@contoso.com>\r\n"
                b"two\n.\r\nRCPT TO:<orders@contoso.com>\r\n"
                b"three\r\n.\nDATA\r\n"
                b"four\r.\r\nFrom: ceo@contoso.com\r\n")
    head = message(subject="smuggling").as_bytes(policy=message().policy.clone(linesep="\r\n"))
    with _login(relay.port) as s:
        assert s.mail(SENDER)[0] == 250 and s.rcpt(TO)[0] == 250
        s.putcmd("data")
        assert s.getreply()[0] == 354
        s.send(head + smuggled + b"end\r\n.\r\n")
        code, reply = s.getreply()
        assert code == 250 and b"queued as" in reply, reply
        assert s.noop() == (250, b"OK")                            # no replies to smuggled commands pending
    wait_for(lambda: relay.status()["delivered_today"] == 1, what="the one message")
    stored = [d for d in _drafts(sandbox) if b"smuggling" in d]
    assert len(stored) == 1 and stored[0].endswith(b"one\r\n.\r\nMAIL FROM:<ceo@contoso.com>\r\ntwo\r\n.\r\n"
                                                 b"RCPT TO:<orders@contoso.com>\r\nthree\r\n.\r\nDATA\r\n"
                                                 b"four\r.\r\nFrom: ceo@contoso.com\r\nend\r\n")
    assert inbox_ids(sandbox, "orders@contoso.com") == [] and relay.spool.ids() == []


def test_bare_lf_over_the_size_gets_552_and_a_line_over_the_limit_500_naming_it(sandbox, tmp_path):
    r = RunningRelay(relay_config(sandbox, tmp_path, max_size_mb=1))
    try:
        with _login(r.port) as s:
            big = message(body=("x" * 70 + "\n") * 16000).as_bytes()               # ~1.1 MB, LF line ends
            assert s.mail(SENDER)[0] == 250 and s.rcpt(TO)[0] == 250            # no SIZE= given
            code, reply = s.data(big)
            assert code == 552 and b"(1 MB)" in reply
            s.rset()
            head = f"From: {SENDER}\nTo: {TO}\nSubject: long lines\n\n".encode()
            with pytest.raises(smtplib.SMTPDataError) as exc:
                s.sendmail(SENDER, [TO], head + b"y" * 13000 + b"\n")                   # one line of 13 KB
            assert exc.value.smtp_code == 500 and b"lines of up to 12288 octets" in exc.value.smtp_error
            assert s.sendmail(SENDER, [TO], head + b"z" * 12000 + b"\nshort\n") == {}
            assert s.noop()[0] == 250
    finally:
        r.close()


def test_a_large_message_is_held_once_while_it_is_read(tmp_path):
    """DATA reads into one buffer and only the header section is parsed: the relay holds a message about
    once (aiosmtpd's list of lines, its join and a parse of the whole message held a 35 MB one ~8 times)."""
    import tracemalloc
    from wizard.config.relay import Relay
    from wizard.relay import server

    class Spool:
        def store(self, data, journal):
            stored.append(len(data))
            return "m1"
    stored: list[int] = []
    relay_cfg = Relay(listen="127.0.0.1:0", spool=str(tmp_path), clients=[
        RelayClient(name="erp", password_hash=hash_password(PASSWORD), senders=[SENDER])])
    controller = server.make_controller(relay_cfg, server.Handler(relay_cfg, Spool()))
    controller.start()
    body = b"".join(b"%08d " % i + b"x" * 66 + b"\r\n" for i in range(60000))       # 4.6 MB
    payload = f"From: {SENDER}\r\nTo: {TO}\r\nSubject: big\r\n\r\n".encode() + body + b".\r\n"
    try:
        with socket.create_connection(("127.0.0.1", controller.port), timeout=30) as sock:
            auth = base64.b64encode(f"\0erp\0{PASSWORD}".encode())
            sock.sendall(b"EHLO test\r\nAUTH PLAIN " + auth + b"\r\n")
            replies = sock.makefile("rb")
            while not replies.readline().startswith(b"235"):
                pass
            sock.sendall(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{TO}>\r\nDATA\r\n".encode())
            assert [replies.readline()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
            tracemalloc.start()
            try:
                sock.sendall(payload)
                reply = replies.readline()
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        assert reply.startswith(b"250 2.0.0 OK queued as m1"), reply
        assert stored == [len(payload) - 3]                                       # all but the final ".\r\n"
        assert peak < 1.5 * len(payload), f"{peak / len(payload):.1f} times the message"
    finally:
        controller.stop()


@pytest.mark.parametrize("subject", ["Bestellung für Müller".encode(), b"=?utf-8?q?Bestellung_f=C3=BCr_M=C3=BCller?="])
def test_a_dsn_reads_a_utf8_or_encoded_subject_as_written(subject):
    """The bounce of a message whose Subject is UTF-8 (SMTPUTF8) or RFC 2047 says "Undeliverable: " and that
    subject in words, and quotes the original header section only (never the body)."""
    import email
    import email.policy

    from wizard.relay.dsn import build
    original = (b"From: erp@contoso.com\r\nTo: x@example.com\r\nSubject: " + subject +
                b"\r\nMessage-ID: <s1@contoso.com>\r\n\r\n" + b"body line\r\n" * 1000)
    journal = {"id": "01a", "sender": SENDER, "mail_from": SENDER, "rcpts": ["x@example.com"], "received": 0}
    dsn = email.message_from_bytes(build(journal, original, "smtp.rcpt: no such user"), policy=email.policy.default)
    assert dsn["Subject"] == "Undeliverable: Bestellung für Müller"
    quoted = [p for p in dsn.walk() if p.get_content_type() == "text/rfc822-headers"][0].get_content()
    assert "Message-ID: <s1@contoso.com>" in quoted and "body line" not in quoted
