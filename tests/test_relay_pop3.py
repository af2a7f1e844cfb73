"""The relay's POP3 side: poplib and curl log in with relay credentials and read the client's INBOX,
which the relay reads over the upstream IMAP session (XOAUTH2, the sandbox's IMAP server)."""

from __future__ import annotations

import base64
import os
import poplib
import shutil
import socket
import subprocess
import time

import pytest

from relay_helpers import PASSWORD, RunningRelay, relay_config, wait_for
from wizard.config.relay import RelayClient
from wizard.relay.auth import hash_password
from wizard.relay.pop3 import PIECE, PopText

MAILBOX = "orders@contoso.com"
TRICKY = (b"From: customer@example.com\r\nTo: orders@contoso.com\r\nSubject: Order 42\r\n"
          b"Message-ID: <order42@example.com>\r\n\r\nTwo boxes, please.\n.\n..two dots\n.hidden line\nlast line\n")


def _big() -> bytes:
    """A message larger than two upstream pieces (its base64 lines cross the piece boundaries)."""
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = "scanner@example.com", MAILBOX, "Scan 7", "<scan7@example.com>"
    m.set_content("The scan is attached.\n.\n")
    m.add_attachment(os.urandom(PIECE * 2), maintype="application", subtype="pdf", filename="scan.pdf")
    return m.as_bytes()


@pytest.fixture
def relay(sandbox, tmp_path):
    from wizard.sandbox.mailstore import deliver, from_mime
    for raw in (TRICKY, _big()):
        deliver(sandbox.tenant, from_mime(raw), [MAILBOX])
    cfg = relay_config(sandbox, tmp_path, protocol="graph+imap", pop3_listen="127.0.0.1:0", clients=[
        RelayClient(name="esm", password_hash=hash_password(PASSWORD), senders=["invoices@contoso.com"],
                    mailbox=MAILBOX),
        RelayClient(name="ghost", password_hash=hash_password(PASSWORD), senders=["nomailbox@contoso.com"])])
    r = RunningRelay(cfg)
    wait_for(lambda: r.pop3_port, what="the POP3 listener")
    r.sandbox = sandbox
    yield r
    r.close()


def _inbox(r) -> list:
    return list(r.sandbox.tenant.mailbox(MAILBOX).inbox)


def _stored(r) -> list[bytes]:
    """The bytes the upstream IMAP server serves for each INBOX message, in UID order."""
    from wizard.sandbox.mailstore import to_mime
    return [to_mime(m) for m in _inbox(r)]


def _pop(r, user="esm", password=PASSWORD) -> poplib.POP3:
    pop = poplib.POP3("127.0.0.1", r.pop3_port[0], timeout=20)
    pop.user(user)
    pop.pass_(password)
    return pop


def test_poplib_lists_and_retrieves_the_exact_bytes(relay):
    stored = _stored(relay)
    pop = _pop(relay)
    caps = pop.capa()
    assert {"USER", "UIDL", "TOP", "SASL", "RESP-CODES", "AUTH-RESP-CODE"} <= set(caps) and caps["SASL"] == ["PLAIN"]
    assert pop.stat() == (2, sum(map(len, stored)))
    assert pop.list()[1] == [f"{n} {len(raw)}".encode() for n, raw in enumerate(stored, 1)]
    for n, raw in enumerate(stored, 1):
        resp, lines, _ = pop.retr(n)
        assert resp == f"+OK {len(raw)} octets".encode()
        assert b"\r\n".join(lines) + b"\r\n" == raw            # dot-stuffing undone by poplib: the same bytes
    head, _, body = stored[0].partition(b"\r\n\r\n")
    assert b"\r\n".join(pop.top(1, 2)[1]) == head + b"\r\n\r\n" + b"\r\n".join(body.split(b"\r\n")[:2])
    assert pop.top(2, 0)[1][-1] == b"" and b"Subject: Scan 7" in b"\r\n".join(pop.top(2, 0)[1])
    assert pop.quit().startswith(b"+OK")
    assert len(_inbox(relay)) == 2 and not any(m.is_read for m in _inbox(relay))    # RETR does not mark \Seen
    assert any("pop3: esm opened orders@contoso.com (2 message(s)" in line for line in relay.lines)


def test_dele_quit_removes_upstream_rset_and_a_dropped_session_do_not(relay):
    pop = _pop(relay)
    uidls = pop.uidl()[1]
    pop.dele(1)
    with pytest.raises(poplib.error_proto, match="already deleted"):
        pop.retr(1)
    assert pop.stat()[0] == 1 and pop.noop().startswith(b"+OK")
    pop.rset()
    pop.quit()
    assert len(_inbox(relay)) == 2
    pop = _pop(relay)
    pop.dele(1)
    pop.close()                                                # gone without QUIT: no UPDATE state
    wait_for(lambda: any("esm left orders@contoso.com without QUIT: nothing deleted (1 DELE undone)" in line
                         for line in relay.lines), 10, "the dropped session's log line")
    assert len(_inbox(relay)) == 2
    pop = _pop(relay)
    assert pop.uidl()[1] == uidls                              # stable across sessions
    pop.dele(1)
    assert pop.quit() == b"+OK mailwizard relay POP3 signing off (1 message(s) deleted)"
    assert [m.subject for m in _inbox(relay)] == ["Scan 7"]
    pop = _pop(relay)
    assert pop.uidl()[1] == [b"1 " + uidls[1].split()[1]]      # the other keeps its UIDL; numbers start at 1
    pop.quit()
    assert any("pop3: esm closed orders@contoso.com: 1 message(s) deleted" in line for line in relay.lines)


def test_one_session_per_mailbox_in_use_until_it_ends(relay):
    """RFC 1939's exclusive lock: a second poll while one is open gets [IN-USE] (RFC 2449) instead of the
    same messages (two overlapping polls would both take them); the lock goes with the session."""
    first = _pop(relay)
    second = poplib.POP3("127.0.0.1", relay.pop3_port[0], timeout=20)
    second.user("esm")
    with pytest.raises(poplib.error_proto, match=r"^b.-ERR \[IN-USE\] orders@contoso.com is open in another POP3 "
                                                 r"session \(esm from 127.0.0.1 since \d\d:\d\d:\d\d\)"):
        second.pass_(PASSWORD)
    first.dele(1)
    first.quit()
    second.user("esm")                           # the same connection may try again once it is free
    assert second.pass_(PASSWORD).startswith(b"+OK orders@contoso.com has 1 message(s)")
    second.close()                               # gone without QUIT: the lock goes too
    wait_for(lambda: any("esm left orders@contoso.com without QUIT" in line for line in relay.lines), 10,
             "the dropped session's end")
    for _ in range(10):                          # polls back to back: each QUIT frees it before its reply
        _pop(relay).quit()
    assert [m.subject for m in _inbox(relay)] == ["Scan 7"]


def test_another_clients_deleted_messages_are_neither_shown_nor_expunged(relay):
    other = _inbox(relay)[0]
    other.flags.add("\\Deleted")                              # flagged by another IMAP client, not expunged
    pop = _pop(relay)
    assert pop.stat()[0] == 1
    pop.dele(1)
    pop.quit()
    assert _inbox(relay) == [other]                            # UID EXPUNGE removed exactly ours


def test_wrong_password_refused_after_a_delay(relay):
    pop = poplib.POP3("127.0.0.1", relay.pop3_port[0], timeout=20)
    pop.user("esm")
    started = time.monotonic()
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        pop.pass_("wrong")
    assert time.monotonic() - started >= 0.9
    with pytest.raises(poplib.error_proto, match="log in first"):
        pop.stat()
    pop.quit()
    assert any("pop3: refused login for 'esm' from 127.0.0.1" in line for line in relay.lines)


def test_auth_plain_with_and_without_an_initial_response(relay):
    blob = base64.b64encode(f"\0esm\0{PASSWORD}".encode()).decode()
    with socket.create_connection(("127.0.0.1", relay.pop3_port[0]), timeout=20) as s:
        f = s.makefile("rwb")
        assert f.readline().startswith(b"+OK")
        f.write(b"AUTH PLAIN\r\n")
        f.flush()
        assert f.readline() == b"+ \r\n"
        f.write(blob.encode() + b"\r\nSTAT\r\nQUIT\r\n")       # pipelined: answered in order
        f.flush()
        assert f.readline().startswith(b"+OK orders@contoso.com has 2 message(s)")
        assert f.readline().startswith(b"+OK 2 ")
        assert f.readline().startswith(b"+OK")
    with socket.create_connection(("127.0.0.1", relay.pop3_port[0]), timeout=20) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(f"AUTH PLAIN {blob}\r\nQUIT\r\n".encode())
        f.flush()
        assert f.readline().startswith(b"+OK orders@contoso.com")


def test_upstream_failure_is_a_temporary_error_in_plain_words(relay):
    pop = poplib.POP3("127.0.0.1", relay.pop3_port[0], timeout=20)
    pop.user("ghost")
    with pytest.raises(poplib.error_proto) as exc:
        pop.pass_(PASSWORD)
    said = exc.value.args[0].decode()
    assert said.startswith("-ERR [SYS/TEMP] The relay could not open nomailbox@contoso.com upstream (")
    assert "Traceback" not in said
    pop.quit()
    logged = [line for line in relay.lines if "pop3: ghost: upstream sign-in to nomailbox@contoso.com failed" in line]
    assert logged and "Fix: " in logged[0]                     # the log line says what to do


def test_curl_lists_and_retrieves(relay):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    stored = _stored(relay)
    url = f"pop3://127.0.0.1:{relay.pop3_port[0]}/"
    listing = subprocess.run(["curl", "-sS", url, "--user", f"esm:{PASSWORD}"], capture_output=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout == b"".join(f"{n} {len(raw)}\r\n".encode() for n, raw in enumerate(stored, 1))
    got = subprocess.run(["curl", "-sS", url + "1", "--user", f"esm:{PASSWORD}", "--login-options", "AUTH=PLAIN"],
                         capture_output=True, timeout=30)
    assert got.returncode == 0, got.stderr
    assert got.stdout == stored[0]


@pytest.mark.parametrize("pieces", [1, 2, 7])
def test_pop_text_is_the_same_whatever_the_pieces(pieces):
    raw = b".first\r\nbare lf\n..x\r\n\r\n.\r\n" + b"y" * 40 + b"\r\n.end"
    want = b"..first\r\nbare lf\r\n...x\r\n\r\n..\r\n" + b"y" * 40 + b"\r\n..end\r\n.\r\n"
    for hold in (3, PIECE):
        text = PopText(hold=hold)
        got = b"".join(text.feed(raw[i:i + pieces]) for i in range(0, len(raw), pieces)) + text.end()
        assert got == want
    top = PopText(1)
    got = b"".join(top.feed(raw[i:i + pieces]) for i in range(0, len(raw), pieces)) + top.end()
    assert got == b"..first\r\nbare lf\r\n...x\r\n\r\n..\r\n.\r\n" and top.done


@pytest.mark.parametrize("value, words", [
    ("0.0.0.0:1110", "POP3 beyond loopback only with TLS"),
    ("1110", "host:port"),
])
def test_pop3_listen_is_checked_like_imap_listen(value, words):
    from wizard.config.files import parse_text
    from test_relay_config import BASE
    _, problems = parse_text(BASE + f'[relay]\npop3_listen = "{value}"\n')
    said = {p.field: p.message for p in problems if not p.warning}
    assert "relay.pop3_listen" in said and words in said["relay.pop3_listen"]
    cfg, problems = parse_text(BASE + '[relay]\npop3_listen = "127.0.0.1:1110"\n')
    assert not [p for p in problems if not p.warning]
    from wizard.config.relay import Relay, to_data
    assert to_data(cfg.relay)["pop3_listen"] == "127.0.0.1:1110" and "pop3_listen" not in to_data(Relay())


def test_pop3_needs_incoming_imap(sandbox, tmp_path):
    cfg = relay_config(sandbox, tmp_path, protocol="graph", pop3_listen="127.0.0.1:0")
    r = RunningRelay(cfg)
    try:
        assert not r.pop3_port
        assert any(line.startswith("POP3 off: it reads the mailbox over IMAP and needs [incoming] protocol = \"imap\"")
                   for line in r.lines)
    finally:
        r.close()


def test_the_settings_sheet_shows_the_pop3_port_only_when_set():
    from wizard.config.relay import Relay
    from wizard.config.schema import Config
    from wizard.guide import relay_settings as rs
    cfg = Config()
    client = RelayClient(name="erp", senders=["erp@contoso.com"], mailbox="orders@contoso.com")
    cfg.relay = Relay(clients=[client])
    assert "POP3" not in rs.as_text(rs.settings(cfg, client, "pw"))
    cfg.relay.pop3_listen = "127.0.0.1:1110"
    heading, rows = rs.settings(cfg, client, "pw")[-1]
    rows = dict(rows)
    assert heading.startswith("POP3") and (rows["POP3 server"], rows["Port"]) == ("127.0.0.1", "1110")
    assert rows["User name"] == "erp" and rows["Security"] == "none: plain text, on this machine only"
    assert "POP3 127.0.0.1:1110" in "\n".join(rs.sheet_lines(cfg))


def test_pop3_against_a_real_imap_server(mail_servers, tmp_path):
    """The upstream is the interop tests' Dovecot (XOAUTH2 with the sandbox's app token): what it stored
    comes out of RETR byte for byte (CRLF line ends), and DELE + QUIT removes exactly that message."""
    from wizard.config.relay import Relay
    from wizard.runtime import Mailer
    box = "pop3-app@contoso.com"
    cfg = mail_servers.config("client_secret", accounts=[box])
    subjects = [f"POP3 interop {n} {os.getpid()}" for n in (1, 2)]
    with Mailer(cfg) as mailer:
        for subject in subjects:
            mailer.send(box, subject, "First line.\n.\n..two dots\nLast line.\n")
    stored = {s: mail_servers.wait_delivered(box, s).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for s in subjects}
    cfg.relay = Relay(listen="127.0.0.1:0", imap_listen="", pop3_listen="127.0.0.1:0", spool=str(tmp_path / "spool"),
                      clients=[RelayClient(name="esm", password_hash=hash_password(PASSWORD),
                                           senders=[cfg.outgoing.sender], mailbox=box)])
    r = RunningRelay(cfg)
    try:
        wait_for(lambda: r.pop3_port, 20, "the POP3 listener")
        pop = _pop(r)
        count, _ = pop.stat()
        got = {}
        for n in range(1, count + 1):
            raw = b"\r\n".join(pop.retr(n)[1]) + b"\r\n"
            subject = next((s for s in subjects if f"Subject: {s}\r\n".encode() in raw), None)
            if subject:
                got[subject] = (n, raw)
        assert {s: raw for s, (_, raw) in got.items()} == stored
        uidl = pop.uidl(got[subjects[1]][0])
        pop.dele(got[subjects[0]][0])
        pop.quit()
        left = [raw for raw in mail_servers.messages(box) if subjects[0].encode() in raw or subjects[1].encode() in raw]
        assert len(left) == 1 and subjects[1].encode() in left[0]
        pop = _pop(r)
        assert uidl.split()[2] in [line.split()[1] for line in pop.uidl()[1]]      # the survivor keeps its UIDL
        pop.quit()
    finally:
        r.close()


def test_implicit_tls_with_a_certificate(sandbox, tmp_path):
    import ssl
    from wizard.sandbox.mailstore import deliver, from_mime
    deliver(sandbox.tenant, from_mime(TRICKY), ["erp@contoso.com"])
    mat = sandbox.material
    r = RunningRelay(relay_config(sandbox, tmp_path, protocol="graph+imap", pop3_listen="127.0.0.1:0",
                                  certificate=mat.cert_path, key=mat.key_path))
    try:
        wait_for(lambda: r.pop3_port, 20, "the POP3 listener")
        ctx = ssl.create_default_context(cafile=sandbox.ca_path)
        pop = poplib.POP3_SSL("127.0.0.1", r.pop3_port[0], timeout=10, context=ctx)
        pop.user("erp")
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == 1
        pop.quit()
        assert any("POP3 on 127.0.0.1:" in line and "(implicit TLS)" in line for line in r.lines)
    finally:
        r.close()


def test_a_number_that_is_not_ascii_digits_is_an_error_not_a_dropped_session(relay):
    pop = poplib.POP3("127.0.0.1", relay.pop3_port[0], timeout=10)
    pop.user("esm")
    pop.pass_(PASSWORD)
    for command in ("RETR \u00b2", "TOP 1 \u00b2", "DELE \u0661"):
        with pytest.raises(poplib.error_proto, match="-ERR"):
            pop._shortcmd(command)
    assert pop.noop().startswith(b"+OK")                    # the session goes on
    pop.quit()
