"""What the SMTP and IMAP clients share: the SASL XOAUTH2 exchange (initial
response, error challenge), telling Exchange Online from another server, the
server's own words for a diagnosis, and a look at what a port speaks when it
does not speak the expected protocol. No secrets in anything returned here."""

from __future__ import annotations

import base64
import binascii
import json
import socket

# Exchange Online's hosts in every cloud (smtp.office365.com, outlook.office365.com, *.office365.us,
# partner.outlook.cn, ...) and the words its greetings carry.
_MICROSOFT_HOSTS = ("office365.com", "outlook.com", "office365.us", "outlook.cn", "office.com")
_MICROSOFT_WORDS = ("microsoft", "outlook.com", "office365")
SMTP_MAX_LINE = 512           # RFC 5321 4.5.3.1.4, with the CRLF


def xoauth2(user: str, token: str) -> str:
    """The SASL XOAUTH2 client response (base64)."""
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode("ascii")


def error_challenge(data) -> str:
    """The XOAUTH2 error challenge in words ("status 401, schemes bearer, scope mail"), from its
    base64 or already decoded JSON; "" when it says nothing readable."""
    raw = data if isinstance(data, bytes) else str(data or "").encode()
    raw = raw.strip()
    if not raw:
        return ""
    for candidate in (raw, _b64(raw)):
        if candidate is None:
            continue
        try:
            parsed = json.loads(candidate)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(parsed, dict):
            return ", ".join(f"{k} {v}" for k, v in parsed.items() if isinstance(v, (str, int)))[:200]
    return ""


def _b64(raw: bytes) -> bytes | None:
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


def is_microsoft(host: str, greeting: str = "") -> bool:
    """Is this Exchange Online (or a server that says it is Microsoft's, such as the sandbox)?"""
    host = (host or "").lower().rstrip(".")
    if any(host == h or host.endswith("." + h) for h in _MICROSOFT_HOSTS):
        return True
    text = (greeting or "").lower()
    return any(w in text for w in _MICROSOFT_WORDS)


def words(code: int | None, text) -> str:
    """A server reply as one line of its own words: '554 5.7.1 <x@y>: Relay access denied'."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(str(text or "").split())
    return (f"{code} {text}" if code not in (None, -1) else text)[:300]


def probe(host: str, port: int, timeout: float = 3.0) -> str:
    """What the server on host:port says first over plain TCP (its greeting), or "" when it says
    nothing in ``timeout`` seconds (a TLS port waits for the client). Used only to explain a
    failure: which protocol the port speaks."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = s.recv(512)
    except OSError:
        return ""
    line = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return "".join(ch for ch in line if ch.isprintable())[:200]


def speaks(greeting: str) -> str:
    """The protocol a greeting belongs to, in words ("" when not recognisable)."""
    g = greeting.strip()
    if g.startswith(("* OK", "* PREAUTH", "* BYE")):
        return "IMAP"
    if g[:3].isdigit() and ("LMTP" in g.upper()):
        return "LMTP"
    if g[:3].isdigit():
        return "SMTP"
    if g.startswith("+OK"):
        return "POP3"
    if g.upper().startswith(("HTTP/", "<!DOCTYPE", "<HTML")):
        return "HTTP"
    if g.startswith("SSH-"):
        return "SSH"
    return ""
