"""Mail too large for one Graph request (about 4 MB, the MIME in base64): which parts come out of the MIME to go
onto the draft one by one (``split_large``), and what cannot go at all (``graph_refusal``, asked at DATA time).

Any leaf part may come out, wherever it is nested (``multipart/mixed``, ``multipart/related`` inside
``multipart/alternative``, ...), except the text the message shows (``text/plain`` and ``text/html`` parts that
are not attachments); a ``message/rfc822`` part comes out whole (as an ``.eml`` file). A part with a
``Content-ID`` that is not marked ``attachment`` becomes an inline attachment (Graph's ``isInline`` and
``contentId``, which the HTML's ``cid:`` references find). The rest of the MIME structure stays as it was.
"""

from __future__ import annotations

import email
import email.policy
import mimetypes

from wizard.runtime.model import Attachment

MB = 1024 * 1024


def with_bcc(data: bytes, bcc: list[str]) -> bytes:
    """The message with a ``Bcc:`` header line for ``bcc`` put in front (Graph reads recipients from the MIME)."""
    if not bcc:
        return data
    return b"Bcc: " + ", ".join(bcc).encode("utf-8") + b"\r\n" + data


def request_size(mime: bytes | int) -> int:
    """The bytes of the request body Graph would get: the MIME (or that many bytes) base64-encoded."""
    n = mime if isinstance(mime, int) else len(mime)
    return 4 * ((n + 2) // 3)


def split_large(mime: bytes, limit: int) -> tuple[bytes, list[Attachment]]:
    """(MIME without its largest separable parts, those parts as attachments) so that the MIME's base64 fits
    ``limit`` when it can: the text that remains may still be too large (see ``graph_refusal``)."""
    msg = email.message_from_bytes(mime, policy=email.policy.default)
    parents: dict[int, object] = {}
    sized = sorted(((_size(p), p) for p in _separable(msg, parents)), key=lambda sp: sp[0], reverse=True)
    size, taken = len(mime), []
    for part_size, part in sized:
        if request_size(size) <= limit:       # so the estimate says: the bytes themselves tell
            size = len(msg.as_bytes()) if taken else len(mime)
            if request_size(size) <= limit:
                break
        size -= part_size
        taken.append(_attachment(part))
        _remove(msg, part, parents)
    return (msg.as_bytes() if taken else mime), taken


def _size(part) -> int:
    """About the bytes ``part`` takes in the MIME (its encoded payload and its header), without writing it out."""
    payload = part.get_payload()
    if isinstance(payload, str):
        return len(payload) + sum(len(k) + len(str(v)) + 4 for k, v in part.items())
    return len(part.as_bytes())


def graph_refusal(mime: bytes, limit: int, max_attachment: int) -> str | None:
    """Why Graph cannot take this message even with its parts on the draft one by one (None: it can)."""
    if request_size(mime) <= limit:
        return None
    small, taken = split_large(mime, limit)
    big = next((a for a in taken if a.size > max_attachment), None)
    if big is not None:
        return (f"its part {big.name} is {big.size / MB:.1f} MB; Microsoft Graph takes at most "
                f"{max_attachment // MB} MB per attachment")
    if request_size(small) <= limit:
        return None
    fits = limit * 3 // 4
    return (f"without its attachments it is still {len(small) / MB:.1f} MB (its text and headers), and Microsoft "
            f"Graph takes at most about {fits / MB:.1f} MB of them in one request (attachments go separately, up "
            f"to {max_attachment // MB} MB each): send the large content as an attachment")


def _separable(part, parents: dict, top: bool = True):
    """The leaf parts that may go as attachments (``parents``: id(part) -> its multipart container)."""
    if part.get_content_maintype() == "multipart":
        for sub in part.iter_parts():
            parents[id(sub)] = part
            yield from _separable(sub, parents, False)
    elif top:
        return                  # a message of one part: that part is its body
    elif part.get_content_type() in ("text/plain", "text/html") and not part.is_attachment():
        return                  # the text the message shows
    else:
        yield part


def _attachment(part) -> Attachment:
    ctype = part.get_content_type()
    name = part.get_filename()
    if part.get_content_maintype() == "message":        # message/rfc822 and the like: the message inside as a file
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        data = inner.as_bytes() if hasattr(inner, "as_bytes") else bytes(str(inner), "utf-8")
        subject = str(inner.get("Subject", "") or "").strip() if hasattr(inner, "get") else ""
        name = name or f"{subject or 'message'}.eml"
    else:
        data = part.get_payload(decode=True) or b""
    cid = str(part.get("Content-ID", "") or "").strip().strip("<>").strip()
    inline = bool(cid) and part.get_content_disposition() != "attachment"
    if not name:
        name = (cid.split("@")[0] if cid else "attachment") + (mimetypes.guess_extension(ctype) or "")
    return Attachment(name, ctype, data, is_inline=inline, content_id=cid or None)


def _remove(msg, target, parents: dict) -> None:
    """``target`` out of its container; a container left empty goes too (the message itself: an empty text)."""
    container = parents.get(id(target))
    while container is not None:
        payload = container.get_payload()
        payload[:] = [p for p in payload if p is not target]
        if payload:
            return
        target, container = container, parents.get(id(container))
    if target is msg:
        for header in ("Content-Type", "Content-Transfer-Encoding", "Content-Disposition"):
            del msg[header]
        msg.set_payload("")
