"""Delivery status notifications (RFC 3464) for messages the relay gave up on.

The DSN goes back through the same path as any message: queued in the spool, delivered upstream.
Its From is the submitter's own mailbox (the message's header From, which the client was allowed to
use: Exchange refuses any other From), its To the envelope sender. It is marked as ours
(``Auto-Submitted: auto-replied``, RFC 3834, and ``X-Mailwizard-Relay: dsn``) and its journal says
``dsn``: a DSN that fails is never bounced. A message that was itself auto-submitted (a bounce, an
auto-reply) gets no DSN either.
"""

from __future__ import annotations

import socket
from email import message_from_string
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from wizard.relay import headers


def auto_submitted(data: bytes) -> bool:
    try:
        h = headers.read(data)
    except Exception:
        return False
    value = str(h.get("Auto-Submitted", "no") or "no").strip().lower()
    return value != "no" or bool(h.get("X-Mailwizard-Relay")) or "delivery-status" in str(h.get("Content-Type", ""))


def build(journal: dict, original: bytes, reason: str) -> bytes:
    sender = journal.get("sender") or journal.get("mail_from")
    to = journal.get("mail_from") or sender
    rcpts = journal.get("rcpts") or []
    host = socket.gethostname() or "mailwizard-relay"
    msg = MIMEMultipart("report", report_type="delivery-status")
    msg["From"] = sender
    msg["To"] = to
    subject = "Undeliverable: " + _subject(original)
    msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()   # RFC 2047
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Mailwizard-Relay"] = "dsn"
    msg.attach(MIMEText(
        "The mailwizard relay could not deliver this message and has stopped trying.\n\n"
        f"Recipients: {', '.join(rcpts)}\nReason: {reason}\n\n"
        f"The message is kept in the relay's dead-letter folder as {journal.get('id')}; "
        "`mailwizard relay queue retry ID` sends it again.\n", "plain", "utf-8"))
    blocks = [f"Reporting-MTA: dns; {host}\nArrival-Date: {formatdate(journal.get('received'), usegmt=True)}\n"]
    blocks += [f"Final-Recipient: rfc822; {r}\nAction: failed\nStatus: 5.0.0\n"
               f"Diagnostic-Code: x-mailwizard; {' '.join(reason.split())[:400]}\n" for r in rcpts]
    part = MIMEBase("message", "delivery-status")
    part.set_payload([message_from_string(b) for b in blocks])
    msg.attach(part)
    head = headers.section(original).replace(b"\r\n", b"\n").decode("utf-8", "replace")
    msg.attach(MIMEText(head, "rfc822-headers", "utf-8"))
    return msg.as_bytes(policy=SMTP)


def _subject(original: bytes) -> str:
    try:
        return headers.text(headers.read(original), "Subject") or "(no subject)"
    except Exception:
        return "(no subject)"


def queue_dsn(spool, journal: dict, reason: str) -> str | None:
    """Queue a DSN for the dead message ``journal``; its id, or None when none is due."""
    if journal.get("dsn") or not journal.get("mail_from"):
        return None
    try:
        original = spool.message(journal["id"], "dead")
    except OSError:
        original = b""
    if auto_submitted(original):
        return None
    data = build(journal, original, reason)
    sender = journal.get("sender") or journal["mail_from"]
    return spool.store(data, {"client": journal.get("client", ""), "mail_from": sender,
                              "rcpts": [journal["mail_from"]], "bcc": [], "sender": sender, "dsn": True,
                              "message_id": "", "peer": "", "bounce_of": journal["id"]})
