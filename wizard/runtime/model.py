"""The plain objects the runtime hands out: ``Message``, ``Attachment``,
``MailError``. No network, no msal/exchangelib."""

from __future__ import annotations

import mimetypes
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from wizard.diagnosis.catalogue import Diagnosis, DiagnosisError, lookup


INCOMING = ("ews", "graph", "imap")   # the protocols that can read mail


@dataclass
class Attachment:
    """A file to send: its name, MIME type and bytes. ``is_inline`` with ``content_id`` (no angle brackets): a part
    the HTML body shows (``<img src="cid:...">``), as Graph's fileAttachment and attachmentItem take it."""
    name: str
    content_type: str
    data: bytes = field(repr=False)
    is_inline: bool = False
    content_id: str | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> "Attachment":
        p = Path(path).expanduser()
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise MailError(lookup("config.invalid", service_message=f"{p}: {exc.strerror or exc}")) from None
        ctype = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        return cls(p.name, ctype, data)

    @property
    def size(self) -> int:
        return len(self.data)


def as_attachment(item) -> Attachment:
    return item if isinstance(item, Attachment) else Attachment.from_path(item)


@dataclass
class Message:
    """A received message, the same whatever the protocol.

    ``id`` is what ``mark_processed`` takes back (an EWS item id, a Graph
    message id, or an IMAP UID as text). ``attachments`` is metadata only:
    ``[(name, content_type, size)]``."""
    id: str
    sender: str
    to: list[str]
    subject: str
    received: datetime | None
    body_text: str = ""
    attachments: list[tuple[str, str, int]] = field(default_factory=list)
    account: str = ""
    is_read: bool = False

    def to_json(self) -> dict:
        return {"account": self.account, "id": self.id, "from": self.sender, "to": self.to,
                "subject": self.subject, "received": self.received.isoformat() if self.received else None,
                "attachments": [{"name": n, "content_type": c, "size": s} for n, c, s in self.attachments]}


class MailError(DiagnosisError):
    """A send/fetch failure with a catalogue ``Diagnosis`` (``.diagnosis``:
    code, cause, fix). The message never holds a secret or token."""

    def __init__(self, diagnosis: Diagnosis, *, account: str | None = None):
        super().__init__(diagnosis)
        self.account = account

    @property
    def code(self) -> str:
        return self.diagnosis.code


def error(code: str, *, cfg=None, flow=None, service_message: str | None = None, **values) -> MailError:
    return MailError(lookup(code, cfg=cfg, flow=flow, service_message=service_message, **values),
                     account=values.get("address"))


def recipients(value) -> list[str]:
    """'a@x, b@y' / ['a@x'] / None -> ['a@x', 'b@y']."""
    if not value:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for item in items:
        out += [p.strip() for p in str(item).replace(";", ",").split(",") if p.strip()]
    return out


def each_at_once(fn, items, max_workers: int) -> None:
    """fn(item) for every item, concurrently in a bounded pool (in turn for one item)."""
    workers = max(1, min(max_workers, len(items)))
    if workers == 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mailwizard-close") as pool:
        list(pool.map(fn, items))


def diagnosis_of(exc: BaseException, cfg=None) -> Diagnosis:
    """The Diagnosis for anything a runtime call raised (MailError or not)."""
    if isinstance(exc, MailError):
        return exc.diagnosis
    return lookup("internal", cfg=cfg, service_message=f"{type(exc).__name__}: {exc}"[:300])
