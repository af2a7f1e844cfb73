"""The device authorization grant (device code flow) and refresh tokens, as the
sandbox identity platform serves them.

- ``POST /{tenant}/oauth2/v2.0/devicecode`` (client_id, scope) answers
  device_code, user_code, verification_uri (``{base}/devicelogin``),
  expires_in (900), interval (5) and message.
- The token endpoint's ``grant_type=urn:ietf:params:oauth:grant-type:device_code``
  answers, per the state the test (or a person on ``/devicelogin``) set:
  ``authorization_pending`` (AADSTS70016), ``slow_down``, ``expired_token``
  (AADSTS70019), ``authorization_declined``; after approval the user's own
  checks: AADSTS50034 (no such user), 50057 (disabled), 53003 (blocked by
  Conditional Access), 65001 (no consent); then a delegated token (scp, upn,
  amr) with a refresh token, an id_token and client_info.
- The app needs "Allow public client flows" = Yes, else AADSTS7000218 (as for
  the password flow), unless it authenticates as a confidential client.
- ``grant_type=refresh_token`` redeems a refresh token this sandbox issued
  (device code or password grant) for any consented scope of the same API
  family; revoked ones get AADSTS50173, unknown ones AADSTS70000.
  Conditional Access and a disabled account apply on every redemption.

Tests drive it through ``sb.device``: ``approve(user_code, upn)``,
``decline``, ``expire``, ``slow_down``, ``revoke_refresh_tokens``, ``last``
(the latest user code). Users with MFA can approve: they complete MFA in the
browser, which the device code flow allows.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from urllib.parse import parse_qs

from wizard.sandbox.web import GUID_RE, Response, json_response

OIDC = {"openid", "profile", "offline_access", "email"}
CONSENT_ADMINS = {"Global Administrator", "Privileged Role Administrator", "Cloud Application Administrator",
                  "Application Administrator"}

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_GRANT = "refresh_token"
GRANTS = (DEVICE_GRANT, REFRESH_GRANT)
EXPIRES_IN = 900
INTERVAL = 5
_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"     # no vowels, no 0/O/1/I: nothing to misread


@dataclass
class DeviceAuthorization:
    device_code: str = field(repr=False)
    user_code: str
    client_id: str
    scopes: list[str]
    issued: float
    expires_in: int = EXPIRES_IN
    interval: int = INTERVAL
    state: str = "pending"          # pending | approved | declined | expired | redeemed
    upn: str | None = None
    slow_downs: int = 0             # scripted: the next N polls answer slow_down
    polls: int = 0
    last_poll: float | None = None


@dataclass
class RefreshGrant:
    client_id: str
    upn: str
    revoked: bool = False


class DeviceLogins:
    """Device authorizations and refresh tokens of one sandbox identity platform."""

    def __init__(self, identity):
        self.identity = identity
        self.clock = time.monotonic          # tests may replace it
        self.strict_interval = False         # True: polling faster than `interval` answers slow_down
        self.auto_approve: tuple[str, float] | None = None  # (upn, seconds): approve every sign-in after that
        self.auto_approve_client: str | None = None     # ... of this client only (None: every client)
        self.expires_in = EXPIRES_IN
        self.interval = INTERVAL
        self._lock = threading.Lock()
        self._by_device: dict[str, DeviceAuthorization] = {}
        self._by_user: dict[str, DeviceAuthorization] = {}
        self._refresh: dict[str, RefreshGrant] = {}
        self._order: list[str] = []

    # -- test controls ----------------------------------------------------------------
    @property
    def last(self) -> str | None:
        """The latest user code handed out."""
        with self._lock:
            return self._order[-1] if self._order else None

    def get(self, user_code: str | None = None) -> DeviceAuthorization:
        code = (user_code or self.last or "").replace("-", "").upper()
        with self._lock:
            auth = self._by_user.get(code)
        if auth is None:
            raise KeyError(f"no device authorization with user code {user_code!r}")
        return auth

    def approve(self, user_code: str | None = None, upn: str | None = None) -> DeviceAuthorization:
        """The user opened the verification page, typed the code and signed in
        (completing MFA there if their account needs it)."""
        auth = self.get(user_code)
        if upn is None:
            from wizard.sandbox.sample import SERVICE_USER
            upn = SERVICE_USER
        auth.state, auth.upn = "approved", upn
        return auth

    def decline(self, user_code: str | None = None) -> DeviceAuthorization:
        auth = self.get(user_code)
        auth.state = "declined"
        return auth

    def expire(self, user_code: str | None = None) -> DeviceAuthorization:
        auth = self.get(user_code)
        auth.state = "expired"
        return auth

    def slow_down(self, user_code: str | None = None, times: int = 1) -> DeviceAuthorization:
        auth = self.get(user_code)
        auth.slow_downs += times
        return auth

    def revoke_refresh_tokens(self, upn: str | None = None) -> int:
        """Revoke-MgUserSignInSession: every refresh token (of ``upn``) stops working."""
        n = 0
        with self._lock:
            for grant in self._refresh.values():
                if upn is None or grant.upn.lower() == upn.lower():
                    grant.revoked, n = True, n + 1
        return n

    def clear(self) -> None:
        """Forget every authorization and refresh token; back to the default timing."""
        self.clock, self.strict_interval, self.auto_approve = time.monotonic, False, None
        self.auto_approve_client = None
        self.expires_in, self.interval = EXPIRES_IN, INTERVAL
        with self._lock:
            self._by_device.clear()
            self._by_user.clear()
            self._refresh.clear()
            self._order.clear()

    def issue_refresh_token(self, client_id: str, upn: str) -> str:
        token = "sandbox-rt." + secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[token] = RefreshGrant(client_id, upn)
        return token

    # -- errors -----------------------------------------------------------------------
    def _error(self, status: int, error: str, code: int | None, text: str, **extra) -> Response:
        if code is not None:
            return self.identity.error(status, error, code, text, **extra)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        trace = str(uuid.uuid4())
        data = {"error": error, "error_description": f"{text}\r\nTrace ID: {trace}\r\nCorrelation ID: "
                f"{self.identity.correlation_id}\r\nTimestamp: {now}", "error_codes": [], "timestamp": now,
                "trace_id": trace, "correlation_id": self.identity.correlation_id}
        data.update(extra)
        return json_response(status, data)

    # -- POST /{tenant}/oauth2/v2.0/devicecode ------------------------------------------------
    def devicecode(self, seg, query, headers, body) -> Response:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        client_id = form.get("client_id", "")
        if not client_id:
            return self.identity._missing("client_id")
        app = self.identity.tenant.app(client_id) if GUID_RE.match(client_id) else None
        if app is None:
            return self.identity.error(400, "unauthorized_client", 700016,
                                       self.identity._app_not_found_text(client_id))
        requested = form.get("scope", "").split()
        problem = self.identity._delegated_scopes(app, requested, consent=False)
        if isinstance(problem, Response):
            return problem
        if app.disabled:
            return self.identity.error(400, "unauthorized_client", 7000112,
                                       f"Application '{app.client_id}'({app.name}) is disabled.")
        if app.preauthorized is not None:
            extra = [s for s in requested if s not in OIDC and s.rpartition("/")[2] not in app.preauthorized]
            if extra:
                return self.identity.error(400, "invalid_request", 65002,
                                           f"Consent between first party application '{app.client_id}' and first "
                                           "party resource '00000003-0000-0000-c000-000000000000' must be "
                                           "configured via preauthorization - applications owned and operated by "
                                           "Microsoft must get approval from the API owner before requesting "
                                           "tokens for that API.")
        user_code = "".join(secrets.choice(_ALPHABET) for _ in range(9))
        device_code = "sandbox-dc." + secrets.token_urlsafe(32)
        auth = DeviceAuthorization(device_code, user_code, app.client_id, requested, self.clock(),
                                   self.expires_in, self.interval)
        with self._lock:
            self._by_device[device_code] = auth
            self._by_user[user_code] = auth
            self._order.append(user_code)
        uri = f"{self.identity.base_url}/devicelogin"
        return json_response(200, {
            "user_code": user_code, "device_code": device_code, "verification_uri": uri,
            "expires_in": auth.expires_in, "interval": auth.interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} "
                       "to authenticate."})

    # -- the token endpoint: device code and refresh token grants ----------------------------------
    def token(self, app, form: dict) -> Response:
        if form.get("client_secret") or form.get("client_assertion"):
            problem = self._client_auth(app, form)
            if problem is not None:
                return problem
            confidential = True
        else:
            confidential = False
            if not app.public_client:
                return self.identity._no_secret()
        if form.get("grant_type") == DEVICE_GRANT:
            return self._device(app, form, confidential)
        return self._refresh_grant(app, form, confidential)

    def _client_auth(self, app, form):
        if form.get("client_assertion"):
            from wizard.sandbox.assertion import check_client_assertion
            return check_client_assertion(self.identity, app, form)
        return self.identity._check_secret(app, form["client_secret"])

    def _device(self, app, form: dict, confidential: bool) -> Response:
        code = form.get("device_code") or form.get("code") or ""
        if not code:
            return self.identity._missing("device_code")
        with self._lock:
            auth = self._by_device.get(code)
        if auth is None or auth.client_id.lower() != app.client_id.lower():
            return self.identity.error(400, "invalid_grant", 70000,
                                       "Provided grant is invalid or malformed.")
        now = self.clock()
        too_fast = (self.strict_interval and auth.last_poll is not None
                    and now - auth.last_poll < auth.interval)
        auth.polls += 1
        auth.last_poll = now
        if (auth.state == "pending" and self.auto_approve and now - auth.issued >= self.auto_approve[1]
                and (self.auto_approve_client is None or self.auto_approve_client.lower() == auth.client_id.lower())):
            auth.state, auth.upn = "approved", self.auto_approve[0]     # `sandbox --approve-device-codes`
        if auth.state == "pending" and now - auth.issued >= auth.expires_in:
            auth.state = "expired"
        if auth.state == "expired":
            return self.identity.error(400, "expired_token", 70019,
                                       "Verification code expired. The device code flow session has ended: "
                                       "start a new sign-in.")
        if auth.state == "redeemed":
            return self.identity.error(400, "invalid_grant", 70000,
                                       "Provided grant is invalid or malformed: the device code was already "
                                       "redeemed.")
        if auth.state == "declined":
            return self._error(400, "authorization_declined", None,
                               "The end user declined the authorization request.")
        if auth.slow_downs > 0 or too_fast:
            if auth.slow_downs > 0:
                auth.slow_downs -= 1
            auth.interval += 5
            return self._error(400, "slow_down", None,
                               f"Polling too frequently: wait at least {auth.interval} seconds between requests.")
        if auth.state == "pending":
            return self.identity.error(400, "authorization_pending", 70016,
                                       "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
        response = self._issue(app, auth.upn or "", auth.scopes, confidential, amr_device=True)
        if response.status == 200:
            auth.state = "redeemed"
        return response

    def _refresh_grant(self, app, form: dict, confidential: bool) -> Response:
        token = form.get("refresh_token", "")
        if not token:
            return self.identity._missing("refresh_token")
        with self._lock:
            grant = self._refresh.get(token)
        if grant is None or grant.client_id.lower() != app.client_id.lower():
            return self.identity.error(400, "invalid_grant", 70000,
                                       "Provided grant is invalid or malformed: the refresh token is not valid.")
        if grant.revoked:
            return self.identity.error(400, "invalid_grant", 50173,
                                       "The provided grant has expired due to it being revoked, a fresh auth "
                                       "token is needed. The user might have changed or reset their password.")
        return self._issue(app, grant.upn, form.get("scope", "").split(), confidential, amr_device=False)

    def _issue(self, app, upn: str, requested: list[str], confidential: bool, *, amr_device: bool) -> Response:
        ident = self.identity
        user = ident.tenant.user(upn) if upn else None
        if user is None:
            return ident._no_such_user()
        if app.assigned_users is not None and user.upn.lower() not in {u.lower() for u in app.assigned_users}:
            return ident.error(400, "invalid_grant", 50105,
                               f"Your administrator has configured the application {app.name} ('{app.client_id}') "
                               "to block users unless they are specifically granted ('assigned') access to the "
                               "application. The signed in user '{EUII Hidden}' is blocked because they are not a "
                               "direct member of a group with access, nor had access directly assigned by an "
                               "administrator. Please contact your administrator to assign access to this "
                               "application.")
        if app.consent_at_signin and user.conditional_access_block and not user.disabled:
            return ident.error(400, "invalid_grant", 53003,
                               "Access has been blocked by Conditional Access policies. The access policy does "
                               "not allow token issuance.", suberror="message_only")
        if app.consent_at_signin and not user.disabled:
            problem = self._consent(app, user, requested)
            if problem is not None:
                return problem
        admitted = ident._admit(app, user, requested)
        if isinstance(admitted, Response):
            return admitted
        key, granted = admitted
        return ident._user_token(app, user, key, granted, confidential=confidential,
                                 amr=["pwd", "mfa"] if user.mfa else ["pwd"],
                                 refresh="offline_access" in requested or not amr_device,
                                 openid="openid" in requested or not amr_device)

    def _consent(self, app, user, requested: list[str]) -> Response | None:
        """The consent prompt of a device-code sign-in: an admin consents for the organization
        (the scopes are then granted to the app); anyone else gets AADSTS90094 for scopes not
        yet consented."""
        ident = self.identity
        scoped = ident._delegated_scopes(app, requested, consent=False)
        if isinstance(scoped, Response):
            return None
        key, _ = scoped
        wanted = {ident._resource_of(s)[1] for s in requested if s not in OIDC} - {".default"}
        missing = wanted - app.scopes.get(key, set())
        if not missing:
            return None
        if set(getattr(user, "roles", ())) & CONSENT_ADMINS:
            app.scopes.setdefault(key, set()).update(missing)
            return None
        return ident.error(400, "invalid_grant", 90094, "The grant requires admin permission.")

    # -- GET/POST /devicelogin: the page a person uses (mailwizard sandbox by hand) ----------------
    def page(self, method: str, headers, body: bytes) -> Response:
        note = ""
        if method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            code = form.get("otc", "").replace("-", "").strip().upper()
            try:
                auth = self.get(code) if code else None
            except KeyError:
                auth = None
            if auth is None or auth.state != "pending":
                note = "That code is not valid or has expired. Check the code and try again."
            elif form.get("action") == "decline":
                self.decline(code)
                note = "Sign-in cancelled. You can close this window."
            else:
                user = self.identity.tenant.user(form.get("loginfmt", ""))
                if user is None or user.password != form.get("passwd", ""):
                    note = "Your account or password is incorrect."
                else:
                    self.approve(code, user.upn)
                    note = (f"You have signed in as {escape(user.upn)} on the device. "
                            "You can close this window.")
        page = ("<!DOCTYPE html><html><head><title>Enter code</title></head><body>"
                f"<h1>{escape(self.identity.tenant.display_name)}</h1><p>{note}</p>"
                "<form method=\"post\" action=\"/devicelogin\">"
                "<label>Code <input name=\"otc\" autocomplete=\"off\"></label> "
                "<label>User <input type=\"email\" name=\"loginfmt\"></label> "
                "<label>Password <input type=\"password\" name=\"passwd\"></label> "
                "<button name=\"action\" value=\"approve\">Sign in</button> "
                "<button name=\"action\" value=\"decline\">Cancel</button></form></body></html>")
        return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})


__all__ = ["DeviceLogins", "DeviceAuthorization", "DEVICE_GRANT", "REFRESH_GRANT", "GRANTS", "device_code_config"]


def device_code_config(sb, username: str | None = None):
    """A Config for the device code flow against the sandbox ``sb``: the sample
    public-client app with delegated EWS consent; ``username`` (default the
    sample service account) is the expected sign-in. For demos and tests: sign
    in with ``wizard.identity.device_code.login`` and approve with ``sb.device.approve()``."""
    from wizard.sandbox.sample import SERVICE_USER
    cfg = sb.config(flow="password")
    cfg.auth.flow, cfg.auth.password = "device_code", ""
    cfg.auth.username = SERVICE_USER if username is None else username
    for acc in cfg.incoming.accounts:
        acc.username = acc.password = ""
    return cfg
