"""The relay between real mail software nobody here wrote (issue 16, section 5).

- Postfix as a client relaying through it (``relayhost`` with Cyrus SASL, TLS verified against the
  sandbox CA; tests/postfix_client.py), delivering over Graph to the sandbox.
- The relay upstream against the real Postfix and Dovecot of the interop tests (SMTP XOAUTH2 in,
  the IMAP pass-through reading back from Dovecot), with that Postfix client in front.
"""

from __future__ import annotations

import base64
import email
import email.policy
import imaplib
import os
import shutil
import ssl
import uuid
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote

import pytest

import postfix_client
from postfix_client import PostfixClient
from relay_helpers import PASSWORD, SENDER, TO, RunningRelay, inbox_ids, relay_config, wait_for
from wizard.config.relay import Relay, RelayClient
from wizard.relay.auth import hash_password

CC, BCC = "invoices@contoso.com", "orders@contoso.com"


@pytest.fixture
def started():
    """Start Postfix clients; stop them at the end (their log goes into a failing test's report).
    Skipped (outside CI) or failed (CI=true) with one line when Postfix cannot run here."""
    reason = postfix_client.missing()
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Postfix as a relay client cannot run: {reason} (.ci/install-mail-servers installs it)",
                        pytrace=False)
        pytest.skip(f"Postfix as a relay client: {reason} (sudo .ci/install-mail-servers)")
    clients = []

    def start(*args, **kwargs) -> PostfixClient:
        clients.append(PostfixClient(*args, **kwargs).start())
        return clients[-1]
    yield start
    for c in clients:
        print(c.log())
        c.stop()


def business_mail(subject: str, cc: str = "", bcc: str = "") -> EmailMessage:
    """What an ERP hands to sendmail: 8-bit UTF-8 text, a header of its own, a PDF; Cc and Bcc when given."""
    m = EmailMessage()
    m["From"] = f"ERP <{SENDER}>"
    m["To"] = TO
    for name, value in (("Cc", cc), ("Bcc", bcc)):
        if value:
            m[name] = value
    m["Subject"] = subject
    m["Message-ID"] = f"<{uuid.uuid4().hex}@contoso.com>"
    m["X-ERP-Document"] = "4711"
    m.set_content("Grüße aus der Buchhaltung.\nRechnung 4711 liegt bei.\n", cte="8bit")
    m.add_attachment(b"%PDF-1.4 invoice 4711", maintype="application", subtype="pdf", filename="4711.pdf")
    return m


def _graph_drafts(sandbox) -> list[email.message.EmailMessage]:
    """The MIME the relay handed to Graph (``POST /users/{from}/messages``, base64)."""
    return [email.message_from_bytes(base64.b64decode(r.body), policy=email.policy.default)
            for r in sandbox.requests if r.method == "POST" and unquote(r.path) == f"/v1.0/users/{SENDER}/messages"]


def _reasons(client: PostfixClient) -> list[str]:
    return [r.get("delay_reason", "") for m in client.queue() for r in m["recipients"]]


def test_the_readme_shows_the_main_cf_lines_these_tests_use():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## The relay", 1)[1].split("\n## ", 1)[0]
    lines = postfix_client.main_cf_lines(2525, "/etc/postfix/relay_passwd", ca_file="/etc/postfix/relay-ca.pem")
    assert "```\n" + "\n".join(lines) + "\n```" in section
    assert f"`{postfix_client.password_line(2525, 'erp', 'PASSWORD')}`" in section     # the password file's line
    assert "smtp_tls_security_level = may" in section


def test_postfix_relays_over_verified_starttls_and_sasl_graph_delivers_once(sandbox, tmp_path, started):
    mat = sandbox.material
    relay = RunningRelay(relay_config(sandbox, tmp_path, certificate=mat.cert_path, key=mat.key_path))
    try:
        pf = started(relay.port, "erp", PASSWORD, tls="verify", ca_path=sandbox.ca_path)
        m = business_mail("Rechnung 4711 – Grüße", cc=CC, bcc=BCC)
        pf.sendmail(m.as_bytes(), SENDER)                    # sendmail -t: recipients from To, Cc and Bcc
        wait_for(lambda: relay.status()["delivered_today"] == 1 and not pf.queue(), 20, "delivery through Postfix")
        assert "Verified TLS connection established to 127.0.0.1" in pf.log()
        mid = m["Message-ID"]
        for box in (TO, CC, BCC):
            assert inbox_ids(sandbox, box).count(mid) == 1, box
        got = next(x for x in sandbox.tenant.mailbox(TO).inbox if x.internet_message_id == mid)
        assert got.subject == "Rechnung 4711 – Grüße" and got.sender == SENDER
        assert got.to == [TO] and got.cc == [CC] and "Grüße aus der Buchhaltung." in got.body
        assert [(a["name"], a["content"]) for a in got.attachments] == [("4711.pdf", b"%PDF-1.4 invoice 4711")]
        # Postfix dropped the Bcc: header and carried BCC in the envelope; the relay wrote it back for Graph
        [draft] = _graph_drafts(sandbox)
        assert draft["Bcc"] == BCC and draft["X-ERP-Document"] == "4711"
        assert draft["Received"].startswith("by app.contoso.com (Postfix")            # came through Postfix
        journal = relay.spool.journals("done")[0]
        assert sorted(journal["rcpts"]) == sorted([TO, CC, BCC]) and journal["bcc"] == [BCC]
        assert not any(PASSWORD in line for line in relay.lines + [pf.log()])
    finally:
        relay.close()


def test_postfix_does_not_relay_to_a_certificate_its_ca_file_did_not_sign(sandbox, tmp_path, started):
    """The README's lines verify the relay's certificate: one from another CA keeps the mail queued."""
    from wizard.sandbox.ca import _generate
    other = _generate()                 # a throwaway CA and a certificate for 127.0.0.1 it signed
    relay = RunningRelay(relay_config(sandbox, tmp_path, certificate=other.cert_path, key=other.key_path))
    try:
        pf = started(relay.port, "erp", PASSWORD, tls="verify", ca_path=sandbox.ca_path)
        pf.sendmail(business_mail("unverified").as_bytes(), SENDER)
        wait_for(lambda: any("Server certificate not verified" in r for r in _reasons(pf)), 20, "Postfix to defer")
        assert relay.spool.ids() == [] and not any("refused AUTH" in line for line in relay.lines)
    finally:
        relay.close()
        shutil.rmtree(other.directory, ignore_errors=True)


def test_postfix_plain_text_auth_on_loopback_needs_noanonymous(sandbox, tmp_path, started):
    """Without a certificate the relay offers AUTH in plain text on loopback. Postfix's default
    ``smtp_sasl_security_options`` (noplaintext) refuses PLAIN and LOGIN there: the mail waits in its
    queue ("no mechanism available") until ``smtp_sasl_security_options = noanonymous``."""
    relay = RunningRelay(relay_config(sandbox, tmp_path))
    try:
        pf = started(relay.port, "erp", PASSWORD, tls="may", sasl_options=None)
        m = business_mail("plain text")
        pf.sendmail(m.as_bytes(), SENDER)
        wait_for(lambda: any("no mechanism available" in r for r in _reasons(pf)), 20, "Postfix to defer")
        assert relay.spool.ids() == [] and m["Message-ID"] not in inbox_ids(sandbox, TO)
        pf.reconfigure(smtp_sasl_security_options="noanonymous")
        pf.flush()
        wait_for(lambda: not pf.queue() and m["Message-ID"] in inbox_ids(sandbox, TO), 20, "delivery after the fix")
        assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
    finally:
        relay.close()


def test_wrong_password_postfix_keeps_the_mail_with_the_535_reason_then_delivers_once(sandbox, tmp_path, started):
    mat = sandbox.material
    relay = RunningRelay(relay_config(sandbox, tmp_path, certificate=mat.cert_path, key=mat.key_path))
    try:
        pf = started(relay.port, "erp", "not-the-password", tls="verify", ca_path=sandbox.ca_path)
        m = business_mail("wrong password", cc=CC)
        pf.sendmail(m.as_bytes(), SENDER)
        wait_for(lambda: any("535 5.7.8" in r for r in _reasons(pf)), 20, "Postfix to defer with the 535")
        assert "Authentication credentials invalid" in pf.queue_text()        # what `postqueue -p` shows
        assert relay.spool.ids() == [] and relay.status()["delivered_today"] == 0
        assert any("refused AUTH for 'erp'" in line for line in relay.lines)
        pf.set_password(PASSWORD)
        pf.flush()
        wait_for(lambda: not pf.queue() and relay.status()["delivered_today"] == 1, 20, "delivery after the fix")
        assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
        assert inbox_ids(sandbox, CC).count(m["Message-ID"]) == 1
    finally:
        relay.close()


def test_too_big_postfix_bounces_at_once_on_the_announced_size_and_its_bounce_is_refused_clearly(
        sandbox, tmp_path, started):
    """EHLO SIZE: Postfix bounces a message over the relay's limit without sending it (nothing retried
    for days). Its bounce to the sender (MAIL FROM:<>, From: MAILER-DAEMON) cannot go out through
    Exchange: the relay says so in words."""
    mat = sandbox.material
    relay = RunningRelay(relay_config(sandbox, tmp_path, certificate=mat.cert_path, key=mat.key_path, max_size_mb=1))
    try:
        pf = started(relay.port, "erp", PASSWORD, tls="verify", ca_path=sandbox.ca_path)
        m = business_mail("too big")
        m.add_attachment(os.urandom(900_000), maintype="application", subtype="octet-stream", filename="scan.bin")
        pf.sendmail(m.as_bytes(), SENDER)
        wait_for(lambda: "553 5.7.1" in pf.log() and not pf.queue(), 20, "the bounce and its refusal")
        log = pf.log()
        assert f"exceeds size limit {1024 * 1024} of server 127.0.0.1" in log and "status=bounced" in log
        assert "553 5.7.1 The null sender <> (a bounce or other notification) cannot be relayed" in log
        assert relay.spool.ids() == [] and relay.status()["delivered_today"] == 0
    finally:
        relay.close()


def test_real_software_on_both_sides_postfix_relay_xoauth2_postfix_dovecot_imap(mail_servers, tmp_path, started):
    """Postfix (client) -> the relay -> SMTP XOAUTH2 -> the real Postfix -> Dovecot (LMTP), and read back
    through the relay's IMAP pass-through (XOAUTH2 to the real Dovecot) with imaplib."""
    sb = mail_servers.sb
    cfg = mail_servers.config("client_secret", accounts=[BCC], submit="postfix")
    mat = sb.material
    cfg.relay = Relay(listen="127.0.0.1:0", imap_listen="127.0.0.1:0", spool=str(tmp_path / "spool"),
                      certificate=mat.cert_path, key=mat.key_path, clients=[
                          RelayClient(name="erp", password_hash=hash_password(PASSWORD), senders=[SENDER],
                                      mailbox=BCC)])
    relay = RunningRelay(cfg)
    try:
        wait_for(lambda: relay.imap_port, what="the IMAP pass-through")
        pf = started(relay.port, "erp", PASSWORD, tls="verify", ca_path=sb.ca_path)
        m = business_mail("Invoice 4712 through real servers", bcc=BCC)
        pf.sendmail(m.as_bytes(), SENDER)
        raw = mail_servers.wait_delivered(BCC, m["Subject"])
        mail_servers.wait_delivered(TO, m["Subject"])
        wait_for(lambda: relay.status()["delivered_today"] == 1, what="the relay's journal")
        assert relay.status()["delivery"].startswith("at least once")
        assert b"X-ERP-Document: 4711" in raw
        for box in (TO, BCC):                                 # BCC only in the envelope, all the way
            assert len([x for x in mail_servers.messages(box) if m["Message-ID"].encode() in x]) == 1, box
        ctx = ssl.create_default_context(cafile=sb.ca_path)
        with imaplib.IMAP4_SSL("127.0.0.1", relay.imap_port[0], ssl_context=ctx, timeout=10) as imap:
            imap.login("erp", PASSWORD)
            assert imap.select("INBOX", readonly=True)[0] == "OK"
            typ, found = imap.search(None, "HEADER", "Message-ID", m["Message-ID"])
            assert typ == "OK" and len(found[0].split()) == 1
            typ, parts = imap.fetch(found[0], "(BODY.PEEK[])")
        got = email.message_from_bytes(parts[0][1], policy=email.policy.default)
        assert got["Subject"] == m["Subject"] and got["X-ERP-Document"] == "4711"
        assert "Grüße aus der Buchhaltung." in got.get_body(("plain",)).get_content()
        assert [p.get_filename() for p in got.iter_attachments()] == ["4711.pdf"]
        assert any(f"imap: erp opened {BCC}" in line for line in relay.lines)
    finally:
        relay.close()
