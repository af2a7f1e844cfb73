"""`mailwizard relay` delivering over EWS ([outgoing] protocol = "ews", as Monitor G5's guides set it up) against
the sandbox: exactly once through a draft (CreateItem with the MIME as it came, SaveOnly into Drafts; SendItem),
recovery after a crash, failures, and the EWS retirement warning."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import smtplib
from datetime import date

import pytest

from relay_helpers import (PASSWORD, SENDER, TO, RunningRelay, cut_by_a_crash, inbox_ids, message, relay_config,
                           wait_for)
from wizard.sandbox.server import Fault

BCC = "orders@contoso.com"


@pytest.fixture
def relay(sandbox, tmp_path):
    r = RunningRelay(relay_config(sandbox, tmp_path, protocol="ews"))
    yield r
    r.close()


def _submit(port: int, m, to=None) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.login("erp", PASSWORD)
        s.send_message(m, to_addrs=to)


def _ews_bodies(sandbox, operation: str) -> list[bytes]:
    return [r.body for r in sandbox.requests if r.path.lower() == "/ews/exchange.asmx" and
            f"<m:{operation} ".encode() in r.body]


def test_smtplib_delivers_over_ews_once_with_bcc_and_the_mime_as_it_came(sandbox, relay):
    m = message(subject="Invoice 42 over EWS")
    m["X-ERP-Batch"] = "7"
    m.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice-42.pdf")
    _submit(relay.port, m, to=[TO, BCC])                               # orders@: envelope only, a Bcc
    wait_for(lambda: relay.status()["delivered_today"] == 1, what="the delivery")
    assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
    assert inbox_ids(sandbox, BCC) == [m["Message-ID"]]               # the Bcc recipient got it
    got = sandbox.tenant.mailbox(TO).inbox[-1]
    assert (got.subject, got.sender, got.to) == ("Invoice 42 over EWS", SENDER, [TO])   # Bcc not shown
    assert [(a["name"], a["content"]) for a in got.attachments] == [("invoice-42.pdf", b"%PDF-1.4 invoice")]
    # one CreateItem (SaveOnly into Drafts) carrying the submitted bytes unchanged, the Bcc beside them
    created = _ews_bodies(sandbox, "CreateItem")
    assert len(created) == 1 and b'MessageDisposition="SaveOnly"' in created[0] and b'Id="drafts"' in created[0]
    mime = base64.b64decode(re.search(rb"<t:MimeContent>([^<]+)</t:MimeContent>", created[0]).group(1))
    came = email.message_from_bytes(mime, policy=email.policy.default)
    for header in ("From", "To", "Subject", "Message-ID", "X-ERP-Batch"):
        assert came[header] == m[header], header
    assert [p.get_content() for p in came.iter_attachments()] == [b"%PDF-1.4 invoice"] and "Bcc" not in came
    assert b"<t:BccRecipients><t:Mailbox><t:EmailAddress>orders@contoso.com" in created[0]
    # then one SendItem with the draft's ChangeKey, keeping the copy in Sent Items; Drafts is empty again
    sent = _ews_bodies(sandbox, "SendItem")
    assert len(sent) == 1 and b'SaveItemToFolder="true"' in sent[0] and b"ChangeKey=" in sent[0]
    assert not sandbox.tenant.mailbox(SENDER).folders.get("Drafts")
    assert [x.internet_message_id for x in sandbox.tenant.mailbox(SENDER).sent] == [m["Message-ID"]]
    wait_for(lambda: any("delivered" in line and "over ews" in line for line in relay.lines), what="the log line")


def test_recovery_after_a_crash_sends_each_draft_once(sandbox, tmp_path):
    """The journal states a SIGKILL can leave behind, replayed with a fresh process's transport (no change keys
    remembered): `sending` asks GetItem whether the draft is still there."""
    from wizard.relay.delivery import Delivery
    from wizard.relay.spool import Spool
    from wizard.runtime import Mailer
    cfg = relay_config(sandbox, tmp_path, protocol="ews")
    spool = Spool(cfg.relay.spool_path()).open()
    with Mailer(cfg) as before_crash, Mailer(cfg) as mailer:
        ews, (who, _) = before_crash.transport(), before_crash.sender_of(SENDER)


        cases = [cut_by_a_crash(spool, ews, who, "sending", True), cut_by_a_crash(spool, ews, who, "sending", False),
                 cut_by_a_crash(spool, ews, who, "drafted", False)]
        delivery = Delivery(cfg, spool, mailer, log_line=lambda line: None, settle=0.0)
        for mid, _ in cases:
            delivery.process(mid)
        for mid, message_id in cases:
            assert inbox_ids(sandbox, TO).count(message_id) == 1, mid
        assert spool.ids() == [] and len(spool.ids("done")) == 3
        assert not sandbox.tenant.mailbox(SENDER).folders.get("Drafts")


def test_a_sent_draft_is_gone_for_getitem_and_a_changed_draft_is_read_again(sandbox):
    """What the recovery relies on, as Exchange answers: GetItem of a sent draft's ID is ErrorItemNotFound (it
    left Drafts under a new ID); SendItem wants the current ChangeKey (ErrorStaleObject: read it again)."""
    from wizard.runtime import Mailer
    with Mailer(sandbox.config(protocol="ews")) as mailer:
        ews, (who, sender) = mailer.transport(), mailer.sender_of(SENDER)
        draft = ews.create_mime_draft(who, sender, message(subject="draft").as_bytes())
        assert ews.draft_state(who, sender, draft) == "draft"
        sandbox.tenant.mailbox(SENDER).folders["Drafts"][0].subject = "edited elsewhere"   # a new ChangeKey
        ews.send_draft(who, sender, draft)
        assert [x.subject for x in sandbox.tenant.mailbox(TO).inbox] == ["edited elsewhere"]
        assert ews.draft_state(who, sender, draft) == "gone"
    assert len(_ews_bodies(sandbox, "SendItem")) == 2    # the stale key refused, then the current one


def test_permanent_failure_is_dead_without_dsn_and_busy_is_retried(sandbox, relay):
    sandbox.inject(Fault("/EWS/Exchange.asmx", ews_error="ErrorSendAsDenied", times=1))
    _submit(relay.port, message(subject="denied"))
    wait_for(lambda: relay.status()["dead"] == 1, what="the dead letter")
    dead = relay.status()["dead_messages"][0]
    assert dead["last_error"].startswith("ErrorSendAsDenied")
    wait_for(lambda: any("no DSN" in line for line in relay.lines), what="the log line")
    assert not [x for x in sandbox.tenant.mailbox(SENDER).inbox if x.subject.startswith("Undeliverable")]
    busy = sandbox.inject(Fault("/EWS/Exchange.asmx", ews_error="ErrorServerBusy", times=None, retry_after=0))
    m = message(subject="busy")
    _submit(relay.port, m)
    st = wait_for(lambda: relay.status()["retrying"] and relay.status(), what="a retry")
    assert st["retrying"][0]["last_error"].startswith("ErrorServerBusy") and st["dead"] == 1
    busy.times = 0
    wait_for(lambda: m["Message-ID"] in inbox_ids(sandbox, TO), what="delivery once Exchange is not busy")
    assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1


def test_too_large_for_one_ews_request_is_refused_at_data_time(sandbox, relay, monkeypatch):
    """The submitter hears it at once (552, why, and that Graph takes it), instead of a 250 and a bounce."""
    from wizard.runtime import ews
    monkeypatch.setattr(ews, "MAX_REQUEST", 20000)         # instead of ~64 MB: the same rule, a small message
    m = message(subject="Scan")
    m.add_attachment(b"x" * 30000, maintype="application", subtype="octet-stream", filename="scan.bin")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _submit(relay.port, m)
    assert refused.value.smtp_code == 552
    said = refused.value.smtp_error.decode()
    assert "too big for EWS" in said and 'protocol = "graph"' in said and "nothing was queued" in said
    assert relay.spool.ids() == [] and relay.spool.ids("dead") == []
    assert _ews_bodies(sandbox, "CreateItem") == []                # nothing went upstream, no DSN
    small = message(subject="Small")
    _submit(relay.port, small)                                      # under the limit: taken and delivered
    wait_for(lambda: small["Message-ID"] in inbox_ids(sandbox, TO), what="the small one")


def test_status_and_start_warn_of_the_ews_retirement(sandbox, tmp_path, capsys):
    from wizard.cli.main import main
    from wizard.config.files import save
    from wizard.relay.daemon import check_ready
    cfg = relay_config(sandbox, tmp_path, protocol="ews")
    path = tmp_path / "mailwizard.toml"
    save(cfg, path)
    assert main(["relay", "status", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "delivery: exactly once (EWS: draft, then send)" in out
    warning = next(line for line in out.splitlines() if line.startswith("warning: "))
    assert "EWS in Exchange Online" in warning and 'protocol = "graph"' in warning
    assert main(["relay", "status", "--json", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["warning"] == warning[len("warning: "):]
    # runs until the shutdown; refused after it, naming the way out; Exchange Server keeps EWS: no word
    assert check_ready(cfg, today=date(2027, 3, 31)) is None
    refused = check_ready(cfg, today=date(2027, 4, 1))
    assert "switched off" in refused and 'protocol = "graph"' in refused
    cfg.microsoft.exchange = "on_premises"
    assert check_ready(cfg, today=date(2027, 4, 1)) is None
    r = RunningRelay(relay_config(sandbox, tmp_path / "online", protocol="ews", max_size_mb=100))
    try:
        assert any(line.startswith("warning: EWS in Exchange Online") for line in r.lines)
        assert any("exactly once over EWS" in line for line in r.lines)
        assert any(line.startswith("note: max_size_mb = 100") and "47 MB" in line for line in r.lines)
    finally:
        r.close()


def test_delegated_sign_in_drafts_in_its_own_mailbox_and_sends_as(sandbox, tmp_path):
    """User name + password over EWS: the draft is the signed-in user's (its own Drafts), its From the sender
    it has Send As on, as the runtime's own EWS send does."""
    from wizard.config.relay import Relay, RelayClient
    from wizard.relay.auth import hash_password
    cfg = sandbox.config("password", protocol="ews")
    assert cfg.auth.username.lower() != SENDER
    cfg.relay = Relay(listen="127.0.0.1:0", spool=str(tmp_path / "spool"),
                      clients=[RelayClient(name="erp", password_hash=hash_password(PASSWORD), senders=[SENDER])])
    r = RunningRelay(cfg)
    try:
        m = message(subject="delegated")
        _submit(r.port, m)
        wait_for(lambda: m["Message-ID"] in inbox_ids(sandbox, TO), what="the delivery")
        created = _ews_bodies(sandbox, "CreateItem")
        assert len(created) == 1 and f"<t:EmailAddress>{cfg.auth.username}</t:EmailAddress>".encode() in created[0]
        assert sandbox.tenant.mailbox(TO).inbox[-1].sender == SENDER
    finally:
        r.close()


def test_ews_blocked_by_the_tenant_is_dead_without_dsn_naming_the_policy(sandbox, relay):
    sandbox.tenant.ews_blocked = True                       # Set-OrganizationConfig -EwsEnabled, no allow list
    _submit(relay.port, message(subject="blocked"))
    wait_for(lambda: relay.status()["dead"] == 1, what="the dead letter")
    assert relay.status()["dead_messages"][0]["last_error"].startswith("X-EWS-Policy-Reason")
    wait_for(lambda: any("no DSN" in line for line in relay.lines), what="the log line")
    assert relay.status()["queued"] == 0                    # no DSN queued either


def test_the_settings_sheet_names_ews_as_the_upstream_with_its_end(sandbox, tmp_path):
    """`export sheet` for a relay over EWS: the upstream and its end date, not "not a relay upstream"."""
    from wizard.guide import relay_settings as rs
    from wizard.guide.steps import load_guide
    cfg = relay_config(sandbox, tmp_path, protocol="ews")
    text = " ".join(rs.sheet_lines(cfg))
    assert "delivers over EWS (exactly once)" in text
    assert load_guide().ews_retirement.shutdown.isoformat() in text and "graph" in text
    cfg.microsoft.exchange = "on_premises"
    assert "switches EWS off" not in " ".join(rs.sheet_lines(cfg))
