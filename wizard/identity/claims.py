"""Read an access token's claims and check them against the config.

The token is not verified here (Exchange does that); we only read what it
says, to explain a missing permission before Exchange answers a bare 401/403.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from wizard.config import fields
from wizard.diagnosis.catalogue import Diagnosis, lookup

APP_ROLE = "full_access_as_app"
DELEGATED_SCOPE = "EWS.AccessAsUser.All"
# protocol (and direction for Graph) -> (API, delegated scope, application role)
# Graph incoming needs Mail.ReadWrite, not Mail.Read: the runtime marks each
# fetched message read and moves it to "Processed" (`mailwizard poll` does so
# for every message), and its delegated sign-in asks for Mail.ReadWrite.
PERMISSIONS = {
    "ews": ("exchange", DELEGATED_SCOPE, APP_ROLE),
    "smtp": ("exchange", "SMTP.Send", "SMTP.SendAsApp"),
    "imap": ("exchange", "IMAP.AccessAsUser.All", "IMAP.AccessAsApp"),
    "graph:out": ("graph", "Mail.Send", "Mail.Send"),
    "graph:in": ("graph", "Mail.ReadWrite", "Mail.ReadWrite"),
}
API_NAMES = {"exchange": "Office 365 Exchange Online", "graph": "Microsoft Graph"}
DELEGATED_FLOWS = ("password", "device_code")   # a user signs in: delegated scopes (scp), not roles


@dataclass
class Wanted:
    api: str                  # "exchange" | "graph"
    resource: str             # https://outlook.office365.com, https://graph.microsoft.com, ...
    permissions: list[str]    # what the token must carry (scp or roles)

    def scopes(self, flow: str) -> list[str]:
        """The scopes to request: <resource>/.default app-only, else each delegated scope."""
        if flow in DELEGATED_FLOWS:
            return [f"{self.resource}/{p}" for p in self.permissions]
        return [f"{self.resource}/.default"]


def uses(cfg) -> list[tuple[str, str]]:
    """[(PERMISSIONS key, "out"|"in")]: the outgoing protocol, and the incoming
    one when there are incoming accounts."""
    out = [("graph:out" if cfg.outgoing.protocol == "graph" else cfg.outgoing.protocol, "out")]
    if cfg.incoming.accounts:
        out.append(("graph:in" if cfg.incoming.protocol == "graph" else cfg.incoming.protocol, "in"))
    return [(k, d) for k, d in out if k in PERMISSIONS] or [("ews", "out")]


def api_of(protocol: str) -> str:
    """"graph" for Graph, else "exchange" (EWS, SMTP and IMAP share the Exchange resource)."""
    return "graph" if protocol == "graph" else "exchange"


def apis(cfg) -> list[str]:
    """The APIs the config needs a token for, outgoing first: one token per API."""
    return list(dict.fromkeys(PERMISSIONS[k][0] for k, _ in uses(cfg)))


def wanted(cfg, flow: str | None = None, api: str | None = None, username: str | None = None) -> Wanted:
    """The token one API needs for this config (default: the outgoing
    protocol's API): the permissions of every protocol of the config on that
    API. Delegated Graph also needs the ``.Shared`` scope for a mailbox other
    than the signed-in user's own (as the runtime asks for)."""
    flow = flow or cfg.auth.flow
    keys = uses(cfg)
    api = api or PERMISSIONS[keys[0][0]][0]
    delegated = flow in DELEGATED_FLOWS
    user = (username if username is not None else cfg.auth.username or "").lower()
    perms: list[str] = []

    def add(p):
        if p not in perms:
            perms.append(p)
    for k, direction in keys:
        k_api, scope, role = PERMISSIONS[k]
        if k_api != api:
            continue
        add(scope if delegated else role)
        if delegated and api == "graph" and user:
            others = [cfg.outgoing.sender] if direction == "out" else [a.address for a in cfg.incoming.accounts]
            if any(a and a.lower() != user for a in others):
                add(scope + ".Shared")
    if not perms:       # an API the config does not use: what a sender on it needs
        _, scope, role = PERMISSIONS["graph:out" if api == "graph" else "ews"]
        perms.append(scope if delegated else role)
    # The token's audience is the cloud's own resource: an [endpoints] override
    # changes where requests go, not which API the token is for.
    resource = cfg.cloud.exchange_resource if api == "exchange" else cfg.cloud.graph_url
    return Wanted(api, resource.rstrip("/"), perms)


@dataclass
class Finding:
    status: str            # "fail" | "warn"
    diagnosis: Diagnosis

    @property
    def code(self) -> str:
        return self.diagnosis.code


def decode_jwt(token: str) -> dict:
    """The payload of a JWT, unverified (PyJWT). ValueError if it is not one."""
    import jwt      # PyJWT, installed with msal; imported when a token is read
    try:
        data = jwt.decode(token or "", options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ValueError(f"not a JWT ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("JWT payload is not a JSON object")
    return data


_API_IDS = {"exchange": "00000002-0000-0ff1-ce00-000000000000", "graph": "00000003-0000-0000-c000-000000000000"}


def _aud_ok(aud, want: Wanted) -> bool:
    auds = aud if isinstance(aud, list) else [aud]
    ok = {want.resource.lower(), _API_IDS[want.api]}
    return any(str(a).rstrip("/").lower() in ok for a in auds)


def check_claims(claims: dict, cfg, flow: str | None = None, *, now: float | None = None,
                 username: str | None = None, api: str | None = None) -> list[Finding]:
    """Problems with the token for this config (for ``api``, default the
    outgoing protocol's); an empty list means it looks right."""
    flow = flow or cfg.auth.flow
    now = time.time() if now is None else now
    out: list[Finding] = []
    want = wanted(cfg, flow, api=api, username=username)
    name = API_NAMES[want.api]
    kind = "Delegated" if flow in DELEGATED_FLOWS else "Application"

    def fail(code, status="fail", **values):
        out.append(Finding(status, lookup(code, cfg=cfg, flow=flow, resource=want.resource, api=name, **values)))

    def permissions(have: set[str], code: str) -> None:
        missing = [p for p in want.permissions if p.lower() not in have]
        # Consented as the older advice said (Mail.Read): reading works, marking processed does not.
        readwrite = "Mail.ReadWrite" in missing and "mail.read" in have
        if readwrite:
            missing.remove("Mail.ReadWrite")
        if missing:
            fail(code, permission=", ".join(missing))
        if readwrite:
            fail("claims.readwrite", permission="Mail.ReadWrite", kind=kind)

    if not _aud_ok(claims.get("aud"), want):
        fail("claims.aud", service=claims.get("aud") or "no audience")
    tenant = fields.normalise_guid(cfg.microsoft.tenant_id or "")
    if tenant and str(claims.get("tid", "")).lower() != tenant:
        fail("claims.tid")
    if flow in DELEGATED_FLOWS:
        permissions({s.lower() for s in str(claims.get("scp") or "").split()}, "claims.scp")
        user = username or cfg.auth.username
        upn = str(claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username") or "")
        if user and upn and upn.lower() != user.lower():
            fail("claims.upn", "warn", service=upn, username=user)
    else:
        permissions({str(r).lower() for r in claims.get("roles") or []}, "claims.roles")
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and exp <= now:
        fail("claims.exp")
    return out


def granted(claims: dict) -> str:
    """'roles: a, b' or 'scp: x y' for a summary line."""
    if claims.get("roles"):
        return "roles: " + ", ".join(map(str, claims["roles"]))
    if claims.get("scp"):
        return "scp: " + str(claims["scp"])
    return "no permissions"
