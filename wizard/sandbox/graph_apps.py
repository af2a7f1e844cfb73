"""Microsoft Graph's directory endpoints for app registration, as the sandbox
serves them (what `mailwizard register` and `doctor` call):

- ``/v1.0/applications``: POST (create), GET ``?$filter=appId eq '...'``;
  ``applications(uniqueName='...')`` PATCH with ``Prefer: create-if-missing``
  (201 + the new object, 204 on update, 404 without the header when missing)
  and GET; ``applications(appId='...')`` and ``applications/{id}``: GET, PATCH
  (``keyCredentials`` sent whole, public keys only), ``addPassword`` (200 +
  ``passwordCredential`` with ``secretText``, ``hint``, ``keyId``; ``endDateTime``
  default start + 2 years), ``removePassword`` (204).
- ``/v1.0/servicePrincipals``: POST ``{"appId"}`` (409 when it exists, 400
  ``NoBackingApplicationObject`` while the app is replicating), GET
  ``?$filter=appId eq '...'``; ``servicePrincipals(appId='...')`` GET;
  ``servicePrincipals/{id}`` GET, ``/appRoleAssignedTo`` GET/POST (400 when
  the role is already assigned), ``/appRoleAssignments`` GET.
- ``/v1.0/oauth2PermissionGrants``: POST (409 when client + resource +
  consentType exist), GET ``?$filter=clientId eq '...'``; ``/{id}`` PATCH scope.
- ``/v1.0/policies/authorizationPolicy``: GET (allowedToCreateApps).

Who may do what (delegated tokens): the token's ``scp`` must hold the scope
the call needs, else 403 ``Authorization_RequestDenied``; then the signed-in
user's directory roles: creating apps and service principals needs one of the
app roles or "Users can register applications"; granting app roles of
Microsoft Graph needs Global or Privileged Role Administrator (a Cloud
Application Administrator may grant other APIs' app roles and any delegated
consent). Every write updates the identity platform's view of the app
(``tenant.App``): secrets, certificates, roles, scopes and the public client
setting, so a token for the new app works as soon as it is registered.

The resource service principals of Microsoft Graph and Office 365 Exchange
Online carry the permissions the flows use. Where Microsoft's pages give the
ID (docs/microsoft-365.md) it is the real one; the others are the sandbox's own
(stable UUIDs made from the name), which is why a client must look them up by
name, as Microsoft says to.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
import threading
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, unquote

from wizard.sandbox.graph_json import GraphError
from wizard.sandbox.sample import BOOTSTRAP_APP_ID
from wizard.sandbox.tenant import App, Certificate, Secret
from wizard.sandbox.web import Response, json_response

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
RESOURCE_KEYS = {GRAPH_APP_ID: "graph", EXCHANGE_APP_ID: "exchange"}
DENIED = "Insufficient privileges to complete the operation."
GRAPH_ROLE_ADMINS = {"Global Administrator", "Privileged Role Administrator"}
CONSENT_ADMINS = GRAPH_ROLE_ADMINS | {"Cloud Application Administrator", "Application Administrator"}
APP_CREATORS = CONSENT_ADMINS | {"Application Developer"}
# Delegated IMAP/SMTP/POP scopes consented on Microsoft Graph also admit tokens for Exchange Online
# (the portal lists them under Microsoft Graph, the token's audience is outlook.office365.com).
EXCHANGE_VIA_GRAPH = {"IMAP.AccessAsUser.All", "SMTP.Send", "POP.AccessAsUser.All"}
ROOTS = ("applications", "serviceprincipals", "oauth2permissiongrants", "policies")
_KEY_RE = re.compile(r"^(\w+)\((\w+)='([^']*)'\)$")
_FILTER_RE = re.compile(r"(\w+)\s+eq\s+'([^']*)'", re.I)


def _sandbox_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailwizard-sandbox:permission:{name}"))


def _role(value: str, pid: str | None = None) -> dict:
    return {"allowedMemberTypes": ["Application"], "description": value, "displayName": value,
            "id": pid or _sandbox_id("role:" + value), "isEnabled": True, "origin": "Application", "value": value}


def _scope(value: str, pid: str | None = None, admin: bool = False) -> dict:
    return {"adminConsentDescription": value, "adminConsentDisplayName": value,
            "id": pid or _sandbox_id("scope:" + value), "isEnabled": True, "type": "Admin" if admin else "User",
            "userConsentDescription": value, "userConsentDisplayName": value, "value": value}


def resource_principals() -> list[dict]:
    """Microsoft Graph and Office 365 Exchange Online as their service principals show them."""
    graph = {"appId": GRAPH_APP_ID, "displayName": "Microsoft Graph", "appRoles": [
        _role("Mail.Send", "b633e1c5-b582-4048-a93e-9f11b44c7e96"),
        _role("Mail.Read", "810c84a8-4a9e-49e6-bf7d-12d183f40d01"),
        _role("Mail.ReadWrite", "e2a3a72e-5f79-4c64-b1b1-878b674786c9"),
        _role("Application.Read.All")],
        "oauth2PermissionScopes": [
            _scope("User.Read", "e1fe6dd8-ba31-4d61-89e7-88639da4683d"),
            _scope("offline_access"), _scope("openid"),
            _scope("IMAP.AccessAsUser.All"), _scope("SMTP.Send"),
            _scope("Mail.Send"), _scope("Mail.ReadWrite"), _scope("Mail.Send.Shared"),
            _scope("Mail.ReadWrite.Shared"),
            _scope("Application.ReadWrite.All", "bdfbf15f-ee85-4955-8675-146e8e5296b5", admin=True),
            _scope("AppRoleAssignment.ReadWrite.All", admin=True),
            _scope("DelegatedPermissionGrant.ReadWrite.All", admin=True)]}
    exchange = {"appId": EXCHANGE_APP_ID, "displayName": "Office 365 Exchange Online", "appRoles": [
        _role("full_access_as_app", "dc890d15-9560-4a4c-9b7f-a736ec74ec40"),
        _role("IMAP.AccessAsApp"), _role("SMTP.SendAsApp")],
        "oauth2PermissionScopes": [
            _scope("EWS.AccessAsUser.All", "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5"),
            _scope("IMAP.AccessAsUser.All"), _scope("SMTP.Send")]}
    return [graph, exchange]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except (ValueError, AttributeError):
        raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property '{name}' of resource "
                         "'PasswordCredential'.") from None


def new_secret_text() -> str:
    """A Value in today's format: 40 characters, '8Q~' at positions 4-6 (docs/microsoft-365.md)."""
    alphabet = string.ascii_letters + string.digits + "_-.~"
    return "".join(secrets.choice(string.ascii_letters) for _ in range(3)) + "8Q~" + \
        "".join(secrets.choice(alphabet) for _ in range(34))


class DetailedError(GraphError):
    """A Graph error with ``details`` (code, message, target) beside code and message."""

    def __init__(self, status: int, code: str, message: str, details: list[dict]):
        super().__init__(status, code, message)
        self.details = details


class Directory:
    """The tenant's app registrations, service principals and grants."""

    def __init__(self, sb):
        self.sb = sb
        self.lock = threading.RLock()
        self.apps: dict[str, dict] = {}         # object id -> application
        self.sps: dict[str, dict] = {}          # object id -> servicePrincipal
        self.assignments: list[dict] = []
        self.grants: dict[str, dict] = {}
        for sp in resource_principals():
            self._add_sp(sp)
        self._add_sp({"appId": BOOTSTRAP_APP_ID, "displayName": "Microsoft Graph Command Line Tools",
                      "appRoles": [], "oauth2PermissionScopes": []})

    # -- model --------------------------------------------------------------------------
    def _add_sp(self, sp: dict) -> dict:
        sp = {"id": str(uuid.uuid4()), "accountEnabled": True, "servicePrincipalType": "Application",
              "appRoles": [], "oauth2PermissionScopes": [], "keyCredentials": [], "passwordCredentials": [],
              "appRoleAssignmentRequired": False, "tags": [], **sp}
        self.sps[sp["id"]] = sp
        return sp

    def sp_by_app(self, app_id: str) -> dict | None:
        return next((s for s in self.sps.values() if s["appId"].lower() == app_id.lower()), None)

    def _app_by(self, key: str, value: str) -> dict | None:
        return next((a for a in self.apps.values() if (a.get(key) or "").lower() == value.lower()), None)

    def _tenant_app(self, app: dict) -> App:
        t = self.sb.tenant
        found = t.app(app["appId"])
        if found is None:
            found = App(client_id=app["appId"], name=app["displayName"])
            t.apps.append(found)
        return found

    def _sync(self, app: dict) -> None:
        """The identity platform's view follows the registration."""
        ta = self._tenant_app(app)
        ta.name = app["displayName"]
        ta.public_client = bool(app.get("isFallbackPublicClient"))
        ta.certificates = [Certificate(base64.b64decode(k["key"]), k.get("displayName") or "")
                           for k in app.get("keyCredentials", []) if k.get("key")]

    # -- callers ------------------------------------------------------------------------
    def _caller(self, claims: dict):
        """(user or None, scopes, app roles) of the token."""
        user = self.sb.tenant.user(claims.get("upn", "")) if "scp" in claims else None
        return user, set(str(claims.get("scp", "")).split()), set(claims.get("roles") or [])

    def _need(self, claims: dict, *scopes: str) -> object:
        user, scp, roles = self._caller(claims)
        have = scp | roles
        for s in scopes:
            alternatives = {s, s.replace(".Read.", ".ReadWrite.")}
            if not have & alternatives:
                raise GraphError(403, "Authorization_RequestDenied", DENIED)
        return user

    def _need_any(self, claims: dict, *scopes: str) -> object:
        user, scp, roles = self._caller(claims)
        if not (scp | roles) & (set(scopes) | {x.replace(".Read.", ".ReadWrite.") for x in scopes}):
            raise GraphError(403, "Authorization_RequestDenied", DENIED)
        return user

    @staticmethod
    def _roles(user) -> set[str]:
        return set(getattr(user, "roles", set()) or set())

    def _may_create(self, user) -> None:
        if user is not None and not (self._roles(user) & APP_CREATORS or self.sb.tenant.users_can_register_apps):
            raise GraphError(403, "Authorization_RequestDenied", DENIED)

    def _may_manage(self, user, app: dict) -> None:
        if user is None or self._roles(user) & APP_CREATORS:
            return
        if self.sb.tenant.user(user.upn) and user.upn.lower() in (o.lower() for o in app.get("_owners", [])):
            return
        raise GraphError(403, "Authorization_RequestDenied", DENIED)

    def _replicating(self, what: str, status: int = 404, code: str = "Request_ResourceNotFound") -> None:
        t = self.sb.tenant
        if t.replication_lag > 0:
            t.replication_lag -= 1
            if code == "NoBackingApplicationObject":
                raise DetailedError(400, "Request_BadRequest", f"The appId '{what}' of the service principal does "
                                    "not reference a valid application object.",
                                    [{"code": "NoBackingApplicationObject", "message": "The application object "
                                      "backing the service principal was not found.", "target": "appId"}])
            raise GraphError(status, code, f"Resource '{what}' does not exist or one of its queried "
                             "reference-property objects are not present.")

    # -- routing ------------------------------------------------------------------------
    def serve(self, method: str, path: str, query: str, headers, body: bytes) -> Response:
        """The response to one /v1.0/ directory request (bearer checked by the Graph service)."""
        graph = self.sb.graph
        crid = headers.get("client-request-id", "")
        try:
            claims = graph._authenticate(headers)
            parts = [p for p in path.split("/")[2:] if p]
            status, data = self.handle(method, parts, query, headers, body, claims)
        except GraphError as e:
            resp = graph.error(e.status, e.code, e.message, e.headers, crid)
            if getattr(e, "details", None):
                doc = json.loads(resp.body)
                doc["error"]["details"] = e.details
                resp.body = json.dumps(doc).encode()
            return resp
        if data is None:
            return Response(status, b"", {"request-id": str(uuid.uuid4())})
        return json_response(status, data, {"request-id": str(uuid.uuid4())})

    def handle(self, method: str, parts: list[str], query: str, headers, body: bytes, claims: dict):
        q = dict(parse_qsl(query, keep_blank_values=True))
        data = self._body(body) if method in ("POST", "PATCH") else {}
        head = parts[0]
        m = _KEY_RE.match(head)
        with self.lock:
            self._select = q.get("$select", "")
            if m:
                kind, key, value = m.group(1).lower(), m.group(2), unquote(m.group(3))
                if kind == "applications":
                    return self._application_key(method, key, value, parts[1:], headers, data, claims)
                if kind == "serviceprincipals" and key.lower() == "appid":
                    sp = self.sp_by_app(value)
                    if method == "GET" and len(parts) == 1:
                        self._need(claims, "Application.Read.All")
                        return 200, self._found(sp, value)
                raise GraphError(400, "Request_BadRequest", f"Unsupported key '{key}'.")
            low = head.lower()
            if low == "applications":
                return self._applications(method, parts[1:], q, data, claims)
            if low == "serviceprincipals":
                return self._principals(method, parts[1:], q, data, claims)
            if low == "oauth2permissiongrants":
                return self._grants(method, parts[1:], q, data, claims)
            if low == "policies" and parts[1:] == ["authorizationPolicy"] and method == "GET":
                return 200, {"id": "authorizationPolicy", "defaultUserRolePermissions": {
                    "allowedToCreateApps": self.sb.tenant.users_can_register_apps}}
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{head}'.")

    @staticmethod
    def _body(body: bytes) -> dict:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                             "header is set and payload is of valid JSON format.") from None
        if not isinstance(data, dict):
            raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
        return data

    @staticmethod
    def _found(obj, what: str):
        if obj is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{what}' does not exist or one of its "
                             "queried reference-property objects are not present.")
        return _public(obj)

    @staticmethod
    def _filter(q: dict, field: str) -> str | None:
        for name, value in _FILTER_RE.findall(q.get("$filter", "")):
            if name.lower() == field.lower():
                return value
        return None

    # -- applications ---------------------------------------------------------------------
    def _applications(self, method, rest, q, data, claims):
        if not rest:
            if method == "GET":
                self._need(claims, "Application.Read.All")
                app_id = self._filter(q, "appId")
                found = [a for a in self.apps.values() if app_id is None or a["appId"].lower() == app_id.lower()]
                return 200, {"value": [_public(a) for a in found]}
            if method == "POST":
                user = self._need(claims, "Application.ReadWrite.All")
                self._may_create(user)
                return 201, _public(self._create(data, None, user))
        app = self.apps.get(rest[0])
        return self._application(method, app, rest[0], rest[1:], data, claims)

    def _application_key(self, method, key, value, rest, headers, data, claims):
        attr = {"uniquename": "uniqueName", "appid": "appId"}.get(key.lower())
        if attr is None:
            raise GraphError(400, "Request_BadRequest", f"Unsupported key '{key}'.")
        app = self._app_by(attr, value)
        if attr == "uniqueName" and method == "PATCH" and not rest and app is None:
            user = self._need(claims, "Application.ReadWrite.All")
            if "create-if-missing" not in headers.get("Prefer", "").lower():
                self._found(None, value)
            self._may_create(user)
            if not data.get("displayName"):
                raise GraphError(400, "Request_BadRequest", "Property 'displayName' is required.")
            return 201, _public(self._create(data, value, user))
        return self._application(method, app, value, rest, data, claims)

    def _create(self, data: dict, unique: str | None, user) -> dict:
        if "passwordCredentials" in data:     # "Using PATCH to set passwordCredential is not supported" (upsert)
            raise GraphError(400, "Request_BadRequest", "Property 'passwordCredentials' cannot be set here: use "
                             "addPassword.")
        app = {"id": str(uuid.uuid4()), "appId": str(uuid.uuid4()), "uniqueName": unique,
               "displayName": data.get("displayName") or "", "signInAudience": "AzureADMyOrg",
               "isFallbackPublicClient": False, "publicClient": {"redirectUris": []},
               "requiredResourceAccess": [], "keyCredentials": [], "passwordCredentials": [],
               "createdDateTime": _iso(_now()), "_owners": [user.upn] if user is not None else []}
        self._update(app, data)
        self.apps[app["id"]] = app
        self._tenant_app(app).new = True       # its first token requests may meet replication (token_lag)
        return app

    def _update(self, app: dict, data: dict) -> None:
        for name in ("displayName", "signInAudience", "isFallbackPublicClient", "publicClient",
                     "requiredResourceAccess", "notes", "description"):
            if name in data:
                app[name] = data[name]
        if "keyCredentials" in data:
            keys = []
            for k in data["keyCredentials"] or []:
                if not isinstance(k, dict) or not k.get("key"):
                    raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'key' of "
                                     "resource 'KeyCredential'.")
                der = self._der(k["key"])
                keys.append({"keyId": k.get("keyId") or str(uuid.uuid4()), "type": k.get("type") or "AsymmetricX509Cert",
                             "usage": k.get("usage") or "Verify", "displayName": k.get("displayName") or "",
                             "key": k["key"], "customKeyIdentifier": hashlib.sha1(der).hexdigest().upper(),
                             "startDateTime": k.get("startDateTime"), "endDateTime": k.get("endDateTime")})
            app["keyCredentials"] = keys
        if "passwordCredentials" in data:
            raise GraphError(400, "Request_BadRequest", "Property 'passwordCredentials' cannot be updated: use "
                             "addPassword and removePassword.")
        self._sync(app)

    @staticmethod
    def _der(text: str) -> bytes:
        try:
            der = base64.b64decode(text, validate=True)
        except ValueError:
            der = b""
        if der[:1] != b"\x30":
            raise GraphError(400, "Request_BadRequest", "Invalid certificate: the key value is not a base64 X.509 "
                             "certificate (public key only).")
        return der

    def _application(self, method, app, what, rest, data, claims):
        if method == "GET" and not rest:
            self._need(claims, "Application.Read.All")
            out = self._found(app, what)
            if "keycredentials" in self._select.lower():    # the key values only when asked for by $select
                out["keyCredentials"] = [{k: v for k, v in kc.items()} for kc in app["keyCredentials"]]
            return 200, out
        user = self._need(claims, "Application.ReadWrite.All")
        self._found(app, what)
        self._may_manage(user, app)
        action = rest[0].lower() if rest else ""
        if method == "PATCH" and not rest:
            self._update(app, data)
            return 204, None
        if method == "POST" and action == "addpassword":
            return 200, self._add_password(app, data.get("passwordCredential") or {})
        if method == "POST" and action == "removepassword":
            key_id = str(data.get("keyId") or "")
            before = len(app["passwordCredentials"])
            app["passwordCredentials"] = [p for p in app["passwordCredentials"] if p["keyId"] != key_id]
            if len(app["passwordCredentials"]) == before:
                raise GraphError(400, "Request_BadRequest", f"No password credential found with keyId '{key_id}'.")
            ta = self._tenant_app(app)
            ta.secrets = [s for s in ta.secrets if s.secret_id != key_id]
            return 204, None
        if method == "DELETE" and not rest:
            del self.apps[app["id"]]
            self.sb.tenant.apps = [a for a in self.sb.tenant.apps if a.client_id != app["appId"]]
            return 204, None
        raise GraphError(405, "Request_BadRequest", "The method is not allowed on this resource.")

    def _add_password(self, app: dict, cred: dict) -> dict:
        if self.sb.tenant.secrets_blocked:
            raise GraphError(400, "CredentialTypeNotAllowedAsPerAppPolicy", "Password credentials are not allowed "
                             "as per the assigned application management policy.")
        start = _parse_time(cred["startDateTime"], "startDateTime") if cred.get("startDateTime") else _now()
        end = _parse_time(cred["endDateTime"], "endDateTime") if cred.get("endDateTime") else \
            start + timedelta(days=730)
        if end <= start:
            raise GraphError(400, "Request_BadRequest", "Credential end date must be after its start date.")
        text = new_secret_text()
        pc = {"customKeyIdentifier": None, "displayName": cred.get("displayName"), "endDateTime": _iso(end),
              "hint": text[:3], "keyId": str(uuid.uuid4()), "secretText": None, "startDateTime": _iso(start)}
        app["passwordCredentials"].append(pc)
        self._tenant_app(app).secrets.append(Secret(text, pc["keyId"], end.date()))
        return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.passwordCredential",
                **pc, "secretText": text}

    # -- service principals -----------------------------------------------------------------
    def _principals(self, method, rest, q, data, claims):
        if not rest:
            if method == "GET":
                self._need(claims, "Application.Read.All")
                app_id = self._filter(q, "appId")
                found = [s for s in self.sps.values() if app_id is None or s["appId"].lower() == app_id.lower()]
                return 200, {"value": [_public(s) for s in found]}
            if method == "POST":
                user = self._need(claims, "Application.ReadWrite.All")
                app_id = str(data.get("appId") or "")
                self._may_create(user)
                if self.sp_by_app(app_id) is not None:
                    raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue", "The service principal "
                                     f"cannot be created, updated, or restored because the service principal name "
                                     f"{app_id} is already in use.")
                app = self._app_by("appId", app_id)
                if app is None:
                    raise GraphError(400, "Request_BadRequest", f"The appId '{app_id}' of the service principal "
                                     "does not reference a valid application object.")
                self._replicating(app_id, code="NoBackingApplicationObject")
                sp = self._add_sp({"appId": app_id, "displayName": app["displayName"],
                                   "appOwnerOrganizationId": self.sb.tenant.tenant_id})
                return 201, _public(sp)
        sp = self.sps.get(rest[0])
        sub = rest[1].lower() if len(rest) > 1 else ""
        if method == "GET" and not sub:
            self._need(claims, "Application.Read.All")
            return 200, self._found(sp, rest[0])
        if sub == "approleassignedto" and method == "POST":
            return self._assign(sp, rest[0], data, claims)
        if sub in ("approleassignedto", "approleassignments") and method == "GET":
            self._need(claims, "Application.Read.All")
            self._found(sp, rest[0])
            key = "resourceId" if sub == "approleassignedto" else "principalId"
            return 200, {"value": [dict(a) for a in self.assignments if a[key] == sp["id"]]}
        raise GraphError(400, "BadRequest", "Unsupported request.")

    def _assign(self, resource, what, data, claims):
        user = self._need(claims, "AppRoleAssignment.ReadWrite.All", "Application.Read.All")
        self._found(resource, what)
        principal = self.sps.get(str(data.get("principalId") or ""))
        if str(data.get("resourceId") or "") != resource["id"]:
            raise GraphError(400, "Request_BadRequest", "resourceId must be the id of the service principal in "
                             "the request URL.")
        if principal is None:
            self._replicating(str(data.get("principalId")))
            self._found(None, str(data.get("principalId")))
        self._replicating(principal["id"])
        role = next((r for r in resource["appRoles"] if r["id"] == data.get("appRoleId")), None)
        if role is None:
            raise GraphError(400, "Request_BadRequest", "Permission being assigned was not found on application "
                             f"'{resource['displayName']}'.")
        if user is not None:
            admins = GRAPH_ROLE_ADMINS if resource["appId"] == GRAPH_APP_ID else CONSENT_ADMINS
            if not self._roles(user) & admins:
                raise GraphError(403, "Authorization_RequestDenied", DENIED)
        if any(a["principalId"] == principal["id"] and a["resourceId"] == resource["id"]
               and a["appRoleId"] == role["id"] for a in self.assignments):
            raise GraphError(400, "Request_BadRequest", "Permission being assigned already exists on the object.")
        a = {"id": secrets.token_urlsafe(32)[:43], "appRoleId": role["id"], "createdDateTime": _iso(_now()),
             "principalDisplayName": principal["displayName"], "principalId": principal["id"],
             "principalType": "ServicePrincipal", "resourceDisplayName": resource["displayName"],
             "resourceId": resource["id"]}
        self.assignments.append(a)
        app = self.sb.tenant.app(principal["appId"])
        if app is not None:
            app.roles.setdefault(RESOURCE_KEYS.get(resource["appId"], resource["appId"]), set()).add(role["value"])
        return 201, dict(a)

    # -- delegated grants ----------------------------------------------------------------------
    def _grants(self, method, rest, q, data, claims):
        if not rest and method == "GET":      # least privileged: Directory.Read.All (oauth2permissiongrant-list)
            self._need_any(claims, "Directory.Read.All", "DelegatedPermissionGrant.ReadWrite.All",
                           "Application.ReadWrite.All")
            client = self._filter(q, "clientId")
            ctype = self._filter(q, "consentType")
            found = [g for g in self.grants.values() if (client is None or g["clientId"] == client)
                     and (ctype is None or g["consentType"] == ctype)]
            return 200, {"value": [dict(g) for g in found]}
        user = self._need(claims, "DelegatedPermissionGrant.ReadWrite.All")
        if user is not None and not self._roles(user) & CONSENT_ADMINS:
            raise GraphError(403, "Authorization_RequestDenied", DENIED)
        if not rest and method == "POST":
            client, resource = self.sps.get(str(data.get("clientId"))), self.sps.get(str(data.get("resourceId")))
            if client is None:
                self._replicating(str(data.get("clientId")))
            self._found(client, str(data.get("clientId")))
            self._found(resource, str(data.get("resourceId")))
            self._replicating(client["id"])
            if data.get("consentType") not in ("AllPrincipals", "Principal"):
                raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'consentType'.")
            if any(g["clientId"] == client["id"] and g["resourceId"] == resource["id"]
                   and g["consentType"] == data["consentType"] for g in self.grants.values()):
                raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue", "Permission entry already exists.")
            g = {"id": secrets.token_urlsafe(32)[:43], "clientId": client["id"], "consentType": data["consentType"],
                 "principalId": data.get("principalId"), "resourceId": resource["id"],
                 "scope": self._scopes(resource, data.get("scope"))}
            self.grants[g["id"]] = g
            self._apply_grant(g)
            return 201, dict(g)
        g = self.grants.get(rest[0]) if rest else None
        if method == "PATCH" and len(rest) == 1:
            self._found(g, rest[0])
            g["scope"] = self._scopes(self.sps[g["resourceId"]], data.get("scope", g["scope"]))
            self._apply_grant(g)
            return 204, None
        raise GraphError(400, "BadRequest", "Unsupported request.")

    @staticmethod
    def _scopes(resource: dict, scope) -> str:
        names = str(scope or "").split()
        known = {s["value"] for s in resource["oauth2PermissionScopes"]}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise GraphError(400, "Request_BadRequest", f"Invalid scope value(s): {' '.join(unknown)}.")
        return " ".join(names)

    def _apply_grant(self, g: dict) -> None:
        client, resource = self.sps[g["clientId"]], self.sps[g["resourceId"]]
        app = self.sb.tenant.app(client["appId"])
        if app is None:
            return
        key = RESOURCE_KEYS.get(resource["appId"], resource["appId"])
        names = set(g["scope"].split())
        app.scopes[key] = set(names)
        if key == "graph" and names & EXCHANGE_VIA_GRAPH:
            app.scopes.setdefault("exchange", set()).update(names & EXCHANGE_VIA_GRAPH)


def _public(obj: dict) -> dict:
    """The object as Graph returns it: no sandbox-internal keys, no secret values."""
    out = {k: v for k, v in obj.items() if not k.startswith("_")}
    if "passwordCredentials" in out:
        out["passwordCredentials"] = [{**p, "secretText": None} for p in out["passwordCredentials"]]
    if "keyCredentials" in out:
        out["keyCredentials"] = [{**k, "key": None} for k in out["keyCredentials"]]
    return out
