"""A message's header section as RFC 6532 allows it (UTF-8, SMTPUTF8) and RFC 2047 encoded words:
read once, never the body (a message may be 150 MB); its addresses and its subject in plain text."""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.parser import HeaderParser
from email.utils import getaddresses

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def section(data: bytes) -> bytes:
    """The header section: the bytes up to the first empty line (none when the message starts with one)."""
    if data.startswith((b"\r\n", b"\n")):
        return b""
    end = _HEADER_END.search(data)
    return bytes(data[:end.start()] if end else data)


def read(data: bytes):
    """The message's header section (never the body) read as UTF-8: RFC 6532 section 3.2 allows UTF-8
    in header fields (SMTPUTF8); bytes that are not UTF-8 show as U+FFFD."""
    return HeaderParser().parsestr(section(data).decode("utf-8", "replace"))


def addresses(headers, *names: str) -> list[str]:
    """The addresses in the header fields ``names``; an address written in RFC 2047 encoded words (as
    Python's ``EmailMessage.as_bytes()`` writes ``üser@...``: ``=?utf-8?q?=C3=BCser?=@...``) decoded."""
    out = []
    for _, addr in getaddresses([str(v) for k in names for v in headers.get_all(k, [])]):
        if "=?" in addr:
            try:
                addr = "".join(part.decode(charset or "raw-unicode-escape", "replace") if isinstance(part, bytes)
                               else part for part, charset in decode_header(addr))
            except (ValueError, LookupError, HeaderParseError):   # broken encoded words: compared as written
                pass
        if addr:
            out.append(addr)
    return out


def text(headers, name: str) -> str:
    """A header field as a person reads it (encoded words decoded, folding undone), "" when absent."""
    raw = str(headers.get(name, "") or "")
    try:
        raw = str(make_header(decode_header(raw)))
    except (ValueError, LookupError, HeaderParseError):
        pass
    return " ".join(raw.split())
