"""Against real servers (issue 13): app-only (client secret) over SMTP + IMAP, tokens from the
sandbox, mail handled by Dovecot and Postfix. See tests/interop_servers.py."""

from __future__ import annotations

import json

from interop_servers import cli, save
from wizard.runtime.ews_client import TEST_SUBJECT
from wizard.runtime import Attachment, Mailer
from wizard.sandbox import sample

ERP = sample.SENDER
ORDERS, INVOICES = "orders-app@contoso.com", "invoices-app@contoso.com"


def test_check_json_passes_every_step_including_each_imap_inbox(mail_servers, capsys):
    save(mail_servers.config("client_secret", accounts=[ORDERS, INVOICES]))
    code, out, err = cli(["check", "--json", "--send-to", ORDERS], capsys)
    data = json.loads(out)
    assert code == 0 and data["ok"], out
    ids = [s["id"] for s in data["steps"]]
    assert {"mailbox", "send", f"mailbox:{ORDERS}", f"mailbox:{INVOICES}"} <= set(ids)
    assert all(s["status"] == "pass" for s in data["steps"]), out
    mail_servers.wait_delivered(ORDERS, TEST_SUBJECT)


def test_send_poll_and_api_app_only(mail_servers, capsys, tmp_path):
    cfg = mail_servers.config("client_secret", accounts=[ORDERS, INVOICES], submit="postfix")
    save(cfg)
    cli(["poll", "--once"], capsys)                          # start from empty inboxes
    att = tmp_path / "invoice-1001.pdf"
    att.write_bytes(b"%PDF-1.4 invoice 1001")
    code, out, err = cli(["send", "--to", INVOICES, "--subject", "Invoice 1001", "--attach", str(att)], capsys)
    assert code == 0, err
    mail_servers.wait_delivered(INVOICES, "Invoice 1001")
    with Mailer(cfg) as mailer:
        mailer.send(ORDERS, "Order 7", "2 pallets", attachments=[Attachment("order.csv", "text/csv", b"id;qty\n7;2\n")])
    mail_servers.wait_delivered(ORDERS, "Order 7")
    code, out, err = cli(["poll", "--once", "--json"], capsys)
    assert code == 0, err
    got = sorted((x["account"], x["subject"], x["from"], [a["name"] for a in x["attachments"]])
                 for x in map(json.loads, out.splitlines()))
    assert got == [(INVOICES, "Invoice 1001", ERP, ["invoice-1001.pdf"]), (ORDERS, "Order 7", ERP, ["order.csv"])]
    assert "S" in mail_servers.seen(ORDERS, "Order 7", "Processed")[0]
    assert "S" in mail_servers.seen(INVOICES, "Invoice 1001", "Processed")[0]
    assert cli(["poll", "--once", "--json"], capsys)[:2] == (0, "")
    with Mailer(cfg) as mailer:
        assert mailer.fetch(ORDERS) == [] and mailer.fetch(INVOICES) == []
