"""Microsoft Graph JSON shapes for the sandbox: mail folders, messages,
file attachments, the error type and the $filter subset the sandbox reads (isRead, hasAttachments,
receivedDateTime, subject, from/emailAddress/address, internetMessageId)."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import quote

from wizard.sandbox.mailstore import change_key, child_names, folder, last_modified, parent_of
from wizard.sandbox.tenant import Message

FILTER_RE = re.compile(r"^\s*([\w/]+)\s+(eq|ne|ge|gt|le|lt)\s+('(?:[^']|'')*'|true|false|[\d\-:TZ.]+)\s*$", re.I)
FIELDS = {"isread": "isRead", "hasattachments": "hasAttachments", "receiveddatetime": "receivedDateTime",
          "subject": "subject", "from/emailaddress/address": "from", "internetmessageid": "internetMessageId"}


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def folder_id(address: str, name: str) -> str:
    return "AAMkAF" + base64.urlsafe_b64encode(f"{address.lower()}\x00{name}".encode()).decode()


ROOT_NAME = "Top of Information Store"      # the folder over the top level (well-known msgfolderroot)


def folder_json(mb, name: str) -> dict:
    items = folder(mb, name) or []
    parent = parent_of(name)
    return {"id": folder_id(mb.address, name), "displayName": name.rsplit("/", 1)[-1],
            "parentFolderId": folder_id(mb.address, parent or ROOT_NAME),
            "childFolderCount": len(child_names(mb, name)),
            "unreadItemCount": sum(1 for m in items if not m.is_read), "totalItemCount": len(items),
            "sizeInBytes": sum(len(m.body) + sum(len(a["content"]) for a in m.attachments) for m in items),
            "isHidden": False}


def address(tenant, addr: str) -> dict:
    user = tenant.user(addr)
    return {"emailAddress": {"name": (user.display_name if user and user.display_name else addr),
                             "address": addr}}


def conversation_index(m: Message) -> str:
    """A thread index as Outlook's: one reserved byte, 5 bytes of time, a 16-byte conversation GUID."""
    digest = hashlib.sha1(("conv" + m.id[6:30]).encode()).digest()
    stamp = hashlib.sha1(m.received.encode()).digest()[:5]
    return base64.b64encode(b"\x01" + stamp + digest[:16]).decode()


def message_json(tenant, mb, name: str, m: Message, select: str | None = None, bcc=()) -> dict:
    preview = re.sub(r"<[^>]+>", " ", m.body) if m.body_type == "html" else m.body
    ck = change_key(m)
    draft = name == "Drafts"
    data = {
        "@odata.etag": f'W/"{ck}"', "id": m.id, "createdDateTime": m.received,
        "lastModifiedDateTime": last_modified(m), "changeKey": ck, "categories": [],
        "receivedDateTime": m.received, "sentDateTime": None if draft else m.received,
        "hasAttachments": bool(m.attachments),
        "internetMessageId": internet_message_id(m),
        "subject": m.subject, "bodyPreview": " ".join(preview.split())[:255], "importance": "normal",
        "parentFolderId": folder_id(mb.address, name), "conversationId": "AAQkAD" + m.id[6:30],
        "conversationIndex": conversation_index(m),
        "isDeliveryReceiptRequested": False, "isReadReceiptRequested": False, "isRead": m.is_read,
        "isDraft": draft, "inferenceClassification": "focused",
        "webLink": "https://outlook.office365.com/owa/?ItemID=" + quote(m.id, safe="") +
                   "&exvsurl=1&viewmodel=ReadMessageItem",
        "body": {"contentType": m.body_type, "content": m.body},
        "sender": address(tenant, m.sender), "from": address(tenant, m.sender),
        "toRecipients": [address(tenant, a) for a in m.to], "ccRecipients": [address(tenant, a) for a in m.cc],
        "bccRecipients": [address(tenant, a) for a in bcc], "replyTo": [], "flag": {"flagStatus": "notFlagged"}}
    if select:
        keep = {"@odata.etag", "id"} | {s.strip() for s in select.split(",")}
        data = {k: v for k, v in data.items() if k in keep}
    return data


def internet_message_id(m: Message) -> str:
    return m.internet_message_id or f"<{m.id[:20]}@sandbox.contoso.com>"


def attachment_json(m: Message, i: int) -> dict:
    a = m.attachments[i]
    return {"@odata.type": "#microsoft.graph.fileAttachment", "@odata.mediaContentType": a["content_type"],
            "id": f"AAMkAT{i}-" + m.id[6:], "lastModifiedDateTime": m.received, "name": a["name"],
            "contentType": a["content_type"], "size": len(a["content"]), "isInline": bool(a.get("is_inline")),
            "contentId": a.get("content_id"),
            "contentLocation": None, "contentBytes": base64.b64encode(a["content"]).decode()}


def filter_messages(items: list[Message], text: str) -> list[Message]:
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.I) if text.strip() else []:
        m = FILTER_RE.match(clause)
        field = FIELDS.get(m.group(1).lower()) if m else None
        if field is None:
            raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid "
                             "nodes.")
        op, raw = m.group(2).lower(), m.group(3)
        value = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw.lower() == "true" \
            if raw.lower() in ("true", "false") else raw
        get = {"isRead": lambda x: x.is_read, "hasAttachments": lambda x: bool(x.attachments),
               "receivedDateTime": lambda x: x.received, "subject": lambda x: x.subject,
               "from": lambda x: x.sender.lower(), "internetMessageId": internet_message_id}[field]
        if field == "receivedDateTime":
            value = value.replace(".000", "").rstrip("Z") + "Z" if "T" in value else value + "T00:00:00Z"
        if field == "from":
            value = value.lower()
        cmp = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "ge": lambda a, b: a >= b,
               "gt": lambda a, b: a > b, "le": lambda a, b: a <= b, "lt": lambda a, b: a < b}[op]
        items = [x for x in items if cmp(get(x), value)]
    return items
