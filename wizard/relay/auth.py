"""Relay client passwords: generated once, stored only as a scrypt hash.

The hash is ``scrypt$N$r$p$<salt hex>$<hash hex>`` (hashlib.scrypt, a fresh 16-byte salt per
client, N=2**14, r=8, p=1: about 16 MB and tens of milliseconds per check). A successful check
is remembered in memory only, as an HMAC under a key made at start, so a client that logs in for
every message does not pay scrypt each time; a wrong password always does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading

N, R, P = 2 ** 14, 8, 1
_KEY = os.urandom(32)
_ok: set[bytes] = set()
_lock = threading.Lock()


def generate_password() -> str:
    """24 URL-safe characters (~143 bits): what `relay add-client` prints once."""
    return secrets.token_urlsafe(18)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${N}${R}${P}${salt.hex()}${digest.hex()}"


def verify(password: str | bytes, stored: str) -> bool:
    """Does ``password`` match the stored scrypt hash? False for any malformed hash."""
    if isinstance(password, bytes):
        try:
            password = password.decode("utf-8")
        except UnicodeDecodeError:
            return False
    memo = hmac.new(_KEY, f"{stored}\0{password}".encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    with _lock:
        if memo in _ok:
            return True
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=256 * 1024 * 1024, dklen=len(digest) // 2)
    except (ValueError, TypeError):
        return False
    if not hmac.compare_digest(got.hex(), digest):
        return False
    with _lock:
        _ok.add(memo)
    return True
