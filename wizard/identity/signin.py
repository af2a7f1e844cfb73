"""Getting an access token with MSAL (imported lazily).

One fresh MSAL application per attempt: MSAL answers an identical failed
request from memory for a while (60 s for public clients), which would hide a
fix the user just made. Identity-platform 5xx and 429 answers are retried a few
times with a short, bounded wait; everything else fails at once with a
catalogue Diagnosis inside ``AuthError``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

from wizard.diagnosis.catalogue import Diagnosis
from wizard.identity.claims import decode_jwt, wanted
from wizard.config.schema import ConfigError, resolve_secret
from wizard.diagnosis.classify import diagnose_msal, diagnose_network
from wizard.net.session import DEFAULT_TIMEOUT, make_session
from wizard.identity.msal_common import AuthError, DiscoveryCache, TokenResult, login_host, _quiet_msal

ROPC_NOTE = ("Microsoft discourages the user name/password flow: it cannot do MFA and Conditional "
             "Access often blocks it. The client secret flow is the safer choice.")


@dataclass
class Retry:
    """Bounds for retrying identity-platform 5xx / 429 answers."""
    attempts: int = 3
    backoff: float = 1.0          # first wait; doubles
    max_wait: float = 10.0        # cap for one wait (also caps Retry-After)
    sleep: object = time.sleep    # injectable: tests pass a recorder


def _secret(cfg) -> str:
    try:
        return resolve_secret(cfg.auth.client_secret, "auth.client_secret")
    except ConfigError as exc:
        raise AuthError(Diagnosis("config.invalid", exc.message, "Correct auth.client_secret.",
                                  None, "ids")) from None


def _password(value: str, field_name: str) -> str:
    try:
        return resolve_secret(value, field_name)
    except ConfigError as exc:
        raise AuthError(Diagnosis("config.invalid", exc.message, f"Correct {field_name}.",
                                  None, "ids")) from None


def _once(cfg, session, scopes, username, password, http_cache=None):
    """One attempt: (result dict, notes). Raises what MSAL raises."""
    import msal
    _quiet_msal()
    common = dict(authority=cfg.authority_url, instance_discovery=False, http_client=session,
                  http_cache=http_cache if http_cache is not None else DiscoveryCache())
    if cfg.auth.flow == "password":
        app = msal.PublicClientApplication(cfg.microsoft.client_id, **common)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DeprecationWarning)
            result = app.acquire_token_by_username_password(username, password, scopes=scopes)
        notes = [ROPC_NOTE] if any(issubclass(w.category, DeprecationWarning) for w in caught) else []
        return result, notes
    credential = _certificate(cfg) if cfg.auth.flow == "certificate" else _secret(cfg)
    app = msal.ConfidentialClientApplication(cfg.microsoft.client_id, client_credential=credential, **common)
    return app.acquire_token_for_client(scopes), []


def _certificate(cfg) -> dict:
    """Certificate flow: MSAL's client_credential from the key file (wizard/certs.py)."""
    from wizard.identity.certificates import CertificateError, client_credential
    try:
        return client_credential(cfg)
    except CertificateError as exc:
        raise AuthError(exc.diagnosis) from None


def _retry_wait(session, attempt: int, retry: Retry) -> float | None:
    """Seconds to wait before the next attempt, or None when the last answer is not retryable."""
    last = session.transcript[-1] if session.transcript else None
    if not last:
        return None
    status = last.get("status", 0)
    if status == 429 or status >= 500:
        after = (last.get("headers") or {}).get("retry-after", "")
        wait = float(after) if str(after).isdigit() else retry.backoff * (2 ** (attempt - 1))
        return min(wait, retry.max_wait)
    return None


def acquire_token(cfg, *, resource: str | None = None, username: str | None = None,
                  password: str | None = None, retry: Retry | None = None,
                  timeout=DEFAULT_TIMEOUT, on_retry=None, http_cache: DiscoveryCache | None = None,
                  api: str | None = None) -> TokenResult:
    """An access token with the config's flow, or AuthError(diagnosis).

    The scopes follow the config's protocols (``claims.wanted``): for EWS
    ``<resource>/.default`` app-only, ``<resource>/EWS.AccessAsUser.All``
    delegated; ``resource`` overrides the API's resource (default: the cloud's
    Exchange resource for EWS). ``username``/``password`` override the
    config's (incoming accounts with their own sign-in). ``http_cache`` (a
    ``DiscoveryCache``) lets several calls share the tenant discovery document.
    ``api`` ("exchange" | "graph"; default: the outgoing protocol's) picks the
    token when the outgoing and incoming protocols use different APIs."""
    want = wanted(cfg, api=api, username=username)
    if resource:
        want.resource = resource.rstrip("/")
    scopes = want.scopes(cfg.auth.flow)
    if cfg.auth.flow == "device_code":     # never prompts here: the saved sign-in of `mailwizard login`
        from wizard.identity.device_code import silent
        return silent(cfg, scopes=scopes, timeout=timeout)
    retry = retry or Retry()
    if cfg.auth.flow == "password":
        username = username or cfg.auth.username
        password = _password(password if password is not None else cfg.auth.password, "auth.password")
    flow = cfg.auth.flow
    host, port = login_host(cfg)
    for attempt in range(1, retry.attempts + 1):
        session = make_session(cfg, timeout=timeout)
        try:
            result, notes = _once(cfg, session, scopes, username, password, http_cache)
        except AuthError:
            raise
        except Exception as exc:   # MSAL raises ValueError, MsalServiceError, requests errors
            net = diagnose_network(exc, cfg=cfg, flow=flow, host=host, port=port)
            if net is not None and net.screen == "mail":
                net.screen = "target"       # the login host comes from the cloud / endpoints
            wait = None if net else _retry_wait(session, attempt, retry)
            if wait is not None and attempt < retry.attempts:
                _pause(retry, wait, on_retry, attempt)
                continue
            raise AuthError(net or diagnose_msal(exc, cfg=cfg, flow=flow, transcript=session.transcript,
                                                 host=host)) from None
        finally:
            session.close()
        if result and "access_token" in result:
            if flow == "password":
                from wizard.identity import usage
                usage.record(cfg, username)     # a delegated sign-in: `check` reads when it was last used
            token = result["access_token"]
            try:
                claims = decode_jwt(token)
            except ValueError:
                claims = {}
            scopes = str(claims.get("scp") or "").split() or list(claims.get("roles") or [])
            return TokenResult(token, int(result.get("expires_in") or 0), claims, scopes, notes, attempt)
        wait = _retry_wait(session, attempt, retry)
        if wait is not None and attempt < retry.attempts:
            _pause(retry, wait, on_retry, attempt)
            continue
        raise AuthError(diagnose_msal(result or {}, cfg=cfg, flow=flow, transcript=session.transcript,
                                      host=host))
    raise AssertionError("unreachable")


def _pause(retry: Retry, wait: float, on_retry, attempt: int) -> None:
    if on_retry:
        on_retry(attempt, wait)
    retry.sleep(wait)
