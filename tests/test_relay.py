"""`mailwizard relay`, SMTP side and delivery, with real clients (smtplib, curl, swaks) against the sandbox."""

from __future__ import annotations

import base64
import os
import shutil
import smtplib
import ssl
import subprocess
import time

import pytest

from relay_helpers import (login, PASSWORD, SENDER, TO, RunningRelay, cut_by_a_crash, inbox_ids, message, relay_config,
                           wait_for)
from wizard.config.relay import RelayClient
from wizard.relay.auth import hash_password
from wizard.sandbox import sample
from wizard.sandbox.server import Fault


_login = login


def test_smtplib_plain_and_login_deliver_over_graph_once_with_bcc(sandbox, relay):
    m1, m2 = message(subject="PLAIN"), message(subject="LOGIN")
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo()
        assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
        s.login("erp", PASSWORD)                      # smtplib prefers PLAIN
        code, reply = s.docmd("NOOP")
        assert code == 250
        assert s.send_message(m1, to_addrs=[TO, "orders@contoso.com"]) == {}   # orders: Bcc only
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo()
        s.user, s.password = "erp", PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
        s.send_message(m2)
    wait_for(lambda: relay.status()["delivered_today"] == 2, what="two deliveries")
    assert inbox_ids(sandbox, TO).count(m1["Message-ID"]) == 1
    assert inbox_ids(sandbox, TO).count(m2["Message-ID"]) == 1
    assert inbox_ids(sandbox, "orders@contoso.com") == [m1["Message-ID"]]      # the Bcc recipient got it
    # over Graph: a draft from the MIME, then its send; the draft is gone, a copy is in Sent Items
    paths = [r.path for r in sandbox.requests if "/messages" in r.path]
    assert any(p.endswith("/messages") for p in paths) and any(p.endswith("/send") for p in paths)
    assert not sandbox.tenant.mailbox(SENDER).folders.get("Drafts")
    wait_for(lambda: sum(1 for line in relay.lines if "delivered" in line) == 2, what="two log lines")


def test_auth_rules(relay):
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo()
        code, reply = s.docmd("MAIL", f"FROM:<{SENDER}>")
        assert code == 530 and b"Authentication required" in reply          # RFC 4954 section 6
        plain = lambda user, pw: "PLAIN " + base64.b64encode(f"\0{user}\0{pw}".encode()).decode()
        started = time.monotonic()
        code, reply = s.docmd("AUTH", plain("erp", "wrong password"))
        assert code == 535
        assert time.monotonic() - started >= 0.9                             # slowed down against guessing
        assert s.docmd("AUTH", plain("nobody", PASSWORD))[0] == 535
        assert s.docmd("MAIL", f"FROM:<{SENDER}>")[0] == 530
    assert any("refused AUTH for 'erp'" in line for line in relay.lines)
    assert not any(PASSWORD in line or "wrong password" in line for line in relay.lines)


def test_auth_line_up_to_12288_octets(sandbox, tmp_path):
    long_pw = "p" * 9000
    cfg = relay_config(sandbox, tmp_path, clients=[
        RelayClient(name="erp", password_hash=hash_password(long_pw), senders=[SENDER])])
    r = RunningRelay(cfg)
    try:
        with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as s:
            s.ehlo()
            blob = base64.b64encode(b"\0erp\0" + long_pw.encode()).decode()
            assert 512 < len("AUTH PLAIN " + blob) <= 12288
            assert s.docmd("AUTH", "PLAIN " + blob)[0] == 235               # one line, initial response
        with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as s:
            s.ehlo()
            too_long = base64.b64encode(b"\0erp\0" + b"p" * 9300).decode()
            assert len("AUTH PLAIN " + too_long) > 12288
            assert s.docmd("AUTH", "PLAIN " + too_long)[0] == 500
            assert s.docmd("NOOP")[0] == 250                                 # the session goes on
    finally:
        r.close()


def test_senders_checked_553(sandbox, relay):
    with _login(relay.port) as s:
        code, reply = s.docmd("MAIL", "FROM:<ceo@contoso.com>")
        assert code == 553 and SENDER.encode() in reply                      # names what is allowed
        s.rset()
        forged = message(sender="ceo@contoso.com")
        with pytest.raises(smtplib.SMTPDataError) as exc:
            s.sendmail(SENDER, [TO], forged.as_bytes())                      # envelope fine, header From not
        assert exc.value.smtp_code == 553 and b"ceo@contoso.com" in exc.value.smtp_error
    assert relay.spool.ids() == [] and relay.status()["delivered_today"] == 0


def test_size_announced_and_enforced_552(sandbox, tmp_path):
    r = RunningRelay(relay_config(sandbox, tmp_path, max_size_mb=1))
    try:
        with _login(r.port) as s:
            assert s.esmtp_features["size"] == str(1024 * 1024)
            code, reply = s.docmd("MAIL", f"FROM:<{SENDER}> SIZE=2000000")
            assert code == 552 and b"1048576 bytes" in reply
            big = message(body=("x" * 70 + "\n") * 16000)                     # ~1.1 MB, no SIZE given
            s.rset()
            assert s.mail(SENDER)[0] == 250 and s.rcpt(TO)[0] == 250
            code, reply = s.data(big.as_bytes(policy=big.policy.clone(linesep="\r\n")))
            assert code == 552 and b"(1 MB)" in reply
        assert r.spool.ids() == []
    finally:
        r.close()


def test_malformed_input_refused_with_reason_or_delivered_as_is(sandbox, relay):
    with _login(relay.port) as s:
        with pytest.raises(smtplib.SMTPDataError) as exc:
            s.sendmail(SENDER, [TO], b"\x00\xff garbage without any header line\r\n")
        assert exc.value.smtp_code == 554 and b"no From" in exc.value.smtp_error
        broken = (f"From: {SENDER}\r\nTo: {TO}\r\nSubject: broken\r\nMessage-ID: <broken@contoso.com>\r\n"
                  "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"nope\"\r\n\r\n"
                  "no boundary ever comes\r\n\xe4\xf6 8-bit\r\n").encode("latin-1")
        s.sendmail(SENDER, [TO], broken)
    wait_for(lambda: relay.status()["delivered_today"] + relay.status()["dead"] >= 1, what="an outcome")
    assert relay.status()["delivered_today"] == 1 and "<broken@contoso.com>" in inbox_ids(sandbox, TO)
    with _login(relay.port) as s:                                             # still serving
        assert s.noop()[0] == 250


def test_spool_full_answers_452_and_keeps_nothing(sandbox, relay, monkeypatch):
    import errno
    from wizard.relay import spool as spool_module
    real = spool_module._write_synced

    def full(path, data):
        real(path, data[: len(data) // 2])                                   # half written, then no room
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(spool_module, "_write_synced", full)
    with _login(relay.port) as s:
        with pytest.raises(smtplib.SMTPDataError) as exc:
            s.send_message(message())
        assert exc.value.smtp_code == 452
    assert relay.spool.ids() == [] and list(relay.spool.tmp.iterdir()) == []
    assert any("disk is full" in line for line in relay.lines)


def test_curl_submits(sandbox, relay, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    m = message(subject="from curl")
    eml = tmp_path / "msg.eml"
    eml.write_bytes(m.as_bytes())
    out = subprocess.run(["curl", "-sS", f"smtp://127.0.0.1:{relay.port}", "--mail-from", SENDER, "--mail-rcpt", TO,
                          "--user", f"erp:{PASSWORD}", "--upload-file", str(eml)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: m["Message-ID"] in inbox_ids(sandbox, TO), what="curl's message")
    bad = subprocess.run(["curl", "-sS", f"smtp://127.0.0.1:{relay.port}", "--mail-from", SENDER, "--mail-rcpt", TO,
                          "--user", "erp:wrong", "--upload-file", str(eml)], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 67, bad.stderr             # curl: "the user name, password, or similar was not accepted"


def test_swaks_submits(sandbox, relay):
    if shutil.which("swaks") is None:
        if os.environ.get("CI"):
            pytest.fail("swaks is missing in CI (.ci/install-mail-servers installs it)")
        pytest.skip("swaks is not installed (apt-get install swaks)")
    mid = "<swaks-test@contoso.com>"
    out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(relay.port), "--auth", "LOGIN",
                          "--auth-user", "erp", "--auth-password", PASSWORD, "--from", SENDER, "--to", TO,
                          "--header", f"Message-Id: {mid}", "--header", "Subject: from swaks"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "250 2.0.0 OK queued as" in out.stdout
    wait_for(lambda: mid in inbox_ids(sandbox, TO), what="swaks's message")


def test_smtp_upstream_no_bcc_header(sandbox, tmp_path):
    r = RunningRelay(relay_config(sandbox, tmp_path, protocol="smtp"))
    try:
        m = message()
        with _login(r.port) as s:
            s.send_message(m, to_addrs=[TO, "orders@contoso.com"])
        wait_for(lambda: m["Message-ID"] in inbox_ids(sandbox, "orders@contoso.com"), what="the Bcc copy")
        assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
        assert r.status()["delivery"].startswith("at least once")
    finally:
        r.close()


def test_transient_failure_retried_then_delivered(sandbox, relay):
    fault = sandbox.inject(Fault(f"/v1.0/users/{SENDER}/messages", status=503, times=None, retry_after=0))
    m = message()
    with _login(relay.port) as s:
        s.send_message(m)
    st = wait_for(lambda: relay.status()["retrying"] and relay.status(), what="a retry")
    assert st["retrying"][0]["next_attempt"] and st["retrying"][0]["attempts"] >= 1
    fault.times = 0
    wait_for(lambda: m["Message-ID"] in inbox_ids(sandbox, TO), what="delivery after the fault")
    assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1


def test_permanent_failure_dead_letter_and_dsn_to_submitter(sandbox, relay):
    sandbox.inject(Fault(f"/v1.0/users/{SENDER}/messages", status=400, times=1,
                         body='{"error": {"code": "ErrorInvalidRecipients", "message": "At least one recipient '
                              'isn\'t valid."}}'))
    with _login(relay.port) as s:
        s.send_message(message(subject="Order 7"))
    dsn = wait_for(lambda: [x for x in sandbox.tenant.mailbox(SENDER).inbox if x.subject.startswith("Undeliverable")],
                   what="the DSN")
    assert dsn[0].subject == "Undeliverable: Order 7" and dsn[0].sender == SENDER
    st = relay.status()
    assert st["dead"] == 1 and st["dead_messages"][0]["last_error"]
    assert (relay.spool.dead / f"{st['dead_messages'][0]['id']}.eml").exists()


def test_account_failure_dead_without_dsn_and_expiry_never_bounces_a_bounce(sandbox, tmp_path):
    r = RunningRelay(relay_config(sandbox, tmp_path, max_age="1s"))
    try:
        sandbox.inject(Fault(f"/v1.0/users/{SENDER}/messages", status=403, times=1,
                             body='{"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}}'))
        with _login(r.port) as s:
            s.send_message(message(subject="denied"))
        wait_for(lambda: r.status()["dead"] == 1, what="the dead letter")
        wait_for(lambda: any("no DSN" in line for line in r.lines), what="the log line")   # written after the move
        # now transient failures for good: max_age runs out, a DSN is queued, it fails too and stays dead
        sandbox.inject(Fault(f"/v1.0/users/{SENDER}/messages", status=503, times=None, retry_after=0))
        with _login(r.port) as s:
            s.send_message(message(subject="expires"))
        wait_for(lambda: r.status()["dead"] == 3 and r.status()["queued"] == 0 and not r.status()["retrying"],
                 timeout=60, what="the message and its DSN dead")
        dead = r.status()["dead_messages"]
        assert sum(1 for d in dead if d["dsn"]) == 1 and any("gave up" in (d["last_error"] or "") for d in dead)
    finally:
        r.close()


def test_starttls_and_implicit_tls(sandbox, tmp_path):
    mat = sandbox.material
    ctx = ssl.create_default_context(cafile=sandbox.ca_path)
    r = RunningRelay(relay_config(sandbox, tmp_path, certificate=mat.cert_path, key=mat.key_path))
    try:
        with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as s:
            s.ehlo()
            assert "starttls" in s.esmtp_features and "auth" not in s.esmtp_features
            s.starttls(context=ctx)
            s.ehlo()
            s.login("erp", PASSWORD)
            s.send_message(message())
    finally:
        r.close()
    r = RunningRelay(relay_config(sandbox, tmp_path / "implicit", certificate=mat.cert_path, key=mat.key_path,
                                  tls="implicit"))
    try:
        with smtplib.SMTP_SSL("127.0.0.1", r.port, timeout=10, context=ctx) as s:
            s.login("erp", PASSWORD)
            s.send_message(message())
    finally:
        r.close()


def test_large_message_over_graph_goes_through_an_upload_session(sandbox, relay):
    payload = os.urandom(5 * 1024 * 1024)                  # its base64 MIME is far over Graph's 4 MB request
    m = message(subject="big")
    m.add_attachment(payload, maintype="application", subtype="octet-stream", filename="scan.bin")
    with _login(relay.port) as s:
        s.send_message(m, to_addrs=[TO, "orders@contoso.com"])
    got = wait_for(lambda: [x for x in sandbox.tenant.mailbox(TO).inbox if x.internet_message_id == m["Message-ID"]],
                   timeout=30, what="the large message")
    assert [a["content"] == payload for a in got[0].attachments] == [True]
    assert any("createUploadSession" in r.path for r in sandbox.requests)
    assert m["Message-ID"] in inbox_ids(sandbox, "orders@contoso.com")       # the Bcc survived the split


def test_graph_recovery_after_a_crash_sends_each_draft_once(sandbox, tmp_path):
    """The journal states a SIGKILL can leave behind, replayed deterministically."""
    from wizard.relay.delivery import Delivery
    from wizard.relay.spool import Spool
    from wizard.runtime import Mailer
    cfg = relay_config(sandbox, tmp_path)
    spool = Spool(cfg.relay.spool_path()).open()
    lines = []
    with Mailer(cfg) as mailer:
        delivery = Delivery(cfg, spool, mailer, log_line=lines.append, settle=0.0)
        graph, (who, _) = mailer.transport(), mailer.sender_of(SENDER)
        mailer.sign_in(who)


        cases = [cut_by_a_crash(spool, graph, who, "sending", True), cut_by_a_crash(spool, graph, who, "sending", False),
                 cut_by_a_crash(spool, graph, who, "drafted", False)]
        for mid, _ in cases:
            delivery.process(mid)
        for mid, message_id in cases:
            assert inbox_ids(sandbox, TO).count(message_id) == 1, mid
        assert spool.ids() == [] and len(spool.ids("done")) == 3
        assert not sandbox.tenant.mailbox(SENDER).folders.get("Drafts")


def test_a_draft_refused_for_want_of_mail_readwrite_says_so(sandbox, relay):
    """Every message goes through a draft over Graph: without Mail.ReadWrite the reason is the draft's,
    not a large attachment's."""
    sandbox.tenant.app(sample.SECRET_APP_ID).roles["graph"].discard("Mail.ReadWrite")
    with _login(relay.port) as s:
        s.send_message(message(subject="small"))
    wait_for(lambda: relay.status()["dead"] == 1, what="the dead letter")
    reason = relay.status()["dead_messages"][0]["last_error"]
    assert reason.startswith("graph.draft") and "Mail.ReadWrite" in reason and "large" not in reason


def test_smtp_upstream_declares_8bit_bodies(sandbox, tmp_path, monkeypatch):
    """A message with 8-bit bytes (a UTF-8 body sent as it came) goes upstream with BODY=8BITMIME
    (RFC 6152: never undeclared); a 7-bit one without it."""
    import smtplib
    seen, real = [], smtplib.SMTP.mail

    def mail(self, sender, options=()):
        if self.sock.getpeername()[1] == sandbox.smtp_port:
            seen.append([o for o in options if not o.lower().startswith("size=")])
        return real(self, sender, options)
    monkeypatch.setattr(smtplib.SMTP, "mail", mail)
    r = RunningRelay(relay_config(sandbox, tmp_path, protocol="smtp"))
    try:
        plain, eight = message(subject="7bit"), message(subject="8bit", body="Grüße, Åsa\n")
        eight.replace_header("Content-Transfer-Encoding", "8bit")
        with _login(r.port) as s:
            s.send_message(plain)
            s.sendmail(SENDER, [TO], eight.as_bytes())
        wait_for(lambda: eight["Message-ID"] in inbox_ids(sandbox, TO), what="the 8-bit message")
        wait_for(lambda: plain["Message-ID"] in inbox_ids(sandbox, TO), what="the 7-bit message")
        assert sorted(seen) == [[], ["BODY=8BITMIME"]]
    finally:
        r.close()


def test_smtp_upstream_partial_refusal_retries_only_the_refused(sandbox, tmp_path, monkeypatch):
    """One recipient refused with 450 at RCPT, the other took the message: the retry goes to the
    refused one only (no second copy for the other), and delivers it once the server takes it."""
    import wizard.sandbox.smtp as sbsmtp
    refuse = {"on": True}
    real = sbsmtp.SmtpHandler.do_RCPT

    def do_RCPT(self, arg):
        if refuse["on"] and "orders@" in arg:
            self.send("450 4.2.1 Mailbox temporarily unavailable")
            return
        return real(self, arg)
    monkeypatch.setattr(sbsmtp.SmtpHandler, "do_RCPT", do_RCPT)
    r = RunningRelay(relay_config(sandbox, tmp_path, protocol="smtp"), base_delay=0.05, max_delay=0.1)
    try:
        m = message()
        with _login(r.port) as s:
            s.send_message(m, to_addrs=[TO, "orders@contoso.com"])
        wait_for(lambda: any(x["attempts"] >= 2 for x in r.status()["retrying"]), what="two attempts")
        assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
        assert r.status()["retrying"][0]["to"] == ["orders@contoso.com"]
        refuse["on"] = False
        wait_for(lambda: m["Message-ID"] in inbox_ids(sandbox, "orders@contoso.com"), what="the refused one")
        assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
        assert inbox_ids(sandbox, "orders@contoso.com").count(m["Message-ID"]) == 1
    finally:
        r.close()


def test_a_dsn_cut_off_by_a_crash_goes_at_the_next_start_once(sandbox, tmp_path):
    """The relay died after burying a message and before queuing its DSN: the dead journal says
    the DSN is owed, and the next start sends it (once: a DSN already stored is not made twice)."""
    from relay_helpers import ENVELOPE
    from wizard.relay.spool import Spool
    cfg = relay_config(sandbox, tmp_path)
    spool = Spool(cfg.relay.spool_path()).open()
    lost = spool.store(message(subject="Order 8").as_bytes(), ENVELOPE)
    spool.bury(lost, last_error="ErrorInvalidRecipients: no such user", dsn_due=True)
    stored = spool.store(message(subject="Order 9").as_bytes(), ENVELOPE)
    spool.bury(stored, last_error="ErrorInvalidRecipients: no such user", dsn_due=True)
    from wizard.relay.dsn import queue_dsn
    queue_dsn(spool, spool.journal(stored, "dead"), "no such user")        # stored, the crash before the mark
    r = RunningRelay(cfg)
    try:
        def dsns():
            return sorted(x.subject for x in sandbox.tenant.mailbox(SENDER).inbox if x.subject.startswith("Undeliverable"))
        wait_for(lambda: len(dsns()) >= 2 and not r.spool.ids(), what="the DSNs")
        assert dsns() == ["Undeliverable: Order 8", "Undeliverable: Order 9"]
        assert not any(j.get("dsn_due") for j in r.spool.journals("dead"))
    finally:
        r.close()


def test_stopping_ends_a_wait_exchange_asked_for_and_the_next_start_delivers(sandbox, tmp_path):
    """Graph answers 429 with Retry-After: 60 (up to 3 waits a request): SIGTERM (here the stop event) no
    longer sits through them (systemd's TimeoutStopSec is 90 s, then SIGKILL); the message stays
    queued, untouched, and the next start delivers it once."""
    cfg = relay_config(sandbox, tmp_path)
    r = RunningRelay(cfg)
    throttled = sandbox.inject(Fault(f"/v1.0/users/{SENDER}/messages", status=429, times=None, retry_after=60))
    try:
        m = message(subject="throttled")
        with _login(r.port) as s:
            s.send_message(m)
        wait_for(lambda: any(q.status == 429 for q in sandbox.requests), what="the throttled request")
    finally:
        r.close()
    assert not r.thread.is_alive(), "the relay still waits for the Retry-After"
    assert any("stopped while waiting for Exchange" in line for line in r.lines), r.lines
    st = r.status()
    assert st["queued"] == 1 and st["retrying"] == [] and st["dead"] == 0
    throttled.times = 0
    again = RunningRelay(cfg)
    try:
        wait_for(lambda: m["Message-ID"] in inbox_ids(sandbox, TO), what="delivery at the next start")
        assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
    finally:
        again.close()
