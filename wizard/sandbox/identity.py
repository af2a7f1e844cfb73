"""The Microsoft identity platform, as the sandbox serves it.

OpenID discovery, JWKS, the v2.0 token endpoint (client credentials and
password grants), user realm discovery. Error bodies are shaped like the real
service's: error, error_description "AADSTSnnnn: ...", error_codes, timestamp,
trace_id, correlation_id, error_uri.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from datetime import date, datetime, timezone
from urllib.parse import parse_qs, unquote


from jwt.utils import base64url_encode

from wizard.sandbox.tenant import App, Tenant
from wizard.sandbox.tokens import sign_jwt
from wizard.sandbox.web import GUID_RE, Response, json_response

EXCHANGE = "https://outlook.office365.com"
GRAPH = "https://graph.microsoft.com"
# resource key used in App.roles / App.scopes -> resource URL (the token's aud)
RESOURCES = {"exchange": EXCHANGE, "graph": GRAPH}
RESOURCE_ALIASES = {
    EXCHANGE: "exchange", "00000002-0000-0ff1-ce00-000000000000": "exchange",
    GRAPH: "graph", "00000003-0000-0000-c000-000000000000": "graph",
}
OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}
TOKEN_LIFETIME = 3599
DOMAIN_RE = re.compile(r"^(?=.{4,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")
ALIASES = ("common", "organizations", "consumers")
DEVICE_GRANTS = ("urn:ietf:params:oauth:grant-type:device_code", "refresh_token")   # see device.py


def object_id(kind: str, name: str) -> str:
    """A stable object ID for an app's service principal or a user."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailwizard-sandbox:{kind}:{name.lower()}"))


# -- the identity platform --------------------------------------------------------

class Identity:
    """Serves the identity platform paths for one tenant."""

    def __init__(self, tenant: Tenant, base_url: str, material, today=date.today):
        self.tenant = tenant
        self.base_url = base_url
        self.material = material
        self.today = today
        self._local = threading.local()     # per-request state: handler threads share this object
        from wizard.sandbox.device import DeviceLogins
        self.device = DeviceLogins(self)    # device code flow + refresh tokens (sandbox/device.py)

    @property
    def correlation_id(self) -> str:
        return getattr(self._local, "correlation_id", None) or str(uuid.uuid4())

    # routing
    def handle(self, method: str, path: str, query: str, headers, body: bytes) -> Response:
        parts = [unquote(p) for p in path.split("/") if p]
        self._local.correlation_id = headers.get("client-request-id") or str(uuid.uuid4())
        if parts and parts[0].lower() == "devicelogin":       # the device code verification page
            return self.device.page(method, headers, body)
        if len(parts) >= 2 and parts[0].lower() == "common" and parts[1].lower() == "userrealm":
            return self.user_realm(parts[2] if len(parts) > 2 else "")
        if not parts:
            return Response(404, b"Not found", {"Content-Type": "text/plain"})
        tenant_seg, rest = parts[0], "/".join(parts[1:]).lower()
        routes = {
            ("GET", "v2.0/.well-known/openid-configuration"): self.openid_configuration,
            ("GET", ".well-known/openid-configuration"): self.openid_configuration,
            ("GET", "discovery/v2.0/keys"): self.keys,
            ("GET", "discovery/keys"): self.keys,
            ("POST", "oauth2/v2.0/token"): self.token,
            ("GET", "oauth2/v2.0/authorize"): self.authorize,
            ("POST", "oauth2/v2.0/devicecode"): self.device.devicecode,
        }
        route = routes.get((method, rest))
        if route is None:
            if any(rest == r for _, r in routes):
                return Response(405, b"Method not allowed", {"Content-Type": "text/plain"})
            return Response(404, b"Not found", {"Content-Type": "text/plain"})
        problem = self._check_tenant(tenant_seg)
        if problem:
            return problem
        return route(tenant_seg, query, headers, body)

    # errors
    def error(self, status: int, error: str, code: int, text: str, **extra) -> Response:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        description = (f"AADSTS{code}: {text}\r\nTrace ID: {trace_id}\r\n"
                       f"Correlation ID: {self.correlation_id}\r\nTimestamp: {now}")
        data = {"error": error, "error_description": description, "error_codes": [code],
                "timestamp": now, "trace_id": trace_id, "correlation_id": self.correlation_id,
                "error_uri": f"{self.base_url}/error?code={code}"}
        data.update(extra)
        return json_response(status, data)

    def _check_tenant(self, seg: str) -> Response | None:
        if self.tenant.knows(seg) or seg.lower() in ALIASES:
            return None
        if GUID_RE.match(seg) or DOMAIN_RE.match(seg):
            return self.error(400, "invalid_tenant", 90002,
                              f"Tenant '{seg}' not found. Check to make sure you have the correct tenant ID "
                              "and are signing into the correct cloud. Check with your subscription "
                              "administrator, this may happen if there are no active subscriptions for the tenant.")
        return self.error(400, "invalid_tenant", 900023,
                          f"Specified tenant identifier '{seg}' is neither a valid DNS name, "
                          "nor a valid external domain.")

    # discovery
    def issuer_v2(self) -> str:
        return f"{self.base_url}/{self.tenant.tenant_id}/v2.0"

    def openid_configuration(self, seg, query, headers, body) -> Response:
        b = self.base_url
        tid = seg.lower() if seg.lower() in ALIASES else self.tenant.tenant_id
        issuer_tid = "{tenantid}" if seg.lower() in ALIASES else tid
        return json_response(200, {
            "token_endpoint": f"{b}/{tid}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{b}/{tid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{b}/{issuer_tid}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{b}/{tid}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{b}/{tid}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{b}/{tid}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time",
                                 "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
                                 "c_hash", "email"],
            "kerberos_endpoint": f"{b}/{tid}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })

    def keys(self, seg, query, headers, body) -> Response:
        key = dict(self.material.jwk(), issuer=self.issuer_v2())
        return json_response(200, {"keys": [key]})

    def authorize(self, seg, query, headers, body) -> Response:
        page = (f"<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>"
                f"<h1>{self.tenant.display_name}</h1><p>Sandbox sign-in page (interactive sign-in is not "
                f"simulated).</p></body></html>")
        return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def user_realm(self, upn: str) -> Response:
        domain = upn.rpartition("@")[2].lower()
        base = {"ver": "1.0", "cloud_instance_name": "microsoftonline.com",
                "cloud_audience_urn": "urn:federation:MicrosoftOnline"}
        if domain and domain in (d.lower() for d in self.tenant.domains):
            return json_response(200, {**base, "account_type": "Managed", "domain_name": domain,
                                       "federation_protocol": "", "federation_metadata_url": ""})
        return json_response(200, {**base, "account_type": "Unknown"})

    # the token endpoint
    def token(self, seg, query, headers, body) -> Response:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        self._apply_basic_auth(form, headers)
        grant = form.get("grant_type", "")
        if not grant:
            return self._missing("grant_type")
        if grant not in ("client_credentials", "password", *DEVICE_GRANTS):
            return self.error(400, "unsupported_grant_type", 70003,
                              f"The app requested an unsupported grant type '{grant}'.")
        client_id = form.get("client_id", "")
        if not client_id:
            return self._missing("client_id")
        if not GUID_RE.match(client_id):
            return self.error(400, "unauthorized_client", 700016, self._app_not_found_text(client_id))
        app = self.tenant.app(client_id)
        if app is None:
            return self.error(400, "unauthorized_client", 700016, self._app_not_found_text(client_id))
        if app.disabled:
            return self.error(400, "unauthorized_client", 7000112,
                              f"Application '{app.client_id}'({app.name}) is disabled.")
        if app.new and self.tenant.token_lag > 0:      # a new registration still replicating
            self.tenant.token_lag -= 1
            return self.error(400, "unauthorized_client", 700016, self._app_not_found_text(client_id))
        if seg.lower() in ALIASES and not app.multi_tenant:
            return self.error(400, "invalid_request", 50194,
                              f"Application '{app.client_id}'({app.name}) is not configured as a multi-tenant "
                              "application. Usage of the /common endpoint is not supported for such "
                              "applications created after '10/15/2018'. Use a tenant-specific endpoint or "
                              "configure the application to be multi-tenant.")
        if grant == "client_credentials":
            return self._client_credentials(app, form)
        if grant in DEVICE_GRANTS:          # device code and refresh token: sandbox/device.py
            return self.device.token(app, form)
        return self._password(app, form)

    def _apply_basic_auth(self, form: dict, headers) -> None:
        auth = headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return
            form.setdefault("client_id", unquote(cid))
            form.setdefault("client_secret", unquote(secret))

    def _missing(self, name: str) -> Response:
        return self.error(400, "invalid_request", 900144,
                          f"The request body must contain the following parameter: '{name}'.")

    def _app_not_found_text(self, client_id: str) -> str:
        return (f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant.display_name}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant. You may have "
                "sent your authentication request to the wrong tenant.")

    def _check_secret(self, app: App, secret: str) -> Response | None:
        for s in app.secrets:
            if s.value == secret:
                if s.expires < self.today():
                    return self.error(401, "invalid_client", 7000222,
                                      f"The provided client secret keys for app '{app.client_id}' are expired. "
                                      "Visit the Azure portal to create new keys for your app: "
                                      "https://aka.ms/NewClientSecret, or consider using certificate "
                                      "credentials for added security: https://aka.ms/certCreds.")
                return None
        return self.error(401, "invalid_client", 7000215,
                          "Invalid client secret provided. Ensure the secret being sent in the request is the "
                          f"client secret value, not the client secret ID, for a secret added to app "
                          f"'{app.client_id}'.")

    def _no_secret(self) -> Response:
        return self.error(401, "invalid_client", 7000218,
                          "The request body must contain the following parameter: 'client_assertion' or "
                          "'client_secret'.")

    def _resource_of(self, scope: str) -> tuple[str | None, str]:
        """('exchange'|'graph'|None, permission) for one scope string."""
        if "/" not in scope:
            return "graph", scope          # bare names mean Microsoft Graph
        resource, _, perm = scope.rstrip().rpartition("/")
        return RESOURCE_ALIASES.get(resource.rstrip("/").lower()), perm

    def _resource_not_found(self, scope: str) -> Response:
        resource = scope.rpartition("/")[0] or scope
        return self.error(400, "invalid_resource", 500011,
                          f"The resource principal named {resource} was not found in the tenant named "
                          f"{self.tenant.display_name}. This can happen if the application has not been "
                          "installed by the administrator of the tenant or consented to by any user in the "
                          "tenant. You might have sent your authentication request to the wrong tenant.")

    def _client_credentials(self, app: App, form: dict) -> Response:
        secret = form.get("client_secret", "")
        if not secret and not form.get("client_assertion"):
            return self._no_secret()
        if form.get("client_assertion"):   # certificate credentials: sandbox/assertion.py
            from wizard.sandbox.assertion import check_client_assertion
            problem = check_client_assertion(self, app, form)
        else:
            problem = self._check_secret(app, secret)
        if problem:
            return problem
        scopes = form.get("scope", "").split()
        if not scopes:
            return self._missing("scope")
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return self.error(400, "invalid_scope", 1002012,
                              f"The provided value for scope {' '.join(scopes)} is not valid. Client credential "
                              "flows must have a scope value with /.default suffixed to the resource "
                              "identifier (application ID URI).")
        key, _ = self._resource_of(scopes[0])
        if key is None:
            return self._resource_not_found(scopes[0])
        roles = sorted(app.roles.get(key, set()))
        claims = self._base_claims(app, key)
        claims.update({"idtyp": "app", "oid": object_id("sp", app.client_id),
                       "sub": object_id("sp", app.client_id), "appidacr": "1"})
        if roles:                      # no consent: the real service still issues a token, without roles
            claims["roles"] = roles
        return self._token_response(claims)

    def _password(self, app: App, form: dict) -> Response:
        secret = form.get("client_secret", "")
        if secret:
            problem = self._check_secret(app, secret)
            if problem:
                return problem
        elif not app.public_client:
            return self._no_secret()
        for name in ("username", "password"):
            if not form.get(name):
                return self._missing(name)
        upn = form["username"]
        user = self.tenant.user(upn)
        if user is None:
            return self._no_such_user()
        if form["password"] != user.password:
            return self.error(400, "invalid_grant", 50126,
                              "Error validating credentials due to invalid username or password.")
        requested = form.get("scope", "").split()
        admitted = self._admit(app, user, requested)
        if isinstance(admitted, Response):
            return admitted
        key, granted = admitted
        if user.mfa:
            return self.error(400, "invalid_grant", 50076,
                              "Due to a configuration change made by your administrator, or because you moved "
                              f"to a new location, you must use multi-factor authentication to access "
                              f"'{RESOURCES[key]}'.", suberror="basic_action",
                              claims='{"access_token":{"capolids":{"essential":true,"values":'
                                     '["5d1fb3e0-1c2d-4d5e-8f9a-0b1c2d3e4f50"]}}}')
        return self._user_token(app, user, key, granted, confidential=bool(secret), amr=["pwd"],
                                refresh="offline_access" in requested, openid="openid" in requested)

    # -- delegated (user) tokens: the password grant here, device code and refresh tokens in device.py --
    def _no_such_user(self) -> Response:
        return self.error(400, "invalid_grant", 50034,
                          f"The user account {{EUII Hidden}} does not exist in the {self.tenant.tenant_id} "
                          "directory. To sign into this application, the account must be added to the "
                          "directory.")

    def _admit(self, app: App, user, requested: list[str]):
        """The checks of a known user that every delegated grant makes, in this order: a disabled
        account, the scopes and consent, Conditional Access. (resource key, granted scopes), or an
        error Response."""
        if user.disabled:
            return self.error(400, "invalid_grant", 50057, "The user account is disabled.")
        scoped = self._delegated_scopes(app, requested)
        if isinstance(scoped, Response):
            return scoped
        if user.conditional_access_block:
            return self.error(400, "invalid_grant", 53003,
                              "Access has been blocked by Conditional Access policies. The access policy does "
                              "not allow token issuance.", suberror="message_only")
        return scoped

    def _delegated_scopes(self, app: App, requested: list[str], *, consent: bool = True):
        """(resource key, granted scopes) for delegated ``requested`` scopes, or an error Response:
        an unknown scope or resource, more than one resource, or (unless ``consent`` is False) no
        consent for them."""
        resource_scopes = [s for s in requested if s not in OIDC_SCOPES] or [f"{GRAPH}/User.Read"]
        keys = set()
        for s in resource_scopes:
            key, _perm = self._resource_of(s)
            if key is None:
                if s.startswith("https://") or GUID_RE.match(s.split("/")[0]):
                    return self._resource_not_found(s)
                return self.error(400, "invalid_scope", 70011,
                                  f"The provided value for the input parameter 'scope' is not valid. "
                                  f"The scope {s} is not valid.")
            keys.add(key)
        if len(keys) > 1:
            return self.error(400, "invalid_scope", 28000,
                              "Provided value for the input parameter scope is not valid because it contains "
                              "more than one resource. Scope " + " ".join(requested) + " is not valid.")
        key = keys.pop()
        granted = app.scopes.get(key, set())
        wanted = {self._resource_of(s)[1] for s in resource_scopes}
        if consent and (not granted or any(p != ".default" and p not in granted for p in wanted)):
            return self.error(400, "invalid_grant", 65001,
                              f"The user or administrator has not consented to use the application with ID "
                              f"'{app.client_id}' named '{app.name}'. Send an interactive authorization "
                              "request for this user and resource.", suberror="consent_required")
        return key, granted

    def _user_token(self, app: App, user, key: str, granted, *, confidential: bool, amr: list[str],
                    refresh: bool, openid: bool) -> Response:
        """The delegated access token for ``user``; with ``refresh`` a refresh token, with ``openid``
        an id_token and client_info."""
        oid = object_id("user", user.upn)
        claims = self._base_claims(app, key)
        claims.update({"idtyp": "user", "oid": oid, "sub": object_id("sub", user.upn + app.client_id),
                       "appidacr": "1" if confidential else "0", "scp": " ".join(sorted(granted)),
                       "upn": user.upn, "unique_name": user.upn, "name": user.display_name or user.upn,
                       "amr": amr})
        extra = {}
        if refresh:
            extra["refresh_token"] = self.device.issue_refresh_token(app.client_id, user.upn)
        if openid:
            extra["client_info"] = base64url_encode(json.dumps({"uid": oid, "utid": self.tenant.tenant_id}).encode()).decode()
            now = int(time.time())
            extra["id_token"] = sign_jwt({
                "aud": app.client_id, "iss": self.issuer_v2(), "iat": now, "nbf": now, "exp": now + 3600,
                "name": claims["name"], "oid": oid, "preferred_username": user.upn,
                "sub": claims["sub"], "tid": self.tenant.tenant_id, "ver": "2.0"}, self.material)
        return self._token_response(claims, extra)

    def _base_claims(self, app: App, key: str) -> dict:
        now = int(time.time())
        return {"aud": RESOURCES[key], "iss": f"https://sts.windows.net/{self.tenant.tenant_id}/",
                "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME + 1,
                "app_displayname": app.name, "appid": app.client_id,
                "tid": self.tenant.tenant_id, "uti": base64url_encode(uuid.uuid4().bytes).decode()[:22], "ver": "1.0"}

    def _token_response(self, claims: dict, extra: dict | None = None) -> Response:
        data = {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "ext_expires_in": TOKEN_LIFETIME,
                "access_token": sign_jwt(claims, self.material)}
        if "scp" in claims:
            data["scope"] = " ".join(f"{claims['aud']}/{s}" for s in claims["scp"].split())
        data.update(extra or {})
        return json_response(200, data)
