"""IMAP pieces without connection state: argument parsing, UIDs, search keys
and FETCH items rendered from the tenant's messages."""

from __future__ import annotations

import re
import zlib
from datetime import datetime

from wizard.sandbox.mailstore import received_dt

FLAGS = r"\Seen \Answered \Flagged \Deleted \Draft $MDNSent"
SYSTEM_FLAGS = {f.lower(): f for f in FLAGS.split()}
TOKEN_RE = re.compile(r'"((?:[^"\\]|\\.)*)"|(\([^)]*\))|([^\s()]+)')
ITEM_RE = re.compile(r"(BODY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d+)\.(\d+)>)?|([A-Z0-9.]+)", re.I)
MACROS = {"ALL": "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE", "FAST": "FLAGS INTERNALDATE RFC822.SIZE",
          "FULL": "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY"}


def args(text: str) -> list[str]:
    return [q.replace('\\"', '"').replace("\\\\", "\\") if q or (not p and not a) else (p or a)
            for q, p, a in TOKEN_RE.findall(text)]


def uid_validity(name: str) -> int:
    return zlib.crc32(name.lower().encode()) & 0x7FFFFFFF or 1


def quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def assign_uids(mb, items) -> None:
    for m in items:
        if not m.uid:
            m.uid, mb.uid_next = mb.uid_next, mb.uid_next + 1


def parse_fetch(spec: str, uid: bool) -> list[tuple[str, str, str, str]]:
    """(name, section, offset, count) per FETCH item; bracketed forms are named "BODY[]"/"BODY.PEEK[]"."""
    spec = spec.strip()
    spec = MACROS.get(spec.upper(), spec.strip("()"))
    items = [(b.upper() + "[]" if b else w.upper(), s.upper(), o, n) for b, s, o, n, w in ITEM_RE.findall(spec)]
    if uid and not any(i[0] == "UID" for i in items):
        items.insert(0, ("UID", "", "", ""))
    return items


def search_key(m, a: list[str], i: int, pick) -> tuple[bool, int]:
    """Whether message m matches the search key at a[i]; and the index after it."""
    key = a[i].upper()
    if key == "ALL":
        return True, i + 1
    if key == "NOT":
        ok, j = search_key(m, a, i + 1, pick)
        return not ok, j
    if key == "OR":
        left, j = search_key(m, a, i + 1, pick)
        right, k = search_key(m, a, j, pick)
        return left or right, k
    if key.startswith("(") and key.endswith(")"):
        inner, j = args(a[i][1:-1]), 0
        while j < len(inner) and (r := search_key(m, inner, j, pick))[0]:
            j = r[1]
        return j >= len(inner), i + 1
    if key in ("SEEN", "UNSEEN"):
        return m.is_read == (key == "SEEN"), i + 1
    if key in ("DELETED", "UNDELETED", "FLAGGED", "UNFLAGGED", "ANSWERED", "UNANSWERED"):
        flag = "\\" + key.removeprefix("UN").capitalize()
        return (flag in m.flags) != key.startswith("UN"), i + 1
    if key in ("SINCE", "BEFORE", "ON"):
        day, got = datetime.strptime(a[i + 1], "%d-%b-%Y").date(), received_dt(m).date()
        return (got >= day if key == "SINCE" else got < day if key == "BEFORE" else got == day), i + 2
    if key in ("FROM", "SUBJECT", "TO", "BODY", "TEXT"):
        hay = {"FROM": m.sender, "SUBJECT": m.subject, "TO": " ".join(m.to)}.get(key, m.subject + " " + m.body)
        return a[i + 1].lower() in hay.lower(), i + 2
    if key == "UID":
        return any(p[1] is m for p in pick(a[i + 1], True)), i + 2
    if key[:1].isdigit() or key == "*":
        return any(p[1] is m for p in pick(a[i], False)), i + 1
    raise ValueError(f"unsupported search key {key}")


def fetch_item(m, raw: bytes, name: str, section: str, off: str, count: str) -> bytes:
    head, _, text = raw.partition(b"\r\n\r\n")
    if name == "UID":
        return f"UID {m.uid}".encode()
    if name == "FLAGS":
        return b"FLAGS " + flags_bytes(m)
    if name == "RFC822.SIZE":
        return f"RFC822.SIZE {len(raw)}".encode()
    if name == "INTERNALDATE":
        return f'INTERNALDATE "{received_dt(m).strftime("%d-%b-%Y %H:%M:%S +0000")}"'.encode()
    if name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
        data = {"RFC822": raw, "RFC822.HEADER": head + b"\r\n\r\n", "RFC822.TEXT": text}[name]
        return f"{name} {{{len(data)}}}\r\n".encode() + data
    if name in ("BODY[]", "BODY.PEEK[]"):
        data = head + b"\r\n\r\n" if section == "HEADER" else text if section == "TEXT" else raw
        label = f"BODY[{section}]"
        if off:
            data, label = data[int(off):int(off) + int(count)], f"{label}<{off}>"
        return f"{label} {{{len(data)}}}\r\n".encode() + data
    return f"{name} NIL".encode()            # ENVELOPE, BODYSTRUCTURE: not rendered by the sandbox


def flags_bytes(m) -> bytes:
    return ("(" + " ".join(sorted(m.flags | ({"\\Seen"} if m.is_read else set()))) + ")").encode()
