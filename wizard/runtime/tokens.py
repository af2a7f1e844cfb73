"""Access tokens for the runtime: one MSAL application per config, a token
cache on disk, tokens reused until shortly before they expire.

- One MSAL app per config (Confidential for client secret / certificate,
  Public for password / device code), built lazily and kept: unlike the
  wizard's connection test (``wizard.identity.signin``), a running system wants MSAL's
  cache, not a fresh start per attempt.
- The cache is msal's ``SerializableTokenCache``, persisted in
  ``platformdirs.user_cache_path("mailwizard") / tokens-<hash>.json`` with
  mode 0600 (folder 0700): it holds access and refresh tokens.
- A token is reused until ``skew`` seconds (default 300) before its ``exp``,
  by the injectable ``clock``. After that: app-only flows fetch a new token;
  delegated flows redeem the refresh token (``acquire_token_silent`` with
  ``force_refresh``), so the password is not sent again and a device-code
  user is not asked again. Only when that fails is the password (or the
  device-code prompt) used.
- One token per (sign-in, API): all incoming accounts read with the config's
  sign-in share it, whatever their number.

Never logs or returns a secret or token in a message.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import logging
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from wizard.diagnosis.catalogue import Diagnosis
from wizard.identity import usage
from wizard.identity.claims import decode_jwt
from wizard.config.schema import APP_ONLY_FLOWS, ConfigError, resolve_secret
from wizard.diagnosis.classify import diagnose_msal, diagnose_network
from wizard.net.session import DEFAULT_TIMEOUT, make_session
from wizard.runtime.model import MailError

SKEW = 300.0
# protocol (and direction for Graph) -> (api, delegated scope)
DELEGATED = {
    ("ews", "out"): ("exchange", "EWS.AccessAsUser.All"), ("ews", "in"): ("exchange", "EWS.AccessAsUser.All"),
    ("smtp", "out"): ("exchange", "SMTP.Send"), ("imap", "in"): ("exchange", "IMAP.AccessAsUser.All"),
    # Graph: marking mail read and moving it needs ReadWrite; other people's mailboxes need .Shared.
    ("graph", "out"): ("graph", "Mail.Send"), ("graph", "in"): ("graph", "Mail.ReadWrite"),
}


def api_of(protocol: str) -> str:
    return "graph" if protocol == "graph" else "exchange"


@dataclass(frozen=True)
class SignIn:
    """Who a token is for: the app itself (app-only flows) or a user."""
    flow: str
    username: str = ""
    password: str = field(default="", compare=False, repr=False)   # may be an env:/file: reference

    @property
    def app_only(self) -> bool:
        return self.flow in APP_ONLY_FLOWS


def _quiet_msal() -> None:
    """No stderr noise from MSAL's logger.exception when nobody configured logging."""
    logger = logging.getLogger("msal")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def cache_dir() -> Path:
    from platformdirs import user_cache_path
    return user_cache_path("mailwizard", appauthor=False)


def _binding(credential: str, salt: bytes | None = None) -> str:
    """'salt:digest' of a credential: salted and slow (PBKDF2), so the file next
    to the cache does not make guessing a password any easier."""
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", credential.encode("utf-8"), salt, 100_000)
    return f"{salt.hex()}:{digest.hex()}"


class TokenProvider:
    """Tokens for one config. Thread-safe; ``stats`` counts what happened."""

    def __init__(self, cfg, *, clock=time.time, cache_path: str | Path | None = None, skew: float = SKEW,
                 prompt=None, timeout=DEFAULT_TIMEOUT, persist: bool = True, sleep=time.sleep,
                 attempts: int = 3, max_wait: float = 30.0):
        self.cfg = cfg
        self.sleep = sleep
        self.attempts = attempts
        self.max_wait = max_wait
        self.clock = clock
        self.skew = skew
        self.prompt = prompt            # device code: prompt(message) shows the sign-in instructions
        self.timeout = timeout
        self.persist = persist
        key = f"{cfg.authority_url}|{cfg.microsoft.client_id}".lower().encode()
        self.cache_path = Path(cache_path) if cache_path else \
            cache_dir() / f"tokens-{hashlib.sha256(key).hexdigest()[:16]}.json"
        self._lock = threading.RLock()
        self._app = None
        self._cache = None
        self._session = None
        self._memo: dict[tuple, tuple[str, float]] = {}
        self.stats = {"served": 0, "acquired": 0, "refreshed": 0, "interactive": 0}

    # -- public ---------------------------------------------------------------------
    def scopes(self, api: str, who: SignIn) -> list[str]:
        resource = self.resource(api)
        if who.app_only:
            return [f"{resource}/.default"]
        protocols = [(self.cfg.outgoing.protocol, "out")]
        if self.cfg.incoming.accounts:
            protocols.append((self.cfg.incoming.protocol, "in"))
        perms = []
        for key in protocols:
            k_api, scope = DELEGATED.get(key, (None, None))
            if k_api == api and scope not in perms:
                perms.append(scope)
        if api == "graph" and who.username:
            user = who.username.lower()
            if "Mail.Send" in perms and self.cfg.outgoing.sender.lower() not in ("", user):
                perms.append("Mail.Send.Shared")
            if "Mail.ReadWrite" in perms and any(a.address.lower() != user for a in self.cfg.incoming.accounts):
                perms.append("Mail.ReadWrite.Shared")
        if not perms:       # a user override sending on another API than the config's
            perms = ["Mail.Send"] if api == "graph" else ["EWS.AccessAsUser.All"]
        return [f"{resource}/{p}" for p in perms]

    def resource(self, api: str) -> str:
        """The token audience: the cloud's own resource (endpoint overrides change
        where requests go, not which API the token is for)."""
        return (self.cfg.cloud.graph_url if api == "graph" else self.cfg.cloud.exchange_resource).rstrip("/")

    def token(self, api: str, who: SignIn | None = None) -> str:
        """A valid access token for ``api`` ("exchange" | "graph") and ``who``
        (default: the config's own sign-in). Raises MailError."""
        who = who or self.default_signin()
        key = (api, who.flow, who.username.lower())
        with self._lock:
            memo = self._memo.get(key)
            if memo and memo[1] - self.skew > self.clock():
                self.stats["served"] += 1
                return memo[0]
            token, lifetime = self._acquire(api, who, stale=memo is not None)
            self._memo[key] = (token, self.clock() + lifetime)
            self.stats["served"] += 1
            return token

    def default_signin(self) -> SignIn:
        a = self.cfg.auth
        if a.flow in APP_ONLY_FLOWS:
            return SignIn(a.flow)
        return SignIn(a.flow, a.username, a.password)

    def signin_for_account(self, account) -> SignIn:
        """Incoming accounts with their own user name share nothing with others;
        the rest share the config's sign-in (one token for all of them)."""
        a = self.cfg.auth
        if a.flow in APP_ONLY_FLOWS or not account.username or account.username.lower() == a.username.lower():
            return self.default_signin()
        return SignIn(a.flow, account.username, account.password or a.password)

    def forget(self, api: str | None = None, who: SignIn | None = None) -> None:
        """Drop the in-memory token (e.g. after the service said 401) so the next call gets a new one."""
        with self._lock:
            for key in list(self._memo):
                if (api is None or key[0] == api) and (who is None or key[1:] == (who.flow, who.username.lower())):
                    self._memo[key] = (self._memo[key][0], 0.0)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- internals --------------------------------------------------------------------
    @staticmethod
    def _lifetime(result: dict) -> float:
        """Seconds the token stays valid, on our own clock (so a skewed local
        clock does not matter): MSAL's expires_in, else the token's exp - iat."""
        try:
            return float(result["expires_in"])
        except (KeyError, TypeError, ValueError):
            pass
        try:
            claims = decode_jwt(result["access_token"])
            return float(claims["exp"]) - float(claims.get("iat") or claims["exp"] - 3000)
        except (KeyError, TypeError, ValueError):
            return 3000.0

    def _fail(self, diagnosis: Diagnosis) -> MailError:
        return MailError(diagnosis)

    def _config_error(self, exc: ConfigError) -> MailError:
        return MailError(Diagnosis("config.invalid", exc.message, f"Correct {exc.field or 'the setting'}.",
                                   None, "ids"))

    def _ensure_app(self):
        if self._app is not None:
            return self._app
        import msal
        _quiet_msal()
        if self._session is not None:          # a failed earlier attempt
            self._session.close()
        if self._cache is None:
            self._cache = msal.SerializableTokenCache()
            if self.persist and self.cache_path.exists() and self._bound_to_credential():
                try:
                    self._cache.deserialize(self.cache_path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    pass            # a damaged cache only costs a new sign-in
        self._session = make_session(self.cfg, timeout=self.timeout)
        common = dict(authority=self.cfg.authority_url, instance_discovery=False, http_client=self._session,
                      token_cache=self._cache)
        flow = self.cfg.auth.flow
        try:
            if flow in APP_ONLY_FLOWS:
                self._app = msal.ConfidentialClientApplication(self.cfg.microsoft.client_id,
                                                               client_credential=self._credential(), **common)
            else:
                self._app = msal.PublicClientApplication(self.cfg.microsoft.client_id, **common)
        except MailError:
            raise
        except Exception as exc:
            raise self._fail(self._diagnose(exc, flow)) from None
        return self._app

    # -- the cache belongs to the credential it was filled with ------------------------
    @property
    def _binding_path(self) -> Path:
        return self.cache_path.with_name(self.cache_path.name + ".bind")

    def _credential_text(self) -> str:
        """What signs in: the secret, the password, the certificate thumbprint.
        A cache filled with one credential must not serve another (a wrong secret
        must fail in the runtime as it does in `mailwizard check`)."""
        a = self.cfg.auth
        try:
            if a.flow == "client_secret":
                return "secret:" + resolve_secret(a.client_secret, "auth.client_secret")
            if a.flow == "password":
                return f"password:{a.username.lower()}:" + resolve_secret(a.password, "auth.password")
            if a.flow == "certificate":
                return "certificate:" + a.thumbprint.replace(":", "").lower()
        except ConfigError:
            return ""
        return a.flow

    def _bound_to_credential(self) -> bool:
        """True when the cache on disk was filled with today's credential; a cache
        from another credential is dropped (it costs one new sign-in). The device
        code flow has no credential in the config: its cache is the sign-in itself."""
        if self.cfg.auth.flow not in ("client_secret", "password", "certificate"):
            return True
        try:
            salt_hex, digest = self._binding_path.read_text(encoding="utf-8").split(":", 1)
            same = hmac.compare_digest(_binding(self._credential_text(), bytes.fromhex(salt_hex)), f"{salt_hex}:{digest}")
        except (OSError, ValueError):
            same = False
        if not same:
            for stale in (self.cache_path, self._binding_path):
                try:
                    stale.unlink()
                except OSError:
                    pass
        return same

    def _credential(self):
        a = self.cfg.auth
        try:
            if a.flow == "certificate":
                pem = Path(a.certificate).expanduser().read_text(encoding="utf-8")
                return {"private_key": pem, "thumbprint": a.thumbprint.replace(":", "")}
            return resolve_secret(a.client_secret, "auth.client_secret")
        except ConfigError as exc:
            raise self._config_error(exc) from None
        except OSError as exc:
            raise MailError(Diagnosis("config.invalid", f"The certificate file cannot be read ({exc.strerror}).",
                                      "Correct auth.certificate.", None, "ids")) from None

    def _diagnose(self, exc_or_result, flow: str) -> Diagnosis:
        from wizard.identity.signin import login_host
        host, port = login_host(self.cfg)
        transcript = self._session.transcript if self._session is not None else []
        if isinstance(exc_or_result, BaseException):
            net = diagnose_network(exc_or_result, cfg=self.cfg, flow=flow, host=host, port=port)
            if net is not None:
                return net
        return diagnose_msal(exc_or_result or {}, cfg=self.cfg, flow=flow, transcript=transcript, host=host)

    def _acquire(self, api: str, who: SignIn, stale: bool) -> tuple[str, float]:
        """(token, lifetime in seconds). Identity-platform 5xx / 429 answers are
        tried again a few times, waiting Retry-After (bounded) with the injected sleep."""
        for attempt in range(1, self.attempts + 1):
            app = self._ensure_app()
            scopes = self.scopes(api, who)
            error = None
            try:
                result = self._call(app, scopes, who, stale)
            except MailError:
                raise
            except Exception as exc:   # MSAL raises ValueError, MsalServiceError, requests errors
                result, error = None, exc
            finally:
                self._save()
            if result and "access_token" in result:
                self._trim()
                if not who.app_only and usage.from_identity_provider(result):
                    usage.record(self.cfg, who.username)    # a sign-in or refresh: its 90 idle days start anew
                return result["access_token"], self._lifetime(result)
            wait = self._retry_wait(attempt)
            if wait is not None and attempt < self.attempts:
                self.sleep(wait)
                # MSAL answers a request that just got 429/5xx from memory for a while:
                # a new application object (same token cache) really asks again.
                self._app = None
                continue
            diag = self._diagnose(error if error is not None else (result or {}), who.flow)
            self._trim()
            raise self._fail(diag)
        raise AssertionError("unreachable")

    def _trim(self) -> None:
        if self._session is not None:
            del self._session.transcript[:-5]     # keep the last answers only: a poller runs for months

    def _retry_wait(self, attempt: int) -> float | None:
        last = self._session.transcript[-1] if self._session is not None and self._session.transcript else None
        status = (last or {}).get("status") or 0
        if status != 429 and status < 500:
            return None
        after = str(((last or {}).get("headers") or {}).get("retry-after", ""))
        wait = float(after) if after.isdigit() else 2.0 ** (attempt - 1)
        return min(wait, self.max_wait)

    def _call(self, app, scopes, who: SignIn, stale: bool) -> dict | None:
        if who.app_only and self.cfg.auth.flow in APP_ONLY_FLOWS:
            if stale:      # our clock says it is (nearly) expired: make MSAL fetch a new one
                self._evict(scopes)
            self.stats["acquired"] += 1
            return app.acquire_token_for_client(scopes)
        # delegated: the cache (refresh token) first, then the password / device code
        accounts = [a for a in app.get_accounts(username=who.username or None)] if who.username else app.get_accounts()
        if accounts:
            # Also refresh when the sign-in has been idle for usage.KEEPALIVE: keeps the refresh token alive.
            force = stale or usage.refresh_due(self.cfg, who.username)
            result = app.acquire_token_silent_with_error(scopes, accounts[0], force_refresh=force)
            if result and "access_token" in result:
                if force:
                    self.stats["refreshed"] += 1
                return result
            if who.flow == "device_code" and self.prompt is None and result and result.get("error"):
                # nobody to sign in again: say why the saved sign-in failed (AADSTS700082, 70043, ...)
                raise self._fail(self._diagnose(result, who.flow))
        if who.flow == "device_code":
            return self._device_code(app, scopes)
        password = who.password
        try:
            password = resolve_secret(password, "auth.password")
        except ConfigError as exc:
            raise self._config_error(exc) from None
        self.stats["acquired"] += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return app.acquire_token_by_username_password(who.username, password, scopes=scopes)

    def _device_code(self, app, scopes) -> dict | None:
        if self.prompt is None:
            raise MailError(Diagnosis(
                "auth.signin_needed", "The device code sign-in has not been done on this computer yet "
                "(or it has expired).", "Run `mailwizard poll --once` (or send) in a terminal and follow the "
                "sign-in instructions once; the runtime then keeps the sign-in fresh by itself.", None, "ids"))
        flow = app.initiate_device_flow(scopes=scopes)
        if "user_code" not in flow:
            return flow
        self.prompt(flow["message"])
        self.stats["interactive"] += 1
        return app.acquire_token_by_device_flow(flow)

    def _evict(self, scopes) -> None:
        from msal import TokenCache
        for entry in list(self._cache.search(TokenCache.CredentialType.ACCESS_TOKEN, target=scopes)):
            self._cache.remove_at(entry)

    def _save(self) -> None:
        if not self.persist or self._cache is None or not self._cache.has_state_changed:
            return
        from wizard.config.files import write_private
        try:
            write_private(self.cache_path, self._cache.serialize())
            if self.cfg.auth.flow in ("client_secret", "password", "certificate"):
                write_private(self._binding_path, _binding(self._credential_text()))
            self._cache.has_state_changed = False
        except OSError:
            pass        # no writable cache dir: tokens stay in memory, mail still flows
