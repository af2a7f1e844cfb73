"""Against real servers (issue 13): the Efecte ESM shape (user name & password, SMTP + IMAP) with
tokens from the sandbox's identity platform, mail handled by Dovecot (submission, IMAP, LMTP) and
Postfix, which check the tokens themselves. See tests/interop_servers.py."""

from __future__ import annotations

import json

from interop_servers import cli, save
from wizard.runtime.ews_client import TEST_SUBJECT
from wizard.runtime import Attachment, Mailer, Message
from wizard.sandbox import sample

USER = sample.SERVICE_USER
PDF = b"%PDF-1.4 interop \x00\x01\xfe" * 40


def test_check_json_passes_every_step_with_dovecot_checking_the_token(mail_servers, capsys):
    save(mail_servers.config("password"))
    code, out, err = cli(["check", "--json", "--send-to", USER], capsys)
    data = json.loads(out)
    assert code == 0 and data["ok"], out
    steps = {s["id"]: s for s in data["steps"]}
    assert {"tls", "token", "claims", "mailbox", "send", f"mailbox:{USER}"} <= set(steps)
    assert all(s["status"] == "pass" for s in data["steps"]), out
    assert "AUTH XOAUTH2" in steps["mailbox"]["summary"] and "IMAP" in steps[f"mailbox:{USER}"]["summary"]
    mail_servers.wait_delivered(USER, TEST_SUBJECT)


def test_send_with_attachment_then_poll_fetches_marks_seen_and_moves_it(mail_servers, capsys, tmp_path):
    save(mail_servers.config("password"))
    cli(["poll", "--once"], capsys)                             # start from an empty inbox
    att = tmp_path / "ticket-4711.pdf"
    att.write_bytes(PDF)
    code, out, err = cli(["send", "--to", USER, "--subject", "Ticket 4711", "--attach", str(att)], capsys)
    assert code == 0, err
    raw = mail_servers.wait_delivered(USER, "Ticket 4711")
    assert b'filename="ticket-4711.pdf"' in raw
    code, out, err = cli(["poll", "--once", "--json"], capsys)
    assert code == 0, err
    [line] = [json.loads(x) for x in out.splitlines()]
    assert (line["account"], line["subject"], line["from"]) == (USER, "Ticket 4711", USER)
    assert line["attachments"] == [{"name": "ticket-4711.pdf", "content_type": "application/pdf", "size": len(PDF)}]
    assert mail_servers.seen(USER, "Ticket 4711") == []                          # gone from the inbox
    assert "S" in mail_servers.seen(USER, "Ticket 4711", "Processed")[0]        # \Seen, in Processed
    code, out, err = cli(["poll", "--once", "--json"], capsys)
    assert (code, out) == (0, "")                                               # nothing the second time


def test_python_api_sends_through_postfix_and_fetches_over_imap(mail_servers):
    cfg = mail_servers.config("password", submit="postfix")
    with Mailer(cfg) as mailer:
        for m in mailer.fetch(USER):            # start from an empty inbox
            mailer.mark_processed(USER, m)
        mailer.send(USER, "Incident 99", "Printer on fire.\n",
                    attachments=[Attachment("log.txt", "text/plain", b"line 1\nline 2\n")])
        mail_servers.wait_delivered(USER, "Incident 99")
        [msg] = mailer.fetch(USER)
        assert isinstance(msg, Message) and msg.subject == "Incident 99" and msg.sender == USER
        assert msg.body_text.startswith("Printer on fire.") and msg.attachments == [("log.txt", "text/plain", 14)]
        mailer.mark_processed(USER, msg)
        assert mailer.fetch(USER) == []
    assert "S" in mail_servers.seen(USER, "Incident 99", "Processed")[0]
