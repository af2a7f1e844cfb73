"""What a config needs from its app registration, and the plan of Graph calls
with the guide step each one does (`mailwizard register --dry-run`).

Permissions come from the guides' tables (``wizard.guide.manifest``) for the
config's flow and protocols; they are looked up BY NAME in the resource service
principal's ``appRoles`` (application) / ``oauth2PermissionScopes`` (delegated)
at run time, never by a hard-coded ID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wizard.config.clouds import GRAPH_CLI_CLIENT_ID
from wizard.guide.manifest import EXCHANGE_ONLINE, MICROSOFT_GRAPH, permissions_for

ADMIN_SCOPES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "DelegatedPermissionGrant.ReadWrite.All")
RESOURCES = {MICROSOFT_GRAPH: "Microsoft Graph", EXCHANGE_ONLINE: "Office 365 Exchange Online"}
MAX_SECRET_MONTHS = 24
DEFAULT_SECRET_MONTHS = 12
SYSTEM_NAMES = {"monitor_g5": "Monitor G5", "efecte_esm": "Efecte ESM O365 Emails", "generic": "Mail system"}

# Guide steps per action: guide 001 (app-only), 002 (password), 004 (Efecte ESM).
_G001 = {"signin": "Azure step 1", "app": "Azure steps 4-7, 10-12, 17-19", "lookup": "Azure steps 13-14",
         "sp": "Azure step 15", "app_roles": "Azure steps 15-16", "grants": "Azure steps 15-16",
         "secret": "Azure steps 20-22", "certificate": "Azure steps 20-22", "config": "Azure step 9",
         "check": "Monitor ERP: Test"}
_G002 = {"signin": "Azure step 1", "app": "Azure steps 4-6, 9-11, 16-18", "lookup": "Azure steps 12-13",
         "sp": "Azure step 14", "app_roles": "Azure steps 14-15", "grants": "Azure steps 14-15",
         "secret": "-", "certificate": "-", "config": "Azure step 8",
         "check": "Monitor ERP: Test"}
_G004 = {"signin": "Register an application 1", "app": "Register an application 4-8, Authentication Settings 1",
         "lookup": "Delegated permission to Microsoft Graph 4-7", "sp": "Admin consent button 1",
         "app_roles": "Admin consent button 1", "grants": "Admin consent button 1", "secret": "-",
         "certificate": "-", "config": "Register an application 8 (Overview: the IDs)", "check": "ESM: test"}


@dataclass(frozen=True)
class Needed:
    resource_app_id: str
    name: str
    kind: str               # "Application" (app role) | "Delegated" (scope)

    @property
    def resource(self) -> str:
        return RESOURCES.get(self.resource_app_id, self.resource_app_id)


def manifest_flow(flow: str) -> str:
    return "client_secret" if flow in ("client_secret", "certificate") else "password"


def protocols(cfg) -> list[str]:
    out = [cfg.outgoing.protocol]
    if cfg.incoming.accounts or cfg.system == "efecte_esm":
        out.append(cfg.incoming.protocol)
    return list(dict.fromkeys(out))


def permissions(cfg) -> list[Needed]:
    """Every permission the config's flow and protocols need (User.Read included, as the portal adds it)."""
    out: list[Needed] = []
    for proto in protocols(cfg):
        for p in permissions_for(manifest_flow(cfg.auth.flow), proto):
            n = Needed(p.resource_app_id, p.name, p.type)
            if n not in out:
                out.append(n)
    return out


def guide_steps(cfg) -> dict[str, str]:
    if cfg.system == "efecte_esm":
        return _G004
    return _G001 if manifest_flow(cfg.auth.flow) == "client_secret" else _G002


def public_client(cfg) -> bool:
    """'Allow public client flows': Yes for the delegated flows (else AADSTS7000218), No for app-only."""
    return manifest_flow(cfg.auth.flow) == "password"


def redirect_uris(cfg) -> list[str]:
    """Guide 001 step 6 sets the native-client redirect URI; guides 002 and 004 leave it empty."""
    if manifest_flow(cfg.auth.flow) == "client_secret" and cfg.system != "efecte_esm":
        return [f"{cfg.cloud.authority.rstrip('/')}/common/oauth2/nativeclient"]
    return []


def display_name(cfg, name: str | None = None) -> str:
    if name:
        return name
    flow = {"client_secret": "client secret", "certificate": "certificate", "password": "user name/password",
            "device_code": "device code"}.get(cfg.auth.flow, cfg.auth.flow)
    return f"{SYSTEM_NAMES.get(cfg.system, cfg.system)} ({flow}, mailwizard)"


def unique_name(display: str) -> str:
    """The app's uniqueName (the upsert key): 'mailwizard-' + the display name as a slug."""
    slug = re.sub(r"[^a-z0-9]+", "-", display.lower()).strip("-")
    return ("mailwizard-" + slug.replace("-mailwizard", ""))[:100]


def credential_kind(cfg) -> str | None:
    return {"client_secret": "secret", "certificate": "certificate"}.get(cfg.auth.flow)


def plan(cfg, *, name: str | None = None, new_secret: bool = False, admin_client_id: str = GRAPH_CLI_CLIENT_ID,
         months: int = DEFAULT_SECRET_MONTHS) -> list[dict]:
    """The Graph calls `register` makes for this config, each with the guide step it does."""
    steps = guide_steps(cfg)
    disp = display_name(cfg, name)
    uname = unique_name(disp)
    perms = permissions(cfg)
    roles = [p for p in perms if p.kind == "Application"]
    scopes = [p for p in perms if p.kind == "Delegated"]
    out = [
        {"id": "signin", "guide_step": steps["signin"],
         "request": f"device code sign-in with client {admin_client_id}, scopes {' '.join(ADMIN_SCOPES)}"},
        {"id": "lookup", "guide_step": steps["lookup"],
         "request": "GET /servicePrincipals(appId='{id}')?$select=id,appId,displayName,appRoles,oauth2PermissionScopes "
                    "for " + ", ".join(sorted({p.resource for p in perms}))},
        {"id": "app", "guide_step": steps["app"],
         "request": f"PATCH /applications(uniqueName='{uname}') + Prefer: create-if-missing "
                    f"(displayName '{disp}', AzureADMyOrg, isFallbackPublicClient={str(public_client(cfg)).lower()}, "
                    f"redirect URIs {redirect_uris(cfg) or 'none'}, requiredResourceAccess: "
                    + ", ".join(f"{p.resource} {p.name} ({p.kind})" for p in perms) + ")"},
        {"id": "sp", "guide_step": steps["sp"], "request": "POST /servicePrincipals {appId} (if missing)"},
    ]
    if roles:
        out.append({"id": "app_roles", "guide_step": steps["app_roles"],
                    "request": "POST /servicePrincipals/{resource}/appRoleAssignedTo for " +
                               ", ".join(f"{p.resource} {p.name}" for p in roles)})
    if scopes:
        out.append({"id": "grants", "guide_step": steps["grants"],
                    "request": "POST /oauth2PermissionGrants consentType AllPrincipals, scope: " +
                               "; ".join(f"{r}: {' '.join(p.name for p in scopes if p.resource == r)}"
                                         for r in dict.fromkeys(p.resource for p in scopes))})
    kind = credential_kind(cfg)
    if kind == "secret":
        out.append({"id": "secret", "guide_step": steps["secret"],
                    "request": f"POST /applications/{{id}}/addPassword (expires in {months} months)" +
                               (" - a new one (--new-secret), the old one removed after the new one passes"
                                if new_secret else " - only when the config's secret is not on the app")})
    elif kind == "certificate":
        out.append({"id": "certificate", "guide_step": steps["certificate"],
                    "request": "PATCH /applications/{id} keyCredentials (+ the config's certificate, public part)"})
    out.append({"id": "config", "guide_step": steps["config"],
                "request": "write tenant ID, client ID" + (", secret and its expiry" if kind == "secret" else
                                                          ", thumbprint and expiry" if kind else "") +
                           " into the config (atomic, 0600)"})
    out.append({"id": "check", "guide_step": steps["check"],
                "request": "the connection test, retried while Entra replicates"})
    return out
