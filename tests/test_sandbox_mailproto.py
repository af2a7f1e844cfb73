"""SMTP (STARTTLS + AUTH XOAUTH2) and IMAP (implicit TLS + AUTHENTICATE XOAUTH2) on the sandbox."""

from __future__ import annotations

import base64
import email
import email.policy
import imaplib
import smtplib
import ssl
import time
from email.message import EmailMessage

import pytest
import requests

from sandbox_helpers import app_token, password_token
from wizard.sandbox import Sandbox, sample
from wizard.sandbox.tenant import Message

EXCHANGE = "https://outlook.office365.com"
PDF = b"%PDF-1.4 sandbox attachment \x00\x01\xfe"


def user_token(sb, scope=f"{EXCHANGE}/SMTP.Send {EXCHANGE}/IMAP.AccessAsUser.All") -> str:
    return password_token(sb, scope)


def xoauth2(user: str, token: str) -> str:
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def tls(sb) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=sb.ca_path)


def smtp_xoauth2(s: smtplib.SMTP, user: str, token: str) -> tuple[int, bytes]:
    """AUTH XOAUTH2 as RFC 4954 has it for a response longer than the 512-octet command line:
    AUTH, 334, the response; an error challenge is answered with an empty line."""
    code, text = s.docmd("AUTH", "XOAUTH2")
    assert code == 334, (code, text)
    code, text = s.docmd(base64.b64encode(xoauth2(user, token).encode()).decode())
    if code == 334:
        code, text = s.docmd("")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, text)
    return code, text


def smtp_login(sb, token, user=sample.SERVICE_USER) -> smtplib.SMTP:
    s = smtplib.SMTP(sb.host, sb.smtp_port, timeout=5)
    s.starttls(context=tls(sb))
    s.ehlo()
    smtp_xoauth2(s, user, token)
    return s


def letter(subject="Invoice 42", sender=sample.SENDER, to=sample.RECIPIENT, attach=True) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content("Please find the invoice attached.\n.leading dot line\n")
    if attach:
        msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    return msg


def revoke_app_only(tenant) -> None:
    """Take away the app-only IMAP/SMTP roles the sample app has (a token then lacks them)."""
    tenant.app(sample.SECRET_APP_ID).roles["exchange"] -= {"SMTP.SendAsApp", "IMAP.AccessAsApp"}


def grant_app_only(tenant, address) -> None:
    app = tenant.app(sample.SECRET_APP_ID)
    app.roles["exchange"] |= {"SMTP.SendAsApp", "IMAP.AccessAsApp"}
    app.exchange_service_principal = True
    tenant.mailbox(address).full_access.add(sample.SECRET_APP_ID)


# -- SMTP -------------------------------------------------------------------------------------

def test_smtp_xoauth2_send_with_attachment_is_delivered(sandbox):
    with smtplib.SMTP(sandbox.host, sandbox.smtp_port, timeout=5) as s:
        code, banner = s.ehlo()
        assert code == 250 and "starttls" in s.esmtp_features and "auth" not in s.esmtp_features
        assert s.docmd("AUTH", "XOAUTH2")[0] == 504                   # no AUTH before STARTTLS
        s.starttls(context=tls(sandbox))
        s.ehlo()
        assert s.esmtp_features["auth"].split() == ["LOGIN", "XOAUTH2"]
        assert s.docmd("MAIL", f"FROM:<{sample.SENDER}>")[0] == 530     # not authenticated yet
        code, text = smtp_xoauth2(s, sample.SERVICE_USER, user_token(sandbox))
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        assert s.send_message(letter(), from_addr=sample.SENDER, to_addrs=[sample.RECIPIENT, "x@example.org"]) == {}
    [got] = sandbox.tenant.mailbox(sample.RECIPIENT).inbox
    assert (got.sender, got.to, got.subject) == (sample.SENDER, [sample.RECIPIENT], "Invoice 42")
    assert got.body == "Please find the invoice attached.\n.leading dot line\n"
    assert got.attachments == [{"name": "invoice.pdf", "content_type": "application/pdf", "content": PDF}]
    assert [m.subject for m in sandbox.tenant.mailbox(sample.SENDER).sent] == ["Invoice 42"]


@pytest.mark.parametrize("tenant_off, mailbox_off, scope", [(True, None, "Tenant"), (False, True, "Mailbox"),
                                                            (True, False, None)])
def test_smtp_auth_disabled_is_5_7_139(sandbox, tenant_off, mailbox_off, scope):
    sandbox.tenant.smtp_auth_disabled = tenant_off
    sandbox.tenant.mailbox(sample.SERVICE_USER).smtp_auth_disabled = mailbox_off
    if scope is None:                                   # the mailbox setting overrides the tenant's
        smtp_login(sandbox, user_token(sandbox)).quit()
        return
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        smtp_login(sandbox, user_token(sandbox))
    assert e.value.smtp_code == 535
    assert e.value.smtp_error.decode().startswith(
        f"5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the {scope}.")


def test_smtp_rejected_tokens_are_5_7_3(sandbox):
    revoke_app_only(sandbox.tenant)
    graph_token = user_token(sandbox, "https://graph.microsoft.com/Mail.Send")
    bad = [(sample.SERVICE_USER, graph_token),                     # wrong audience
           (sample.RECIPIENT, user_token(sandbox)),                # not the token's user, no right
           (sample.SENDER, app_token(sandbox)),                    # app-only without SMTP.SendAsApp etc.
           (sample.SERVICE_USER, "not-a-jwt")]
    for user, token in bad:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            smtp_login(sandbox, token, user)
        assert e.value.smtp_code == 535 and e.value.smtp_error.startswith(b"5.7.3 Authentication unsuccessful")


def test_smtp_app_only_needs_service_principal_role_and_mailbox_permission(sandbox):
    grant_app_only(sandbox.tenant, sample.SENDER)
    with smtp_login(sandbox, app_token(sandbox), sample.SENDER) as s:
        s.send_message(letter(attach=False))
    assert len(sandbox.tenant.mailbox(sample.RECIPIENT).inbox) == 1
    app, box = sandbox.tenant.app(sample.SECRET_APP_ID), sandbox.tenant.mailbox(sample.SENDER)
    app.exchange_service_principal = False
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp_login(sandbox, app_token(sandbox), sample.SENDER)
    app.exchange_service_principal = True
    box.full_access.discard(sample.SECRET_APP_ID)                 # no FullAccess on the mailbox
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp_login(sandbox, app_token(sandbox), sample.SENDER)
    box.full_access.add(sample.SECRET_APP_ID)
    smtp_login(sandbox, app_token(sandbox), sample.SENDER).quit()
    revoke_app_only(sandbox.tenant)                               # no SMTP.SendAsApp in the token
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp_login(sandbox, app_token(sandbox), sample.SENDER)


def test_smtp_send_as_denied_is_5_2_252(sandbox):
    with smtp_login(sandbox, user_token(sandbox)) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.send_message(letter(sender=sample.RECIPIENT))
        assert e.value.smtp_code == 554
        assert e.value.smtp_error.decode().startswith(
            f"5.2.252 SendAsDenied; {sample.SERVICE_USER} not allowed to send as {sample.RECIPIENT}; "
            "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied;")
        s.send_message(letter(sender=sample.SERVICE_USER))           # the session goes on
    assert len(sandbox.tenant.mailbox(sample.RECIPIENT).inbox) == 1


def test_smtp_30_messages_per_minute_on_the_injected_clock(sandbox, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(sandbox, "clock", lambda: now[0])
    with smtp_login(sandbox, user_token(sandbox)) as s:
        for i in range(30):
            s.send_message(letter(f"n{i}", attach=False))
            now[0] += 1
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.send_message(letter("one too many", attach=False))
        assert e.value.smtp_code == 554
        assert e.value.smtp_error.startswith(b"5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException")
        now[0] += 31                                    # the first message is now more than a minute old
        s.send_message(letter("again", attach=False))
    assert len(sandbox.tenant.mailbox(sample.RECIPIENT).inbox) == 31


# -- IMAP -------------------------------------------------------------------------------------

def imap_login(sb, token, user=sample.SERVICE_USER) -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL(sb.host, sb.imap_port, ssl_context=tls(sb), timeout=5)
    answers = iter([xoauth2(user, token).encode()])
    m.authenticate("XOAUTH2", lambda _: next(answers, b""))     # an error challenge gets an empty line
    return m


def put(sb, address, subject, attachments=(), received="2026-11-20T08:00:00Z", read=False) -> None:
    sb.tenant.mailbox(address).inbox.append(Message(
        id=f"m-{subject}", sender=sample.SENDER, to=[address], subject=subject, body=f"Body {subject}",
        received=received, attachments=list(attachments), is_read=read))


def test_imap_xoauth2_search_fetch_mark_seen_and_move(sandbox):
    box = sample.INCOMING[0]                 # a shared mailbox the service account may open
    put(sandbox, box, "old", received="2026-01-05T10:00:00Z", read=True)
    put(sandbox, box, "order 1", [{"name": "order.pdf", "content_type": "application/pdf", "content": PDF}])
    put(sandbox, box, "order 2")
    m = imap_login(sandbox, user_token(sandbox), box)
    try:
        assert "AUTH=XOAUTH2" in m.capabilities
        typ, data = m.select("INBOX")
        assert (typ, data) == ("OK", [b"3"])
        _, [unseen] = m.uid("SEARCH", None, "UNSEEN")
        uids = unseen.split()
        assert len(uids) == 2
        _, [since] = m.uid("SEARCH", None, "SINCE", "01-Nov-2026")
        assert since.split() == uids

        typ, data = m.uid("FETCH", uids[0], "(FLAGS BODY.PEEK[])")
        assert typ == "OK" and b"\\Seen" not in data[0][0]
        parsed = email.message_from_bytes(data[0][1], policy=email.policy.default)
        assert parsed["Subject"] == "order 1" and parsed["From"] == sample.SENDER
        [att] = list(parsed.iter_attachments())
        assert (att.get_filename(), att.get_content()) == ("order.pdf", PDF)
        _, [again] = m.uid("SEARCH", None, "UNSEEN")
        assert again.split() == uids                                # PEEK left it unseen
        _, rfc = m.uid("FETCH", uids[0], "(RFC822)")
        assert rfc[0][1] == data[0][1]                               # the same bytes every time

        typ, data = m.uid("FETCH", uids[1], "(RFC822.SIZE BODY.PEEK[HEADER])")
        assert b"Subject: order 2\r\n" in data[0][1] and b"RFC822.SIZE " in data[0][0]
        assert m.uid("STORE", uids[1], "+FLAGS", "(\\Seen)")[0] == "OK"
        assert m.uid("SEARCH", None, "UNSEEN")[1] == [b""]
        assert m.create("Processed")[0] == "OK"
        assert m.create("processed") == ("NO", [b"[ALREADYEXISTS] Mailbox already exists."])
        typ, data = m.uid("MOVE", uids[0], "Processed")
        assert typ == "OK"
        assert m.uid("MOVE", uids[1], "Nowhere")[0] == "NO"           # [TRYCREATE]
        assert m.uid("COPY", uids[1], "Processed")[0] == "OK"
        m.uid("STORE", uids[1], "+FLAGS.SILENT", "(\\Deleted)")
        assert m.expunge()[0] == "OK"
        assert m.select("INBOX")[1] == [b"1"]
        assert m.status("Processed", "(MESSAGES UNSEEN)")[1] == [b'"Processed" (MESSAGES 2 UNSEEN 0)']
        assert any(b'"Processed"' in line for line in m.list()[1])
    finally:
        m.logout()
    mb = sandbox.tenant.mailbox(box)
    assert [x.subject for x in mb.inbox] == ["old"]
    assert [(x.subject, x.is_read) for x in mb.folders["Processed"]] == [("order 1", True), ("order 2", True)]


def test_imap_rejections_are_authenticate_failed(sandbox):
    revoke_app_only(sandbox.tenant)                     # app_token below: app-only without IMAP.AccessAsApp
    token = user_token(sandbox)
    with imaplib.IMAP4_SSL(sandbox.host, sandbox.imap_port, ssl_context=tls(sandbox), timeout=5) as m:
        with pytest.raises(imaplib.IMAP4.error, match="LOGIN failed"):
            m.login(sample.SERVICE_USER, sample.SERVICE_PASSWORD)     # basic authentication is off
    for user, tok in [(sample.SERVICE_USER, "garbage"), (sample.RECIPIENT, token),
                      (sample.SENDER, app_token(sandbox)),
                      (sample.SERVICE_USER, user_token(sandbox, f"{EXCHANGE}/EWS.AccessAsUser.All")[:-2] + "xx")]:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATE failed."):
            imap_login(sandbox, tok, user)
    sandbox.tenant.mailbox(sample.SERVICE_USER).imap_disabled = True
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATE failed."):
        imap_login(sandbox, token)


def test_imap_app_only(sandbox):
    grant_app_only(sandbox.tenant, sample.INCOMING[1])
    put(sandbox, sample.INCOMING[1], "for the app")
    m = imap_login(sandbox, app_token(sandbox), sample.INCOMING[1])
    m.select("INBOX", readonly=True)
    _, data = m.uid("FETCH", "1:*", "(RFC822)")
    assert b"Subject: for the app" in data[0][1]
    m.logout()
    assert sandbox.tenant.mailbox(sample.INCOMING[1]).inbox[0].is_read is False     # EXAMINE is read-only


def test_mail_servers_start_lazily_and_stop_with_the_sandbox():
    t0 = time.perf_counter()
    sb = Sandbox().start()
    assert sb._mail_servers == {}
    ports = sb.smtp_port, sb.imap_port
    assert all(ports) and sb.smtp_port == ports[0]
    with pytest.raises(ssl.SSLCertVerificationError):                # only the sandbox CA vouches for it
        imaplib.IMAP4_SSL(sb.host, sb.imap_port, ssl_context=ssl.create_default_context(), timeout=5)
    m = imaplib.IMAP4_SSL(sb.host, sb.imap_port, ssl_context=tls(sb), timeout=5)
    sb.stop()                                       # an open session does not keep it running
    with pytest.raises((OSError, imaplib.IMAP4.abort)):
        m.noop()
    with pytest.raises(OSError):
        smtplib.SMTP(sb.host, ports[0], timeout=2)
    assert time.perf_counter() - t0 < 1.5


def test_across_protocols_graph_to_imap_and_smtp_to_graph(sandbox):
    from wizard.sandbox.identity import object_id
    graph = app_token(sandbox, "https://graph.microsoft.com")
    body = {"message": {"subject": "via Graph", "body": {"contentType": "HTML", "content": "<p>Hello</p>"},
                        "toRecipients": [{"emailAddress": {"address": sample.SERVICE_USER}}],
                        "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.pdf",
                                         "contentType": "application/pdf",
                                         "contentBytes": base64.b64encode(PDF).decode()}]}}
    r = requests.post(f"{sandbox.base_url}/v1.0/users/{object_id('user', sample.SENDER)}/sendMail", json=body,
                      headers={"Authorization": f"Bearer {graph}"}, verify=sandbox.ca_path, timeout=5)
    assert r.status_code == 202, r.text
    m = imap_login(sandbox, user_token(sandbox))
    m.select("INBOX")
    _, data = m.fetch("1", "(BODY[])")
    parsed = email.message_from_bytes(data[0][1], policy=email.policy.default)
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Hello</p>"
    assert [a.get_content() for a in parsed.iter_attachments()] == [PDF]
    assert m.search(None, "SEEN")[1] == [b"1"]                      # BODY[] (not PEEK) marks it seen
    assert m.search(None, "NOT", "SEEN", "OR", "FROM", "x", "SUBJECT", "y")[1] == [b""]
    assert m.search(None, "OR", "FROM", sample.SENDER, "SUBJECT", "y")[1] == [b"1"]
    with pytest.raises(imaplib.IMAP4.error, match="Command Argument Error"):
        m.search(None, "KEYWORD", "x")
    assert m.noop()[0] == "OK"                                       # the session survives a BAD
    m.logout()

    with smtp_login(sandbox, user_token(sandbox)) as s:
        assert s.docmd("MAIL", "FROM:nonsense")[0] == 501
        s.send_message(letter("via SMTP", to=sample.RECIPIENT))
    r = requests.get(f"{sandbox.base_url}/v1.0/users/{sample.RECIPIENT}/mailFolders/inbox/messages"
                     "?$filter=hasAttachments eq true and subject eq 'via SMTP'&$top=1",
                     headers={"Authorization": f"Bearer {graph}"}, verify=sandbox.ca_path, timeout=5)
    [msg] = r.json()["value"]
    assert msg["from"]["emailAddress"]["address"] == sample.SENDER and msg["internetMessageId"].startswith("<")
    assert "@odata.nextLink" not in r.json()


def test_latency_delays_each_smtp_and_imap_reply():
    latency = 0.05
    with Sandbox(latency=latency) as sb:
        assert sb._mail_server("smtp").request_queue_size == sb._mail_server("imap").request_queue_size == 64
        t0 = time.perf_counter()
        s = smtplib.SMTP(sb.host, sb.smtp_port, timeout=5)                  # waits for the greeting
        t1 = time.perf_counter()
        assert s.noop()[0] == 250
        t2 = time.perf_counter()
        s.close()
        m = imaplib.IMAP4_SSL(sb.host, sb.imap_port, ssl_context=tls(sb), timeout=5)
        t3 = time.perf_counter()
        assert m.noop()[0] == "OK"
        t4 = time.perf_counter()
        m.shutdown()
    assert min(t1 - t0, t2 - t1, t4 - t3) >= latency


def test_where_the_sample_app_may_not_use_smtp_and_imap_app_only(sandbox):
    """The sample is set up completely; each missing piece is its own refusal."""
    assert smtp_login(sandbox, app_token(sandbox), sample.SENDER).quit()[0] == 221
    imap_login(sandbox, app_token(sandbox), sample.INCOMING[0]).logout()
    sandbox.tenant.mailbox(sample.INCOMING[0]).full_access.clear()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATE failed."):
        imap_login(sandbox, app_token(sandbox), sample.INCOMING[0])
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATE failed."):    # never granted on RECIPIENT
        imap_login(sandbox, app_token(sandbox), sample.RECIPIENT)


# -- as strict as RFC-conforming servers (issue 13, items 1 and 2) -------------------------------

def _starttls(sb) -> smtplib.SMTP:
    s = smtplib.SMTP(sb.host, sb.smtp_port, timeout=5)
    s.starttls(context=tls(sb))
    s.ehlo()
    return s


def test_smtp_command_line_over_512_octets_is_refused(sandbox):
    blob = base64.b64encode(xoauth2(sample.SERVICE_USER, user_token(sandbox)).encode()).decode()
    assert len(blob) > 512                                     # an Entra-sized token
    with _starttls(sandbox) as s:
        assert s.docmd("AUTH", "XOAUTH2 " + blob) == (500, b"5.5.2 Line too long")
        assert s.docmd("NOOP")[0] == 250                       # the session goes on
        assert smtp_xoauth2(s, sample.SERVICE_USER, user_token(sandbox))[0] == 235


def test_smtp_refusal_is_exchanges_documented_direct_535(sandbox):
    with _starttls(sandbox) as s:
        assert s.docmd("AUTH", "XOAUTH2")[0] == 334
        code, text = s.docmd(base64.b64encode(xoauth2(sample.RECIPIENT, user_token(sandbox)).encode()).decode())
        assert (code, text.split(b" [")[0]) == (535, b"5.7.3 Authentication unsuccessful")   # no error challenge


def test_imap_error_challenge_wants_an_empty_line_then_gives_the_final_no(sandbox):
    for answer, expected in ((b"", "AUTHENTICATE failed."), (None, "Expected an empty response")):
        m = imaplib.IMAP4_SSL(sandbox.host, sandbox.imap_port, ssl_context=tls(sandbox), timeout=5)
        first = xoauth2(sample.RECIPIENT, user_token(sandbox)).encode()        # not the token's user
        seen = []

        def reply(challenge, first=first, answer=answer, seen=seen):
            seen.append(challenge)
            return first if len(seen) == 1 else (first if answer is None else answer)
        with pytest.raises(imaplib.IMAP4.error, match=expected):
            m.authenticate("XOAUTH2", reply)
        assert b'"status":"401"' in seen[1]
        m.shutdown()


# -- the runtime's SMTP and IMAP clients against them (issue 13, items 1-5) ------------------------

def _runtime(sb, protocol="smtp+imap", flow="password", **overrides):
    from runtime_helpers import config
    from wizard.runtime import Mailer
    cfg = config(sb, protocol, flow, **overrides)
    return cfg, Mailer(cfg, sleep=lambda s: None)


def test_runtime_smtp_sends_a_long_xoauth2_response_after_the_334(sandbox, monkeypatch):
    from wizard.sandbox.smtp import SmtpHandler
    lines = []
    original = SmtpHandler.command
    monkeypatch.setattr(SmtpHandler, "command", lambda self, line: (lines.append(line), original(self, line))[1])
    cfg, mailer = _runtime(sandbox)
    with mailer:
        mailer.send(sample.RECIPIENT, "long token", "body")
    assert "AUTH XOAUTH2" in lines and all(len(line) + 2 <= 512 for line in lines)
    assert [m.subject for m in sandbox.tenant.mailbox(sample.RECIPIENT).inbox] == ["long token"]


def test_runtime_imap_answers_the_error_challenge_and_reports_the_final_words(sandbox):
    from wizard.runtime import MailError
    cfg, mailer = _runtime(sandbox)
    sandbox.tenant.mailbox(cfg.incoming.accounts[0].address).imap_disabled = True
    with mailer, pytest.raises(MailError) as e:
        mailer.fetch(cfg.incoming.accounts[0].address)
    d = e.value.diagnosis
    assert d.code == "IMAP AUTHENTICATE failed"
    assert "AUTHENTICATE failed." in d.service_message and "Expected an empty" not in d.service_message
    assert "status 401" in d.service_message                    # the error challenge, in words


def _imap_transport(sb):
    from wizard.runtime.imap import ImapTransport
    from wizard.runtime.tokens import SignIn
    cfg = sb.config("password", protocol="smtp+imap")
    return ImapTransport(cfg, None, server="mail.example.org", port=993), SignIn("password", sample.SERVICE_USER, "x")


def test_rfc_5530_authenticationfailed_is_a_refused_sign_in_with_the_servers_words(sandbox):
    t, who = _imap_transport(sandbox)
    d = t._diagnose(imaplib.IMAP4.error("[AUTHENTICATIONFAILED] Authentication failed."), sample.INCOMING[0], who)
    assert d.code == "imap.auth"
    assert "[AUTHENTICATIONFAILED] Authentication failed." in d.cause and d.service_message
    assert "Microsoft" not in d.fix and "trace ID" not in d.fix


def _smtp_transport(sb, server="mail.example.org"):
    from wizard.runtime.smtp import SmtpTransport
    from wizard.runtime.tokens import SignIn
    cfg = sb.config("password", protocol="smtp+imap")
    return SmtpTransport(cfg, None, server=server, port=587), SignIn("password", sample.SERVICE_USER, "x")


def test_a_refused_recipient_has_its_own_diagnosis(sandbox):
    t, who = _smtp_transport(sandbox)
    refused = smtplib.SMTPRecipientsRefused({"x@fabrikam.example": (554, b"5.7.1 <x@fabrikam.example>: Relay "
                                                                          b"access denied")})
    d = t._diagnose(refused, sample.SENDER, who, sample.SERVICE_USER)
    assert d.code == "smtp.rcpt" and "x@fabrikam.example" in d.cause
    assert "554 5.7.1 <x@fabrikam.example>: Relay access denied" in d.cause


@pytest.mark.parametrize("exc, code", [
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"), "smtp.auth"),
    (smtplib.SMTPResponseException(500, b"5.5.2 Line too long"), "smtp.refused"),
    (smtplib.SMTPResponseException(454, b"4.7.0 Temporary authentication failure"), "smtp.transient")])
def test_fix_for_another_server_does_not_send_the_user_to_microsoft(sandbox, exc, code):
    t, who = _smtp_transport(sandbox)
    d = t._diagnose(exc, sample.SENDER, who, sample.SERVICE_USER)
    assert d.code == code
    assert "Microsoft" not in d.fix and "trace ID" not in d.fix
    assert exc.smtp_error.decode() in d.cause


def test_smtp_4xx_is_tried_again_within_bounds(sandbox, monkeypatch):
    from wizard.runtime import MailError
    from wizard.sandbox.smtp import SmtpHandler
    answers = ["451 4.3.0 Temporary failure, try again", "454 4.7.0 Temporary failure"]
    original = SmtpHandler.do_MAIL

    def busy_then_fine(self, arg):
        if answers:
            self.send(answers.pop(0))
        else:
            original(self, arg)
    monkeypatch.setattr(SmtpHandler, "do_MAIL", busy_then_fine)
    cfg, mailer = _runtime(sandbox)
    waits = []
    with mailer:
        t = mailer._outgoing()
        t.sleep = waits.append
        mailer.send(sample.RECIPIENT, "after two 4xx", "body")
        assert len(waits) == 2 and sum(waits) <= 5
        answers[:] = ["451 4.3.0 Temporary failure"] * 5          # never gets better: bounded, then a diagnosis
        waits.clear()
        with pytest.raises(MailError) as e:
            mailer.send(sample.RECIPIENT, "never", "body")
    assert len(waits) == 2 and e.value.code == "http.429"      # Exchange's busy diagnosis (451 from Microsoft)
    assert [m.subject for m in sandbox.tenant.mailbox(sample.RECIPIENT).inbox] == ["after two 4xx"]


def test_check_waits_visibly_once_after_an_smtp_4xx_and_passes(sandbox, monkeypatch):
    from runtime_helpers import config
    from wizard.check.engine import run_check
    from wizard.sandbox.smtp import SmtpHandler
    busy = ["454 4.7.0 Temporary authentication failure"]
    original = SmtpHandler._xoauth2
    monkeypatch.setattr(SmtpHandler, "_xoauth2", lambda self, blob: self.send(busy.pop()) if busy
                        else original(self, blob))
    seen = []
    report = run_check(config(sandbox, "smtp+imap", "password"),
                       on_step=lambda s: seen.append((s.id, s.status, s.summary)))
    assert report.ok and not busy
    assert any(i == "mailbox" and st == "running" and "try again later (4xx)" in text for i, st, text in seen)
