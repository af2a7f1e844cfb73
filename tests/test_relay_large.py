"""Large mail through the relay over Graph (one request carries about 4 MB): large parts wherever they are nested
go onto the draft one by one (inline images stay inline), and mail whose text alone is too large is refused at
DATA time saying why, not accepted and bounced later. SMTP upstream has no such limit."""

from __future__ import annotations

import email
import email.policy
import os
import smtplib
from email.message import EmailMessage

import pytest

from relay_helpers import PASSWORD, SENDER, TO, RunningRelay, message, relay_config, wait_for
from wizard.relay.large import split_large
from wizard.sandbox.mailstore import to_mime


@pytest.fixture
def big_relay(sandbox, tmp_path):
    r = RunningRelay(relay_config(sandbox, tmp_path, max_size_mb=20))
    yield r
    r.close()


def _send(port: int, m: EmailMessage):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.login("erp", PASSWORD)
        s.send_message(m)


def _arrived_or_dead(sandbox, relay, m):
    """The delivered copy of ``m`` in TO's inbox; fails (with the relay's log) when the relay buried it."""
    got = wait_for(lambda: [x for x in sandbox.tenant.mailbox(TO).inbox if x.internet_message_id == m["Message-ID"]]
                   or relay.spool.ids("dead"), timeout=30, what="the large message")
    assert not relay.spool.ids("dead"), relay.lines
    return got[0]


def _html_with_inline_image(image: bytes) -> EmailMessage:
    """multipart/alternative > (text/plain, multipart/related > (text/html, image/png with a Content-ID))."""
    m = message(subject="newsletter", body="See the chart.\n")
    m.add_alternative('<p>See the chart:</p><img src="cid:chart@contoso.com">\n', subtype="html")
    m.get_payload()[1].add_related(image, "image", "png", cid="<chart@contoso.com>")
    return m


def test_a_large_inline_image_goes_onto_the_draft_as_an_inline_attachment(sandbox, big_relay):
    image = os.urandom(5 * 1024 * 1024)
    m = _html_with_inline_image(image)
    _send(big_relay.port, m)
    got = _arrived_or_dead(sandbox, big_relay, m)
    assert [(a["content"] == image, a["is_inline"], a["content_id"], a["content_type"]) for a in got.attachments] == \
        [(True, True, "chart@contoso.com", "image/png")]
    assert got.body.strip() == "See the chart."
    assert b"Content-ID: <chart@contoso.com>" in to_mime(got)           # the recipient's copy shows it inline
    assert any("createUploadSession" in r.path for r in sandbox.requests)


def test_a_large_attachment_nested_below_the_top_level_goes_out(sandbox, big_relay):
    """multipart/mixed > (multipart/alternative, multipart/mixed > application/pdf): not a top-level part."""
    pdf = os.urandom(4 * 1024 * 1024)
    inner = EmailMessage()
    inner.add_attachment(pdf, maintype="application", subtype="pdf", filename="scan.pdf")
    m = message(subject="nested", body="The scan.\n")
    m.add_alternative("<p>The scan.</p>", subtype="html")
    m.make_mixed()
    m.attach(inner)
    _send(big_relay.port, m)
    got = _arrived_or_dead(sandbox, big_relay, m)
    assert [(a["name"], a["content"] == pdf, a["is_inline"]) for a in got.attachments] == [("scan.pdf", True, False)]


def test_a_text_body_too_large_for_graph_is_refused_at_data_time_saying_why(sandbox, big_relay):
    m = message(subject="report", body=("0123456789 " * 7 + "\n") * 75000)      # about 5.8 MB of text
    with pytest.raises(smtplib.SMTPDataError) as exc:
        _send(big_relay.port, m)
    code, reply = exc.value.smtp_code, exc.value.smtp_error.decode()
    assert code == 552 and "Microsoft Graph" in reply and "attachment" in reply and "MB" in reply, reply
    assert big_relay.spool.ids() == [] and big_relay.spool.ids("dead") == []          # nothing queued, no DSN
    assert not [r for r in sandbox.requests if "/messages" in r.path]


def test_the_same_text_body_goes_over_an_smtp_upstream(sandbox, tmp_path):
    r = RunningRelay(relay_config(sandbox, tmp_path, protocol="smtp", max_size_mb=20))
    try:
        m = message(subject="report", body=("0123456789 " * 7 + "\n") * 75000)
        _send(r.port, m)                                # no 4 MB rule upstream: accepted
        _arrived_or_dead(sandbox, r, m)
    finally:
        r.close()


def test_split_keeps_the_structure_and_takes_the_largest_parts_first():
    small_png, big_png = os.urandom(1000), os.urandom(3 * 1024 * 1024)
    m = _html_with_inline_image(big_png)
    m.get_payload()[1].add_related(small_png, "image", "png", cid="<logo@contoso.com>")
    m.add_attachment(b"id;qty\n", maintype="text", subtype="csv", filename="order.csv")
    rest, taken = split_large(m.as_bytes(), 1024 * 1024)
    assert [(a.name, a.is_inline, a.content_id) for a in taken] == [("chart.png", True, "chart@contoso.com")]
    left = email.message_from_bytes(rest, policy=email.policy.default)
    assert [p.get_content_type() for p in left.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png",
        "text/csv"]
    assert left["Message-ID"] == m["Message-ID"]
    assert split_large(m.as_bytes(), 10 * 1024 * 1024) == (m.as_bytes(), [])      # fits: as it came


def test_split_takes_a_forwarded_message_whole_and_leaves_a_valid_message():
    forwarded = message(subject="the original", body="x" * 200000)
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = SENDER, TO, "Fwd"
    m.add_attachment(forwarded)                           # message/rfc822, the only part
    rest, taken = split_large(m.as_bytes(), 20000)
    assert [(a.name, a.content_type) for a in taken] == [("the original.eml", "message/rfc822")]
    assert email.message_from_bytes(taken[0].data)["Subject"] == "the original"
    left = email.message_from_bytes(rest, policy=email.policy.default)
    assert left["Subject"] == "Fwd" and left.get_content_type() == "text/plain" and len(rest) < 2000
