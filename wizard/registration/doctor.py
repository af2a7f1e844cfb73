"""`mailwizard doctor`: read an existing app registration through Microsoft
Graph and compare it with what the config needs.

Read with an admin's device-code sign-in (Application.Read.All,
Directory.Read.All) or, for the app-only flows, with the app's own token when
it holds Application.Read.All. Each finding has a severity ("fail", "warn" or
"info"), a cause, a fix and the guide step; "info" findings (the other
credentials and their dates) do not count as something wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from wizard.registration import needs
from wizard.registration.graph import Graph, GraphCallError, key

READ_SCOPES = ("Application.Read.All", "Directory.Read.All")
EXPIRY_WARN_DAYS = 30


@dataclass
class Finding:
    id: str
    severity: str                   # fail | warn | info
    cause: str
    fix: str
    guide_step: str | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "severity": self.severity, "cause": self.cause, "fix": self.fix,
                "guide_step": self.guide_step}


@dataclass
class Report:
    client_id: str
    findings: list[Finding] = field(default_factory=list)
    app: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(f.severity in ("fail", "warn") for f in self.findings)

    def to_json(self) -> dict:
        return {"ok": self.ok, "client_id": self.client_id, "app": self.app,
                "findings": [f.to_json() for f in self.findings]}


def read_scopes(cfg) -> list[str]:
    return [f"{cfg.cloud.graph_url.rstrip('/')}/{s}" for s in READ_SCOPES]


def app_token(cfg):
    """The app's own Graph token when it may read app registrations (Application.Read.All), else None."""
    if not cfg.auth.app_only:
        return None
    from wizard.identity.msal_common import AuthError
    from wizard.identity.signin import acquire_token
    try:
        token = acquire_token(cfg, api="graph", resource=cfg.cloud.graph_url)
    except (AuthError, ValueError):
        return None
    roles = set(token.claims.get("roles") or [])
    return token if roles & {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"} else None


def diagnose(cfg, token, *, today: date | None = None, session=None) -> Report:
    """The findings for ``cfg``'s registration, read with ``token`` (a TokenResult)."""
    today = today or date.today()
    steps = needs.guide_steps(cfg)
    graph = Graph(cfg, token.access_token, session=session, retries=0)
    report = Report(cfg.microsoft.client_id)
    add = report.findings.append
    try:
        try:
            app = graph.call("GET", f"/applications{key('appId', cfg.microsoft.client_id)}")
        except GraphCallError as exc:
            if exc.status == 404:
                add(Finding("app.missing", "fail", f"No app registration with the client ID "
                            f"{cfg.microsoft.client_id} exists in tenant {cfg.microsoft.tenant_id}.",
                            "Check microsoft.client_id (the Application (client) ID on the app's Overview page) and "
                            "the tenant, or create the app with `mailwizard register`.", steps["config"]))
                return report
            raise
        report.app = {"displayName": app.get("displayName"), "id": app.get("id"),
                      "signInAudience": app.get("signInAudience"),
                      "isFallbackPublicClient": app.get("isFallbackPublicClient")}
        _settings(cfg, app, steps, add)
        resources = _resources(graph, cfg)
        _requested(cfg, app, resources, steps, add)
        _consent(cfg, graph, app, resources, steps, add)
        _credentials(cfg, graph, app, steps, add, today)
    finally:
        graph.close()
    return report


def _settings(cfg, app, steps, add) -> None:
    if app.get("signInAudience") != "AzureADMyOrg":
        add(Finding("app.audience", "warn", f"The app accepts accounts beyond this tenant "
                    f"(signInAudience {app.get('signInAudience')}); the guides register it single tenant.",
                    "In Authentication > Supported account types choose 'this organizational directory only'.",
                    steps["app"]))
    public = bool(app.get("isFallbackPublicClient"))
    if public != needs.public_client(cfg):
        if needs.public_client(cfg):
            add(Finding("app.public_client", "fail", f"'Allow public client flows' is No, but the {cfg.auth.flow} "
                        "flow signs in as a public client (AADSTS7000218).",
                        "In Authentication > Advanced settings set 'Allow public client flows' to Yes and save "
                        "(or run `mailwizard register`).", steps["app"]))
        else:
            add(Finding("app.public_client", "warn", "'Allow public client flows' is Yes, but the app-only flow "
                        "does not need it; it lets user sign-ins without a secret reach this app.",
                        "In Authentication > Advanced settings set 'Allow public client flows' to No and save.",
                        steps["app"]))
    want = needs.redirect_uris(cfg)
    have = (app.get("publicClient") or {}).get("redirectUris") or []
    missing = [u for u in want if u not in have]
    if missing:
        add(Finding("app.redirect_uri", "info", f"The guide's redirect URI {missing[0]} is not registered "
                    "(mailwizard's own flows need none).", "Add it under Authentication > Mobile and desktop "
                    "applications if the system signs in through a browser.", steps["app"]))


def _resources(graph, cfg) -> dict:
    out = {}
    for res_id in dict.fromkeys(p.resource_app_id for p in needs.permissions(cfg)):
        out[res_id] = graph.call("GET", f"/servicePrincipals{key('appId', res_id)}"
                                 "?$select=id,appId,displayName,appRoles,oauth2PermissionScopes")
    return out


def _perm_id(resources, p) -> str | None:
    sp = resources.get(p.resource_app_id) or {}
    pool = sp.get("appRoles") if p.kind == "Application" else sp.get("oauth2PermissionScopes")
    return next((x["id"] for x in pool or [] if x.get("value") == p.name), None)


def _requested(cfg, app, resources, steps, add) -> None:
    rra = {r.get("resourceAppId"): r.get("resourceAccess") or [] for r in app.get("requiredResourceAccess") or []}
    for p in needs.permissions(cfg):
        pid = _perm_id(resources, p)
        kind = "Role" if p.kind == "Application" else "Scope"
        if not any(a.get("id") == pid and a.get("type") == kind for a in rra.get(p.resource_app_id, [])):
            add(Finding(f"permission:{p.name}", "fail" if p.name != "User.Read" else "warn",
                        f"The app does not ask for {p.resource} > {p.name} ({p.kind}), which "
                        f"{cfg.auth.flow} over {' + '.join(needs.protocols(cfg))} needs.",
                        f"API permissions > Add a permission > {p.resource} > {p.kind} permissions > {p.name}, "
                        "then Grant admin consent (or run `mailwizard register`).", steps["lookup"]))


def _consent(cfg, graph, app, resources, steps, add) -> None:
    sps = graph.call("GET", f"/servicePrincipals?$filter=appId eq '{app['appId']}'").get("value") or []
    if not sps:
        add(Finding("consent.no_service_principal", "fail", "The app has no service principal (enterprise "
                    "application) in the tenant: admin consent was never granted.",
                    "Click 'Grant admin consent' on API permissions (or run `mailwizard register`).", steps["grants"]))
        return
    sp = sps[0]
    roles = graph.call("GET", f"/servicePrincipals/{sp['id']}/appRoleAssignments").get("value") or []
    grants = graph.call("GET", f"/oauth2PermissionGrants?$filter=clientId eq '{sp['id']}' and consentType eq "
                               "'AllPrincipals'").get("value") or []
    held_roles = {(a.get("resourceId"), a.get("appRoleId")) for a in roles}
    for p in needs.permissions(cfg):
        res = resources.get(p.resource_app_id) or {}
        pid = _perm_id(resources, p)
        if p.kind == "Application":
            ok = (res.get("id"), pid) in held_roles
        else:
            ok = any(g.get("resourceId") == res.get("id") and p.name in str(g.get("scope") or "").split()
                     for g in grants)
        if not ok:
            add(Finding(f"consent:{p.name}", "fail", f"Admin consent for {p.resource} > {p.name} ({p.kind}) is not "
                        "granted: the token will lack it.", "Click 'Grant admin consent for <your organization>' on "
                        "API permissions and answer Yes (or run `mailwizard register`).",
                        steps["app_roles" if p.kind == "Application" else "grants"]))
    if not sp.get("accountEnabled", True):
        add(Finding("app.disabled", "fail", "The app's enterprise application is disabled (AADSTS7000112).",
                    "Enterprise applications > the app > Properties > Enabled for users to sign-in: Yes.", None))


def _when(text) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def _credentials(cfg, graph, app, steps, add, today: date) -> None:
    full = graph.call("GET", f"/applications/{app['id']}?$select=id,passwordCredentials,keyCredentials")
    secrets = full.get("passwordCredentials") or []
    keys = full.get("keyCredentials") or []
    ours_secret = ours_key = None
    if cfg.auth.flow == "client_secret":
        from wizard.check.rotate import current_secret
        value = current_secret(cfg) or ""
        ours_secret = next((p for p in secrets if value and p.get("hint") == value[:3]), None)
        if ours_secret is None:
            add(Finding("secret.not_on_app", "fail", "The config's client secret is not among the app's secrets "
                        f"(hints on the app: {', '.join(p.get('hint') or '?' for p in secrets) or 'none'}): it was "
                        "deleted, belongs to another app, or the Secret ID was pasted instead of its Value "
                        "(AADSTS7000215).", "Create a new secret and put its Value into the config "
                        "(`mailwizard register --new-secret`, or `mailwizard rotate`).", steps["secret"]))
        else:
            _expiry(add, "secret", ours_secret, cfg.auth.secret_expires, today, steps["secret"])
    if cfg.auth.flow == "certificate":
        import base64
        thumb = (cfg.auth.thumbprint or "").upper()
        b64 = base64.b64encode(bytes.fromhex(thumb)).decode() if thumb else ""
        ours_key = next((k for k in keys if thumb and str(k.get("customKeyIdentifier") or "") in (thumb, b64)), None)
        if ours_key is None:
            add(Finding("certificate.not_on_app", "fail", f"The certificate with thumbprint {thumb or '(none)'} "
                        "is not uploaded to the app (AADSTS700027).", "Upload its .cer on Certificates & secrets "
                        "(or run `mailwizard register`).", steps["certificate"]))
        else:
            _expiry(add, "certificate", ours_key, cfg.auth.certificate_expires, today, steps["certificate"])
    for cred in secrets + keys:
        if cred is ours_secret or cred is ours_key:
            continue
        what = (f"secret {cred.get('hint')}..." if "hint" in cred else
                f"certificate {cred.get('displayName') or cred.get('customKeyIdentifier')}")
        end = _when(cred.get("endDateTime"))
        expired = end is not None and end.date() < today
        add(Finding(f"credential:{cred.get('keyId')}", "info", f"The app also holds {what}, "
                    + (f"expired on {end.date().isoformat()}." if expired else
                       f"valid until {end.date().isoformat() if end else '?'}."),
                    "Remove it on Certificates & secrets if nothing uses it any more." if expired else
                    "Keep it if another system uses it; otherwise remove it.", steps["secret"]))


def _expiry(add, what: str, cred: dict, in_config: date | None, today: date, step: str) -> None:
    end = _when(cred.get("endDateTime"))
    if end is None:
        return
    left = (end.date() - today).days
    if left < 0:
        add(Finding(f"{what}.expired", "fail", f"The config's {what} expired on {end.date().isoformat()}.",
                    f"Create a new {what} (`mailwizard register --new-secret` or `mailwizard rotate`).", step))
    elif left <= EXPIRY_WARN_DAYS:
        add(Finding(f"{what}.expiring", "warn", f"The config's {what} expires in {left} days "
                    f"({end.date().isoformat()}).", "Replace it before then (`mailwizard register --new-secret`).",
                    step))
    if in_config is not None and in_config != end.date():
        add(Finding(f"{what}.expiry_in_config", "warn", f"The config says the {what} expires on "
                    f"{in_config.isoformat()}, the app says {end.date().isoformat()}.",
                    "Correct the expiry date in the config so the warnings come at the right time.", step))
