"""What every MSAL sign-in here shares: the discovery cache, the token result,
the error type, the login host, and keeping MSAL's own log off the terminal.
Below both ``signin`` (client secret, password, certificate) and
``device_code``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from wizard.diagnosis.catalogue import DiagnosisError


class DiscoveryCache(dict):
    """An ``http_cache`` for MSAL that keeps only successful JSON answers to GET
    requests (the openid-configuration document), so several MSAL application
    objects of one check (retries, incoming accounts with their own sign-in)
    share one tenant discovery round trip.

    MSAL also caches POST answers in its http_cache (400 errors for 60 s,
    429/5xx until Retry-After): those are refused here, so a retry or a fix made
    on the server side always reaches the identity platform."""
    _INDEX = "_index_"      # MSAL's ExpiringMapping bookkeeping entry

    def __setitem__(self, key, value):
        if key == self._INDEX or (isinstance(key, str) and key.startswith("GET ") and _cacheable(value)):
            super().__setitem__(key, value)


def _cacheable(response) -> bool:
    status = getattr(response, "status_code", 0)
    ctype = str((getattr(response, "headers", None) or {}).get("content-type", ""))
    return 200 <= status < 300 and "json" in ctype.lower()


class AuthError(DiagnosisError):
    pass


@dataclass
class TokenResult:
    access_token: str = field(repr=False)
    expires_in: int
    claims: dict
    scopes: list[str]
    notes: list[str] = field(default_factory=list)
    attempts: int = 1


def _quiet_msal() -> None:
    """MSAL logs some failures (e.g. a proxy's HTML page) with logger.exception;
    with no handler Python prints them on stderr, over the TUI. A NullHandler
    stops that; an application that configures logging still gets them."""
    logger = logging.getLogger("msal")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def login_host(cfg) -> tuple[str, int]:
    """The identity platform's host and port, for diagnoses."""
    parts = urlsplit(cfg.authority_host)
    try:
        return parts.hostname or cfg.authority_host, parts.port or 443
    except ValueError:
        return parts.hostname or cfg.authority_host, 443
