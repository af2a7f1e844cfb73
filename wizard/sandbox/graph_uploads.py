"""Upload sessions for large file attachments, as Microsoft Graph documents them
(attachment: createUploadSession; "Attach large files to Outlook messages"):

- ``POST .../messages/{id}/attachments/createUploadSession`` with ``AttachmentItem``
  (attachmentType ``file``, name, size; contentType, isInline, contentId optional),
  parameter names in either case. 201 with an uploadSession: an opaque ``uploadUrl``
  carrying its own token (``?authtoken=``, so the PUTs need no Authorization header),
  ``expirationDateTime`` and ``nextExpectedRanges: ["0-"]``. Needs Mail.ReadWrite.
  A file under 3 MB: 400 ``ErrorAttachmentSizeShouldNotBeLessThanMinimumSize`` (use
  POST .../attachments); over 150 MB: 400 ``ErrorMessageSizeExceeded`` (code not documented for
  this call: Exchange's code for a too large item).
- ``PUT {uploadUrl}`` with ``Content-Range: bytes {start}-{end}/{total}``, bytes in order,
  each range at most 4 MB: 200 with ``nextExpectedRanges: ["{next}"]`` (the session's
  expiry stays what it was); the last range: 201, ``Location`` = the attachment's URL, no body.
  A range that does not start at the next expected byte: 416; a total other than the
  session's size, or a Content-Range length other than the body's: 400; a range over 4 MB: 413;
  after ``expirationDateTime``: 401 (the URL's token expired); a completed or deleted session: 404.
- ``DELETE {uploadUrl}``: cancel, 204.
The 416/413/401/404 codes are the sandbox's choice where Microsoft documents none.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote

from wizard.sandbox.graph_json import GraphError, attachment_json
from wizard.sandbox.identity import Response, json_response
from wizard.sandbox.mailstore import LOCK, folder_of, touch

MIN_SIZE = 3 * 1024 * 1024          # "between 3 MB and 150 MB"
MAX_SIZE = 150 * 1024 * 1024
MAX_RANGE = 4 * 1024 * 1024         # "up to 4 MB each time"
LIFETIME = 15 * 60.0                # seconds an upload URL stays valid (not documented; examples show minutes)
SESSION_RE = re.compile(r"/Users\('([^']*)'\)/Messages\('([^']*)'\)/AttachmentSessions\('([^']*)'\)$", re.I)
RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$", re.I)


def param(data, name: str):
    """An action parameter by name in any case (Graph takes ``AttachmentItem`` and ``attachmentItem``)."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k.lower() == name.lower():
                return v
    return None


@dataclass
class Session:
    sid: str
    token: str
    address: str
    message_id: str
    name: str
    content_type: str
    size: int
    expires: float
    is_inline: bool = False
    content_id: str | None = None
    data: bytearray = field(default_factory=bytearray)

    def expiry_text(self) -> str:
        return datetime.fromtimestamp(self.expires, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


class Uploads:
    """The open upload sessions of one sandbox. ``clock`` (time.time) and ``lifetime`` may be replaced by tests."""

    def __init__(self, sandbox):
        self.sb = sandbox
        self.sessions: dict[str, Session] = {}
        self.clock = time.time
        self.lifetime = LIFETIME
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.sessions.clear()

    def url(self, s: Session, tail: str) -> str:
        return (f"{self.sb.base_url}/api/v2.0/Users('{quote(s.address, safe='@')}')/Messages('"
                f"{quote(s.message_id, safe='=')}')/{tail}")

    # -- POST .../attachments/createUploadSession --------------------------------------------
    def create(self, mb, m, body: bytes) -> Response:
        if not body.strip():
            raise GraphError(400, "ErrorInvalidRequest", "Empty Payload. JSON content expected.")
        try:
            data = json.loads(body)
        except ValueError:
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                             "header is set and payload is of valid JSON format.") from None
        item = param(data, "AttachmentItem")
        if not isinstance(item, dict):
            raise GraphError(400, "ErrorInvalidRequest", "The parameter 'AttachmentItem' is missing.")
        kind, name, size = param(item, "attachmentType"), param(item, "name"), param(item, "size")
        if str(kind or "").lower() != "file":
            raise GraphError(400, "ErrorInvalidRequest", "AttachmentItem.attachmentType must be 'file'.")
        if not name or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise GraphError(400, "ErrorInvalidRequest", "AttachmentItem needs a name and its size in bytes.")
        if size < MIN_SIZE:
            raise GraphError(400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                             "Attachment size must be greater than the minimum size.")
        if size > MAX_SIZE:
            raise GraphError(400, "ErrorMessageSizeExceeded",
                             f"The attachment is {size} bytes; an upload session takes at most {MAX_SIZE} bytes.")
        s = Session(sid="AAMkAS" + secrets.token_urlsafe(18), token=secrets.token_urlsafe(32), address=mb.address,
                    message_id=m.id, name=str(name), size=size, expires=self.clock() + self.lifetime,
                    content_type=str(param(item, "contentType") or "application/octet-stream"),
                    is_inline=bool(param(item, "isInline")), content_id=param(item, "contentId"))
        with self._lock:
            self.sessions[s.sid] = s
        return json_response(201, {
            "@odata.context": f"{self.sb.base_url}/v1.0/$metadata#microsoft.graph.uploadSession",
            "uploadUrl": self.url(s, f"AttachmentSessions('{s.sid}')?authtoken={s.token}"),
            "expirationDateTime": s.expiry_text(), "nextExpectedRanges": ["0-"]})

    # -- PUT / DELETE {uploadUrl} -----------------------------------------------------------
    def handle(self, method: str, path: str, query: str, headers, body: bytes) -> Response:
        found = SESSION_RE.search(path)
        with self._lock:
            s = self.sessions.get(found.group(3)) if found else None
        if s is None or found.group(1).lower() != s.address.lower() or found.group(2) != s.message_id:
            raise GraphError(404, "ErrorItemNotFound", "The upload session was not found; it was completed, "
                             "cancelled or never created.")
        token = dict(parse_qsl(query)).get("authtoken", "")
        if not secrets.compare_digest(token, s.token):
            raise GraphError(401, "InvalidAuthenticationToken", "The authtoken of the upload URL is not valid.")
        if self.clock() > s.expires:
            raise GraphError(401, "InvalidAuthenticationToken", f"The upload session expired at "
                             f"{s.expiry_text()}; create a new upload session.")
        if method == "DELETE":
            with self._lock:
                self.sessions.pop(s.sid, None)
            return Response(204, b"", {})
        if method != "PUT":
            raise GraphError(405, "ErrorInvalidRequest", "Use PUT to upload a range or DELETE to cancel.")
        return self.put(s, headers, body)

    def put(self, s: Session, headers, body: bytes) -> Response:
        rng = RANGE_RE.match(headers.get("Content-Range", ""))
        if rng is None:
            raise GraphError(400, "ErrorInvalidRequest", "The Content-Range header is missing or malformed; "
                             "expected 'bytes {start}-{end}/{total}'.")
        start, end, total = (int(g) for g in rng.groups())
        if total != s.size:
            raise GraphError(400, "ErrorInvalidRequest", f"The upload session is for {s.size} bytes, but the "
                             f"Content-Range declares a total of {total}.")
        if end < start or end - start + 1 != len(body):
            raise GraphError(400, "ErrorInvalidRequest", "The Content-Range header length does not match the "
                             "provided number of bytes.")
        if len(body) > MAX_RANGE:
            raise GraphError(413, "RequestEntityTooLarge", f"A range of {len(body)} bytes is over the {MAX_RANGE} "
                             "bytes one PUT may carry.")
        with self._lock:
            expected = len(s.data)
            if start != expected or end >= s.size:
                raise GraphError(416, "InvalidRange", f"The range {start}-{end} is not the next expected one: "
                                 f"upload from byte {expected}.", {"Content-Range": f"bytes */{s.size}"})
            s.data += body
            done = len(s.data) == s.size
            if done:
                self.sessions.pop(s.sid, None)
        if not done:
            return json_response(200, {
                "@odata.context": f"{self.sb.base_url}/api/v2.0/$metadata#Users('{quote(s.address)}')/Messages("
                                  f"'{quote(s.message_id, safe='')}')/AttachmentSessions/$entity",
                "ExpirationDateTime": s.expiry_text(), "nextExpectedRanges": [str(len(s.data))]})
        mb = self.sb.tenant.mailbox(s.address)
        with LOCK:
            found = folder_of(mb, s.message_id) if mb is not None else None
            if found is None:
                raise GraphError(404, "ErrorItemNotFound", "The message of the upload session was not found.")
            m = found[1]
            m.attachments.append({"name": s.name, "content_type": s.content_type, "content": bytes(s.data),
                                  "is_inline": s.is_inline, "content_id": s.content_id})
            touch(m)
            att = attachment_json(m, len(m.attachments) - 1)
        return Response(201, b"", {"Location": self.url(s, f"Attachments('{att['id']}')")})
