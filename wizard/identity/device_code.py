"""The device code flow (OAuth 2.0 device authorization grant): delegated
access for a headless server, with MFA.

    flow = start(cfg)                 # user_code, verification_uri, expires_in, interval, message
    show the URL and the code (``display(flow)``: large, with a QR code of the URL)
    result = wait(cfg, flow, on_tick=print_seconds_left)    # TokenResult, or AuthError
    later: silent(cfg) -> TokenResult from the cached refresh token, no prompt

The user opens the URL on any device (a phone is fine), types the code and
signs in there, MFA included. ``wait`` polls the token endpoint every
``interval`` seconds (``slow_down`` adds 5), bounded by ``expires_in``
(15 minutes at Microsoft); ``authorization_pending`` keeps waiting,
``expired_token`` / ``authorization_declined`` / Conditional Access (53003)
end it with a Diagnosis.

The tokens (access + refresh) are kept in MSAL's SerializableTokenCache,
persisted with mode 0600 (folder 0700) in the platformdirs user cache dir,
in the same file the runtime (``wizard.runtime.tokens``) uses for this
config, so the running system keeps working after one ``mailwizard login``
and refreshes by itself (``acquire_token_silent``).

Needs "Allow public client flows" = Yes on the app (else AADSTS7000218) and
the delegated permissions with admin consent, as the user name/password flow.
"""

from __future__ import annotations

import hashlib
import math
import textwrap
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from wizard.identity.msal_common import AuthError, DiscoveryCache, TokenResult, login_host, _quiet_msal
from wizard.diagnosis.catalogue import Diagnosis, lookup
from wizard.identity.claims import decode_jwt, wanted
from wizard.diagnosis.classify import diagnose_msal, diagnose_network
from wizard.net.session import DEFAULT_TIMEOUT, make_session

FLOW = "device_code"
GUIDE = ("Device code (delegated, works with MFA): the system acts as a user, like the user name/password "
         "flow, but nobody types that user's password into mailwizard. Run `mailwizard login` once: it shows a "
         "web address and a short code; open the address on any device (a phone is fine), type the code and "
         "sign in there, MFA included. The sign-in is then kept (refresh token, file readable only by this "
         "user) and renewed by itself. Needs 'Allow public client flows' = Yes and the delegated permissions "
         "with admin consent. Conditional Access may block this flow (AADSTS53003): then ask the tenant admin.")
_CA_FIX = ("Ask the tenant admin to check Entra ID > Sign-in logs for this sign-in and the policy that blocked it. "
           "Conditional Access can block the device code flow itself (the 'Authentication flows' condition) or "
           "require a compliant device; the admin can exclude this app or account from that policy. If the "
           "system supports app-only access, the certificate flow avoids this.")


@dataclass
class Flow:
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int
    message: str
    started: float = 0.0                                  # clock() when the code was issued
    raw: dict = field(default_factory=dict, repr=False)   # MSAL's flow dict (holds the device_code)
    _state: tuple | None = field(default=None, repr=False, compare=False)   # (app, session, cache)
    _clock: object = field(default=None, repr=False, compare=False)
    persist: bool = True                                  # False: the tokens stay in memory (an admin's sign-in)

    def seconds_left(self, now: float) -> int:
        return max(0, int(math.ceil(self.started + self.expires_in - now)))

    @property
    def code_display(self) -> str:
        """The code in groups of three, easy to read aloud and type: 'ABC DEF GHI'."""
        c = self.user_code
        return " ".join(c[i:i + 3] for i in range(0, len(c), 3))


# -- the token cache -------------------------------------------------------------------

def cache_path(cfg) -> Path:
    """The token cache file of this config: the same name the runtime uses
    (``wizard.runtime.tokens``), one file per authority + client ID."""
    from platformdirs import user_cache_path
    key = f"{cfg.authority_url}|{cfg.microsoft.client_id}".lower().encode()
    return user_cache_path("mailwizard", appauthor=False) / f"tokens-{hashlib.sha256(key).hexdigest()[:16]}.json"


def _load_cache(cfg):
    import msal
    cache = msal.SerializableTokenCache()
    path = cache_path(cfg)
    if path.exists():
        try:
            cache.deserialize(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass                        # a damaged cache only costs a new sign-in
    return cache


def _save_cache(cfg, cache) -> None:
    if not cache.has_state_changed:
        return
    from wizard.config.files import write_private
    write_private(cache_path(cfg), cache.serialize())       # 0600, folder 0700
    cache.has_state_changed = False


def forget(cfg) -> bool:
    """Delete the saved sign-in of this config (sign out on this computer)."""
    path = cache_path(cfg)
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


# -- helpers -----------------------------------------------------------------------------

def scopes_for(cfg) -> list[str]:
    return wanted(cfg, FLOW).scopes(FLOW)


def _diagnosis(cfg, result_or_exc, transcript) -> Diagnosis:
    host, port = login_host(cfg)
    if isinstance(result_or_exc, BaseException):
        net = diagnose_network(result_or_exc, cfg=cfg, flow=FLOW, host=host, port=port)
        if net is not None:
            if net.screen == "mail":
                net.screen = "target"
            return net
    d = diagnose_msal(result_or_exc or {}, cfg=cfg, flow=FLOW, transcript=transcript, host=host)
    return for_device_code(d, cfg)


def for_device_code(d: Diagnosis, cfg=None) -> Diagnosis:
    """Catalogue advice worded for this flow (the shared entries speak of the password flow)."""
    client = cfg.microsoft.client_id if cfg is not None else "<client id>"
    if d.code in ("AADSTS53003", "AADSTS530033"):
        d.fix = _CA_FIX
    elif d.code == "AADSTS7000218":
        d.cause = f"The app {client} does not allow public client flows, which the device code flow needs."
        d.fix = "In the app's Authentication page set 'Allow public client flows' to Yes and save."
    return d


def _open(cfg, timeout, cache=None):
    """(PublicClientApplication, session, cache). Raises AuthError."""
    import msal
    _quiet_msal()
    cache = cache if cache is not None else _load_cache(cfg)
    session = make_session(cfg, timeout=timeout)
    try:
        app = msal.PublicClientApplication(cfg.microsoft.client_id, authority=cfg.authority_url,
                                           instance_discovery=False, http_client=session,
                                           http_cache=DiscoveryCache(), token_cache=cache)
    except Exception as exc:        # unknown tenant (ValueError), network, TLS
        session.close()
        raise AuthError(_diagnosis(cfg, exc, session.transcript)) from None
    return app, session, cache


def _result(result: dict) -> TokenResult:
    token = result["access_token"]
    try:
        claims = decode_jwt(token)
    except ValueError:
        claims = {}
    scopes = str(claims.get("scp") or "").split()
    return TokenResult(token, int(result.get("expires_in") or 0), claims, scopes)


def _account(app, username: str):
    accounts = app.get_accounts(username=username) if username else app.get_accounts()
    return accounts[0] if accounts else None


# -- the flow ------------------------------------------------------------------------------

def start(cfg, *, timeout=DEFAULT_TIMEOUT, clock=time.monotonic, scopes: list[str] | None = None,
          persist: bool = True) -> Flow:
    """Ask the identity platform for a device code. Raises AuthError. ``scopes``
    replaces the config's; with ``persist`` False the tokens are never written
    to the cache file (`mailwizard register` keeps an admin's sign-in in memory)."""
    if persist:
        app, session, cache = _open(cfg, timeout)
    else:
        import msal
        app, session, cache = _open(cfg, timeout, cache=msal.SerializableTokenCache())
    try:
        raw = app.initiate_device_flow(scopes=scopes or scopes_for(cfg))
    except Exception as exc:
        session.close()
        raise AuthError(_diagnosis(cfg, exc, session.transcript)) from None
    if "user_code" not in raw:
        session.close()
        raise AuthError(_diagnosis(cfg, raw, session.transcript))
    interval = max(1, int(raw.get("interval") or 5))
    raw["interval"] = interval
    return Flow(str(raw["user_code"]), str(raw.get("verification_uri") or raw.get("verification_url") or ""),
                int(raw.get("expires_in") or 900), interval, str(raw.get("message") or ""), clock(), raw,
                (app, session, cache), clock, persist)


def _cancelled() -> AuthError:
    return AuthError(Diagnosis("device.cancelled", "The sign-in was stopped here before it was completed.",
                               "Run `mailwizard login` again when ready.", None, "ids"))


def wait(cfg, flow: Flow, *, on_tick=None, cancel=None, sleep=None, clock=None,
         timeout=DEFAULT_TIMEOUT) -> TokenResult:
    """Poll until the user has signed in, the code expires, or ``cancel`` is set.

    ``on_tick(seconds_left)`` is called about once a second while waiting (a
    countdown); ``sleep`` and ``clock`` are injectable (tests never wait).
    On success the tokens are saved to the cache (0600). Raises AuthError."""
    clock = clock or flow._clock or time.monotonic
    if sleep is None:
        sleep = cancel.wait if cancel is not None else time.sleep
    app, session, cache = flow._state or _open(cfg, timeout)
    flow._state = None
    deadline = flow.started + flow.expires_in

    def stop() -> bool:
        return cancel is not None and cancel.is_set()

    try:
        while True:
            if stop():
                raise _cancelled()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")       # MSAL's "Attempted too soon" (our clock may be fake)
                    result = app.acquire_token_by_device_flow(flow.raw, exit_condition=lambda f: True)
            except Exception as exc:
                raise AuthError(_diagnosis(cfg, exc, session.transcript)) from None
            if result and "access_token" in result:
                if flow.persist:
                    _save_cache(cfg, cache)
                    from wizard.identity import usage
                    usage.record(cfg)           # a sign-in: the refresh token's 90 days start now
                return _result(result)
            error = (result or {}).get("error")
            if error == "slow_down":
                flow.interval = max(flow.interval + 5, int(flow.raw.get("interval") or 0))
                flow.raw["interval"] = flow.interval
            elif error != "authorization_pending":
                raise AuthError(_diagnosis(cfg, result or {}, session.transcript))
            if clock() >= deadline:
                raise AuthError(for_device_code(lookup("AADSTS70019", cfg=cfg, flow=FLOW), cfg))
            step, waited = float(flow.interval), 0.0
            while waited < step - 1e-9:
                if stop():
                    raise _cancelled()
                left = deadline - clock()
                if left <= 0:
                    break
                if on_tick is not None:
                    try:
                        on_tick(flow.seconds_left(clock()))
                    except Exception:       # a broken display must not break the sign-in
                        pass
                chunk = min(1.0, step - waited, left)
                sleep(chunk)
                waited += chunk
    finally:
        session.close()


def login(cfg, *, show=None, on_tick=None, cancel=None, sleep=None, clock=time.monotonic,
          timeout=DEFAULT_TIMEOUT) -> TokenResult:
    """start + show(flow) + wait: the whole interactive sign-in."""
    flow = start(cfg, timeout=timeout, clock=clock)
    if show is not None:
        show(flow)
    return wait(cfg, flow, on_tick=on_tick, cancel=cancel, sleep=sleep, clock=clock, timeout=timeout)


def signed_in(cfg) -> str | None:
    """The user name of the saved sign-in for this config, or None (no request is made)."""
    cache = _load_cache(cfg)
    from msal import TokenCache
    accounts = list(cache.search(TokenCache.CredentialType.ACCOUNT))
    want = (cfg.auth.username or "").lower()
    for a in accounts:
        if not want or str(a.get("username", "")).lower() == want:
            return a.get("username")
    return None


def silent(cfg, *, scopes: list[str] | None = None, timeout=DEFAULT_TIMEOUT,
           force_refresh: bool | None = None) -> TokenResult:
    """A token from the saved sign-in (refresh token), never prompting.
    AuthError("auth.signin_needed") when there is none: sign in with `mailwizard login`.
    ``force_refresh`` (default: when the sign-in was not used for ``usage.KEEPALIVE``)
    redeems the refresh token even when the cached access token is still valid,
    which keeps the sign-in alive (a refresh token lapses after 90 idle days)."""
    from wizard.identity import usage
    if force_refresh is None:
        force_refresh = usage.refresh_due(cfg)
    app, session, cache = _open(cfg, timeout)
    try:
        account = _account(app, cfg.auth.username)
        if account is None:
            d = lookup("auth.signin_needed", cfg=cfg, flow=FLOW)
            others = [a.get("username") for a in app.get_accounts()] if cfg.auth.username else []
            if others:
                d.cause = (f"The saved sign-in is for {', '.join(others)}, but auth.username is "
                           f"{cfg.auth.username}.")
                d.fix = (f"Run `mailwizard login` and sign in as {cfg.auth.username}, or correct auth.username.")
            raise AuthError(d)
        try:
            result = app.acquire_token_silent_with_error(scopes or scopes_for(cfg), account,
                                                         force_refresh=force_refresh)
        except Exception as exc:
            raise AuthError(_diagnosis(cfg, exc, session.transcript)) from None
        _save_cache(cfg, cache)
        if result and "access_token" in result:
            if usage.from_identity_provider(result):
                usage.record(cfg)
            return _result(result)
        if not result:
            raise AuthError(lookup("auth.signin_needed", cfg=cfg, flow=FLOW))
        d = _diagnosis(cfg, result, session.transcript)
        if d.code in ("AADSTS70000", "AADSTS50173", "invalid_grant", "interaction_required"):   # 700082, 70043: the catalogue's own fix
            d.fix = "Sign in again with `mailwizard login`."
        raise AuthError(d)
    finally:
        session.close()


# -- showing the code ----------------------------------------------------------------------------

def qr_text(url: str) -> str | None:
    """A QR code of ``url`` for a terminal (half-block characters), or None
    when the optional ``segno`` package is missing."""
    try:
        import segno
    except ImportError:
        return None
    import io
    out = io.StringIO()
    segno.make(url, error="l", micro=False).terminal(out=out, compact=True, border=2)
    return out.getvalue().rstrip("\n")


_FONT = {     # 4x5 glyphs for big_text, row by row: letters and digits (user codes use nothing else)
    "0": ".##. #.## ##.# #..# .##.", "1": ".#.. ##.. .#.. .#.. ###.", "2": "###. ...# .##. #... ####",
    "3": "###. ...# .##. ...# ###.", "4": "#..# #..# #### ...# ...#", "5": "#### #... ###. ...# ###.",
    "6": ".##. #... ###. #..# .##.", "7": "#### ...# ..#. .#.. .#..", "8": ".##. #..# .##. #..# .##.",
    "9": ".##. #..# .### ...# .##.", "A": ".##. #..# #### #..# #..#", "B": "###. #..# ###. #..# ###.",
    "C": ".### #... #... #... .###", "D": "###. #..# #..# #..# ###.", "E": "#### #... ###. #... ####",
    "F": "#### #... ###. #... #...", "G": ".### #... #.## #..# .###", "H": "#..# #..# #### #..# #..#",
    "I": "###. .#.. .#.. .#.. ###.", "J": "...# ...# ...# #..# .##.", "K": "#..# #.#. ##.. #.#. #..#",
    "L": "#... #... #... #... ####", "M": "#..# #### #..# #..# #..#", "N": "#..# ##.# #.## #..# #..#",
    "O": ".##. #..# #..# #..# .##.", "P": "###. #..# ###. #... #...", "Q": ".##. #..# #..# #.#. .#.#",
    "R": "###. #..# ###. #.#. #..#", "S": ".### #... .##. ...# ###.", "T": "#### .#.. .#.. .#.. .#..",
    "U": "#..# #..# #..# #..# .##.", "V": "#..# #..# #..# .##. .##.", "W": "#..# #..# #### #### #..#",
    "X": "#..# #..# .##. #..# #..#", "Y": "#..# #..# .##. ..#. ..#.", "Z": "#### ...# ..#. .#.. ####",
}
_FONT = {k: v.split() for k, v in _FONT.items()}


def big_text(text: str) -> str:
    """``text`` in 5-line block letters (letters, digits; a space is a wider gap)."""
    rows = [[] for _ in range(5)]
    for ch in text.upper():
        glyph = _FONT.get(ch)
        for r in range(5):
            rows[r].append("  " if glyph is None else glyph[r].replace("#", "█").replace(".", " ") + " ")
    return "\n".join("".join(r).rstrip() for r in rows)


def display(flow: Flow, *, qr: bool = True, width: int = 78, who: str = "the account the system should use") -> str:
    """The sign-in instructions: URL and code large and clear, and a QR code of the URL.
    ``who``: whom to sign in as (`mailwizard register`: a tenant admin)."""
    code = "   ".join(" ".join(group) for group in flow.code_display.split())   # A B C   D E F   G H I
    rows = ["", "1. On any device (a phone is fine) open this page:", "", flow.verification_uri, "",
            "2. Type this code:", "", code, "",
            f"3. Sign in there with {who}", "(MFA is fine).", ""]
    inner = min(max(len(r) for r in rows) + 6, max(width - 2, 20))
    # a row wider than the frame is wrapped inside it (a long address by characters), never cut
    rows = [piece for r in rows for piece in (textwrap.wrap(r, inner - 2, break_on_hyphens=False) or [""])]
    lines = ["+" + "-" * inner + "+"]
    lines += ["|" + r.center(inner) + "|" for r in rows]
    lines.append("+" + "-" * inner + "+")
    big = big_text(flow.code_display)
    if max(len(line) for line in big.splitlines()) <= width:
        lines += ["", "The code, large:", "", big]
    text = "\n".join(lines)
    if qr:
        picture = qr_text(flow.verification_uri)
        if picture and max(len(line) for line in picture.splitlines()) > width:
            text += "\n\n(No QR code: the window is too narrow.)"
        elif picture:
            text += "\n\nOr scan this QR code to open the page:\n" + picture
        else:
            text += "\n\n(QR code not shown: install the optional 'segno' package for it.)"
    return text


__all__ = ["Flow", "start", "wait", "login", "silent", "signed_in", "forget", "cache_path", "display",
           "qr_text", "scopes_for", "for_device_code", "GUIDE"]
