"""Keep access tokens and secrets out of log records: one filter for the
connection test and the runtime alike.

Libraries under us log credentials at DEBUG level: requests_oauthlib (below
exchangelib) logs the whole token dict ("Adding token {...} to request.") and
the request headers with ``Authorization: Bearer ...``; exchangelib logs
request headers at DEBUG and again at ERROR when a request raises. An
application that turns on DEBUG logging must not find a token in its log.

A ``logging.Filter`` on a logger sees only the records logged through that
very logger, not those of its child loggers (they propagate to the parent's
handlers, not through its filters). So ``install()`` puts the filter on each
listed logger and on every child logger that exists when it runs; call it
after importing the library whose loggers it should cover (its modules create
their loggers at import time). It is idempotent and cheap to call again.
"""

from __future__ import annotations

import logging
import re

# Loggers that can see a token or a secret.
LOGGERS = ("requests_oauthlib", "oauthlib", "exchangelib", "msal", "urllib3", "requests")

MASK = "********"
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(Bearer\s+)[^\s'\",}\]]{8,}", re.I)
# 'access_token': '...', "refresh_token": "...", client_secret=..., password=... (dict reprs, JSON, form bodies)
_KEYED = re.compile(
    r"""((?:access_token|refresh_token|id_token|client_secret|client_assertion|password|assertion)"""
    r"""['"]?\s*[:=]\s*b?['"]?)([^'"&\s,}\]]{3,})""", re.I)


def redact(text: str) -> str:
    """``text`` with bearer tokens, JWTs and keyed secrets masked."""
    if not isinstance(text, str) or not text:
        return text
    text = _JWT.sub(MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _KEYED.sub(lambda m: m.group(1) + MASK, text)


def _suspicious(text: str) -> bool:
    low = text.lower()
    return "eyj" in low or "bearer" in low or "token" in low or "secret" in low or "password" in low \
        or "assertion" in low


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and exception text) with tokens masked.
    Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:
            return True
        if _suspicious(text):
            record.msg, record.args = redact(text), ()
        if record.exc_info and not record.exc_text:
            try:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            except Exception:
                pass
        if record.exc_text and _suspicious(record.exc_text):
            record.exc_text = redact(record.exc_text)
        if record.stack_info and _suspicious(record.stack_info):
            record.stack_info = redact(record.stack_info)
        return True


def _has_filter(logger: logging.Logger) -> bool:
    return any(isinstance(f, RedactSecrets) for f in logger.filters)


def install(names=LOGGERS) -> None:
    """Put one ``RedactSecrets`` on each named logger and on each of their
    existing child loggers (idempotent)."""
    prefixes = tuple(names)
    children = tuple(p + "." for p in prefixes)
    existing = [n for n, obj in list(logging.Logger.manager.loggerDict.items())
                if isinstance(obj, logging.Logger) and n.startswith(children)]
    for name in dict.fromkeys(list(prefixes) + existing):
        logger = logging.getLogger(name)
        if not _has_filter(logger):
            logger.addFilter(RedactSecrets())


__all__ = ["LOGGERS", "MASK", "RedactSecrets", "install", "redact"]
