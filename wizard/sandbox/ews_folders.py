"""A mailbox's folders as the sandbox's EWS sees them: distinguished and
custom folders, their parents and children, finding a message."""

from __future__ import annotations

import base64
import hashlib

from wizard.sandbox.tenant import Mailbox, Message
from wizard.sandbox.ews_xml import FOLDERS


# -- the mailbox's folders as EWS sees them ------------------------------------------------------

CUSTOM = "~"    # folder key prefix for folders made by the mailbox (EWS CreateFolder, Graph, IMAP CREATE)
MAIL_DISPLAY = {"inbox": "Inbox", "sentitems": "Sent Items", "deleteditems": "Deleted Items",
                "drafts": "Drafts", "junkemail": "Junk Email"}
TOP_FOLDERS = [k for k in FOLDERS if k not in ("root", "msgfolderroot", "archivemsgfolderroot")]


class _Refused(Exception):
    """A restriction, sort or view the sandbox answers with an EWS error code."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def attachment_id(address: str, message_id: str, index: int) -> str:
    return base64.b64encode(f"AAMkA:{address.lower()}:{index}:{message_id}".encode()).decode()


def _change_key(m: Message) -> str:
    """Changes whenever the item does (as Exchange's ChangeKey)."""
    state = f"{m.id}|{m.is_read}|{m.subject}|{sorted(m.flags)}".encode()
    return "CQAAABYAAA" + base64.b64encode(hashlib.sha1(state).digest()[:9]).decode()


def _own_folder(mb: Mailbox, display: str) -> str | None:
    """The key of mb.folders for a display name (case-insensitive)."""
    return next((k for k in mb.folders if k.lower() == display.lower()), None)


def _is_custom(name: str) -> bool:
    return name.lower() not in {v.lower() for v in MAIL_DISPLAY.values()}


def _exists(mb: Mailbox, key: str) -> bool:
    if key.startswith(CUSTOM):
        name = key[len(CUSTOM):]
        return _is_custom(name) and _own_folder(mb, name) is not None
    return key in FOLDERS


def _canonical(mb: Mailbox, key: str) -> str:
    """A custom folder's key with the display name as stored."""
    if key.startswith(CUSTOM):
        return CUSTOM + (_own_folder(mb, key[len(CUSTOM):]) or key[len(CUSTOM):])
    return key


def _display(mb: Mailbox, key: str) -> str:
    return key[len(CUSTOM):] if key.startswith(CUSTOM) else FOLDERS[key][0]


def _items(mb: Mailbox, key: str, create: bool = False) -> list[Message] | None:
    """The messages of a folder; None for a folder that holds no mail (root, calendar...)."""
    if key == "inbox":
        return mb.inbox
    if key == "sentitems":
        return mb.sent
    display = MAIL_DISPLAY.get(key) or (key[len(CUSTOM):] if key.startswith(CUSTOM) else None)
    if display is None:
        return None
    found = _own_folder(mb, display)
    if found is not None:
        return mb.folders[found]
    if key in MAIL_DISPLAY:
        return mb.folders.setdefault(display, []) if create else []
    return None


def _parent(key: str) -> str | None:
    if key == "root":
        return None
    return "root" if key in ("msgfolderroot", "archivemsgfolderroot") else "msgfolderroot"


def _children(mb: Mailbox, key: str) -> list[str]:
    if key == "root":
        return ["msgfolderroot"]
    if key == "msgfolderroot":
        return TOP_FOLDERS + [CUSTOM + n for n in mb.folders if _is_custom(n)]
    return []


def _descendants(mb: Mailbox, key: str, deep: bool) -> list[str]:
    out = []
    for child in _children(mb, key):
        out.append(child)
        if deep:
            out.extend(_descendants(mb, child, True))
    return out


def _find_message(mb: Mailbox, message_id: str) -> tuple[str, Message] | None:
    """(folder key, message) of a message anywhere in the mailbox."""
    named = {v.lower(): k for k, v in MAIL_DISPLAY.items()}
    places = [("inbox", mb.inbox), ("sentitems", mb.sent)] + \
        [(named.get(n.lower(), CUSTOM + n), items) for n, items in mb.folders.items()]
    for key, items in places:
        for m in items:
            if m.id == message_id:
                return key, m
    return None


# -- restrictions, sorting, paging ----------------------------------------------------------------
