"""When a delegated sign-in (user name & password, device code) was last used.

A refresh token lapses after 90 days without use (AADSTS700082), quietly. So
every successful sign-in and every refresh the identity platform answers is
recorded here (the time only, never a token), and ``check`` warns when the
last one is older than ``IDLE_WARN_DAYS``; ``check``, ``poll`` and ``send``
refresh the token themselves when the last use is older than ``KEEPALIVE``.

The record is a JSON file in the user state dir (``signins.json``, mode 0600,
written atomically under a lock): ``{key: seconds since the epoch}``, the key
being the authority, client ID and user name (never a secret).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from wizard.config.files import read_state

IDLE_WARN_DAYS = 60
KEEPALIVE = 12 * 3600.0         # refresh when the last use is older than this (seconds)
DELEGATED = ("password", "device_code")


def state_path() -> Path:
    from platformdirs import user_state_path
    return user_state_path("mailwizard", appauthor=False) / "signins.json"


def key(cfg, username: str | None = None) -> str:
    user = username if username is not None else cfg.auth.username
    return f"{cfg.authority_url}|{cfg.microsoft.client_id}|{user or ''}".lower()


def last_used(cfg, username: str | None = None) -> float | None:
    """Seconds since the epoch of the last recorded sign-in or refresh; None: none recorded."""
    if cfg.auth.flow not in DELEGATED:
        return None
    value = read_state(state_path()).get(key(cfg, username))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def record(cfg, username: str | None = None, when: float | None = None) -> None:
    """Note a successful sign-in or refresh now (or at ``when``). Never raises:
    a state dir that cannot be written only loses the record."""
    if cfg.auth.flow not in DELEGATED:
        return
    from wizard.config.files import locked, write_private
    path = state_path()
    try:
        with locked(path) as target:
            data = read_state(target)
            data[key(cfg, username)] = round(time.time() if when is None else when, 3)
            write_private(target, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass


def refresh_due(cfg, username: str | None = None, now: float | None = None) -> bool:
    """True when a delegated sign-in has not been used for ``KEEPALIVE`` seconds
    (or never on record): the caller then redeems the refresh token."""
    if cfg.auth.flow not in DELEGATED:
        return False
    last = last_used(cfg, username)
    return last is None or (time.time() if now is None else now) - last >= KEEPALIVE


def from_identity_provider(result: dict | None) -> bool:
    """An MSAL result that came from the identity platform (a sign-in or a
    refresh), not from MSAL's cache."""
    return bool(result) and "access_token" in result and result.get("token_source") != "cache"
