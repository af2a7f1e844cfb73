"""EWS calls with exchangelib (imported lazily) and a token we got with MSAL.

- ``OAuth2AuthorizationCodeCredentials`` with the pre-acquired token and no
  client secret: exchangelib can then never fetch a token of its own from the
  hard-coded global login host (``OAuth2Credentials`` would).
- Explicit ``service_endpoint`` and server version, no autodiscover,
  ``FailFast`` (the default policy retries 401s for a long time).
- TLS trust and timeouts: exchangelib creates its HTTP adapters from
  ``BaseProtocol.HTTP_ADAPTER_CLS``. We install ``TrustingAdapter`` there once;
  it changes nothing for URLs nobody registered, and for an endpoint registered
  with ``route()`` (only while our call runs) it verifies against our CA bundle
  (never False), bounds the timeouts, and records the last response's status
  and headers, which exchangelib hides (403 + X-EWS-Policy-Reason arrives as a
  MalformedResponseError, 401 x-ms-diagnostics not at all).
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import requests.adapters

from wizard.net import redact
from wizard.diagnosis.catalogue import DiagnosisError
from wizard.diagnosis.classify import diagnose_ews
from wizard.net.session import DEFAULT_TIMEOUT
from wizard.net.trust import trust_path
from wizard.net.redact import RedactSecrets

TEST_SUBJECT = "[mailwizard test] Connection test message"
_KEEP = ("x-ews-policy-reason", "x-ms-diagnostics", "www-authenticate", "retry-after", "content-type",
         "request-id", "x-ms-request-id", "location")


class EwsError(DiagnosisError):
    pass


@dataclass
class MailboxInfo:
    address: str
    total: int | None
    unread: int | None


class _Route:
    def __init__(self, verify: str, timeout):
        self.verify = verify
        self.timeout = timeout
        self.users = 0
        self.last: dict | None = None

    def record(self, response) -> None:
        ctype = response.headers.get("content-type", "")
        entry = {"status": response.status_code, "content_type": ctype, "url": response.url,
                 "headers": {k: response.headers[k] for k in _KEEP if k in response.headers}}
        if response.status_code != 200:
            entry["body"] = response.text[:2000]
        self.last = entry


_ROUTES: dict[str, _Route] = {}
_LOCK = threading.Lock()


def _route_for(url: str) -> _Route | None:
    with _LOCK:
        for prefix, route in _ROUTES.items():
            if url.lower().startswith(prefix):
                return route
    return None


class TrustingMixin:
    def send(self, request, **kwargs):
        route = _route_for(request.url)
        if route is None:
            return super().send(request, **kwargs)
        kwargs["verify"] = route.verify
        kwargs["timeout"] = route.timeout
        try:
            response = super().send(request, **kwargs)
        except Exception as exc:
            route.last = {"status": None, "exception": exc}
            raise
        route.record(response)
        return response


class TrustingAdapter(TrustingMixin, requests.adapters.HTTPAdapter):
    pass


# Kept for code that named the old filter: the one filter lives in wizard.net.redact.
_RedactBearer = RedactSecrets


def _quiet_logs() -> None:
    """No token in exchangelib's (or requests_oauthlib's) log records, and no
    stderr noise when nobody configured logging."""
    redact.install()
    root = logging.getLogger("exchangelib")
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())


def install_adapter() -> None:
    """Make exchangelib build its adapters from TrustingAdapter (idempotent;
    keeps a custom adapter class someone else set by mixing into it)."""
    from exchangelib.protocol import BaseProtocol
    _quiet_logs()
    current = BaseProtocol.HTTP_ADAPTER_CLS
    if issubclass(current, TrustingMixin):
        return
    if current is requests.adapters.HTTPAdapter:
        BaseProtocol.HTTP_ADAPTER_CLS = TrustingAdapter
    else:
        BaseProtocol.HTTP_ADAPTER_CLS = type("Trusting" + current.__name__, (TrustingMixin, current), {})


@contextmanager
def route(cfg, timeout=DEFAULT_TIMEOUT):
    """While the block runs, exchangelib's requests to ``cfg.outgoing.ews_url``
    verify against our CA bundle, use ``timeout``, and record the last response
    (``route.last``). Nested and concurrent uses of one endpoint share the route."""
    install_adapter()
    prefix = cfg.outgoing.ews_url.lower()
    with _LOCK:
        entry = _ROUTES.get(prefix)
        if entry is None:
            entry = _ROUTES[prefix] = _Route(trust_path(cfg), timeout)
        entry.users += 1
    try:
        yield entry
    finally:
        with _LOCK:
            entry.users -= 1
            if entry.users <= 0:
                _ROUTES.pop(prefix, None)


_CREDS_CLS = None


def credentials_cls():
    """OAuth2AuthorizationCodeCredentials compared by identity. exchangelib's
    own hash covers a lazily cached attribute, so it changes after the first
    request and its protocol cache could never drop (or find) the entry again."""
    global _CREDS_CLS
    if _CREDS_CLS is None:
        from exchangelib import OAuth2AuthorizationCodeCredentials

        class TokenCredentials(OAuth2AuthorizationCodeCredentials):
            __hash__ = object.__hash__

            def __eq__(self, other):
                return self is other
        _CREDS_CLS = TokenCredentials
    return _CREDS_CLS


def _account(cfg, token: str, address: str, flow: str):
    from exchangelib import DELEGATE, IMPERSONATION, OAUTH2, Account, Build, Configuration, FailFast, Version
    # No client secret: exchangelib can never fetch a token of its own. No
    # expiry in the token dict: an expired one would make exchangelib loop on
    # TokenExpiredError; the claims step has checked `exp` already.
    creds = credentials_cls()(
        client_id=cfg.microsoft.client_id, access_token={"access_token": token, "token_type": "Bearer"})
    config = Configuration(service_endpoint=cfg.outgoing.ews_url, credentials=creds,
                           version=Version(build=Build(15, 20)), retry_policy=FailFast(), auth_type=OAUTH2)
    return Account(primary_smtp_address=address, config=config, autodiscover=False,
                   access_type=DELEGATE if flow in ("password", "device_code") else IMPERSONATION)


def forget(account) -> None:
    """Close the account's sessions and drop it from exchangelib's protocol
    cache (keyed by endpoint + credentials, so every token adds an entry)."""
    try:
        from exchangelib.protocol import CachingProtocol
        protocol = account.protocol
        protocol.close()
        key = CachingProtocol._cache_key(protocol.config)
        with CachingProtocol._protocol_cache_lock:
            CachingProtocol._protocol_cache.pop(key, None)
    except Exception:   # best effort: never turn a cleanup problem into a failed check
        pass


def _call(cfg, token, address, flow, work, timeout, busy_wait, sleep):
    flow = flow or cfg.auth.flow
    host = cfg.outgoing.server
    with route(cfg, timeout) as rt:
        for attempt in (1, 2):
            rt.last = None
            account = None
            try:
                account = _account(cfg, token, address, flow)
                return work(account)
            except Exception as exc:
                diag = diagnose_ews(exc, cfg=cfg, flow=flow, address=address, response=rt.last,
                                    host=host, port=cfg.outgoing.port)
                back_off = getattr(exc, "back_off", None)
                if diag.code == "ErrorServerBusy" and attempt == 1 and busy_wait > 0:
                    sleep(min(float(back_off or 1.0), busy_wait))
                    continue
                raise EwsError(diag) from None
            finally:
                if account is not None:
                    forget(account)
    raise AssertionError("unreachable")


# The runtime (wizard/runtime/ews.py) shares these; the old private names stay as aliases.
_route, _credentials_cls, _forget = route, credentials_cls, forget


def _inbox(account):
    """The inbox in one GetFolder call. ``account.inbox`` first fetches the root
    folder (a second GetFolder) only to cache the folder tree; a bare Root object
    (no request) is enough to address the inbox by its distinguished id."""
    from exchangelib.folders import Inbox, Root
    from exchangelib.properties import DistinguishedFolderId, Mailbox
    folder = Inbox(_distinguished_id=DistinguishedFolderId(
        id=Inbox.DISTINGUISHED_FOLDER_ID, mailbox=Mailbox(email_address=account.primary_smtp_address)),
        root=Root(account=account))
    return Inbox.resolve(account=account, folder=folder)


def check_mailbox(cfg, token: str, address: str, *, flow: str | None = None, timeout=DEFAULT_TIMEOUT,
                  busy_wait: float = 5.0, sleep=None) -> MailboxInfo:
    """Open the inbox of ``address`` (GetFolder) and count its messages."""
    import time

    def work(account):
        inbox = _inbox(account)
        return MailboxInfo(address, inbox.total_count, inbox.unread_count)
    return _call(cfg, token, address, flow, work, timeout, busy_wait, sleep or time.sleep)


def send_test_message(cfg, token: str, sender: str, to: str, *, flow: str | None = None,
                      timeout=DEFAULT_TIMEOUT, busy_wait: float = 5.0, sleep=None) -> str:
    """Send one test message from ``sender`` to ``to`` (CreateItem, SendOnly). Returns the subject."""
    import time
    from datetime import datetime, timezone

    def work(account):
        from exchangelib import Mailbox, Message
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = (f"This message was sent by mailwizard at {stamp} to test that {sender} can send mail "
                f"through Exchange with app {cfg.microsoft.client_id}. You can delete it.")
        Message(account=account, subject=TEST_SUBJECT, body=body,
                to_recipients=[Mailbox(email_address=to)]).send(save_copy=False)
        return TEST_SUBJECT
    return _call(cfg, token, sender, flow, work, timeout, busy_wait, sleep or time.sleep)
