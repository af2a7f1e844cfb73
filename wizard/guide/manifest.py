"""The app-manifest snippet and the API permissions for each flow and protocol
(guide 001 Azure step 11, guide 002 Azure step 10).

Checked against Microsoft's page "Authenticate an EWS application by using
OAuth" (MicrosoftDocs/office-developer-exchange-docs,
docs/exchange-web-services/how-to-authenticate-an-ews-application-by-using-oauth.md):
- "Configure for app-only authentication" adds one object inside the
  ``requiredResourceAccess`` brackets: resourceAppId
  00000002-0000-0ff1-ce00-000000000000 with resourceAccess
  [{id dc890d15-9560-4a4c-9b7f-a736ec74ec40, type "Scope"}] (full_access_as_app).
- "Configure for delegated authentication" adds the same resource with
  [{id 3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5, type "Scope"}] (EWS.AccessAsUser.All).
- Neither snippet holds Microsoft Graph User.Read. User.Read (delegated,
  e1fe6dd8-...) is the permission the portal gives every new registration, so
  a fresh manifest already lists it; the guides' example of the whole property
  (001 step 11) and their permission lists (001 step 16, 002 step 15) show it
  next to the Exchange permission. The snippet here is the whole property, so
  it keeps User.Read by default (``include_user_read=False`` drops it).
User.Read e1fe6dd8-... also appears, as a Graph "Scope", in guide 001's example.
Graph application roles Mail.Send (ID as in docs/microsoft-365.md) and Mail.ReadWrite;
several independent permission tables agree, but no Microsoft page was read.
TODO: IMAP.AccessAsUser.All, SMTP.Send, offline_access (delegated, Microsoft
Graph in the portal, guide 004) and IMAP.AccessAsApp / SMTP.SendAsApp
(application, Office 365 Exchange Online): names are from Microsoft's IMAP/SMTP
OAuth page, but their IDs were not found on a Microsoft page, so they have no
``id`` and ``manifest_snippet`` refuses them: add them on the API permissions
page instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

EXCHANGE_ONLINE = "00000002-0000-0ff1-ce00-000000000000"
MICROSOFT_GRAPH = "00000003-0000-0000-c000-000000000000"
API_NAMES = {EXCHANGE_ONLINE: "Office 365 Exchange Online", MICROSOFT_GRAPH: "Microsoft Graph"}
FLOWS = ("client_secret", "password")
PROTOCOLS = ("ews", "graph", "smtp", "imap")


@dataclass(frozen=True)
class Permission:
    api: str            # as the portal names it: "Office 365 Exchange Online"
    name: str           # "full_access_as_app"
    type: str           # "Application" | "Delegated" (the portal's words)
    id: str | None      # GUID; None where not verified (see TODO above)
    resource_app_id: str

    @property
    def manifest_type(self) -> str:
        """The manifest's word for the type: "Scope" (application) or "Scope"."""
        return "Role" if self.type == "Application" else "Scope"

    @property
    def path(self) -> str:
        """Where to find it under API permissions > Add a permission."""
        return f"{self.api} > {self.type} permissions > {self.name}"


def _p(resource: str, name: str, kind: str, pid: str | None = None) -> Permission:
    return Permission(API_NAMES[resource], name, kind, pid, resource)


FULL_ACCESS_AS_APP = _p(EXCHANGE_ONLINE, "full_access_as_app", "Application",
                        "dc890d15-9560-4a4c-9b7f-a736ec74ec40")
EWS_ACCESS_AS_USER = _p(EXCHANGE_ONLINE, "EWS.AccessAsUser.All", "Delegated",
                        "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5")
USER_READ = _p(MICROSOFT_GRAPH, "User.Read", "Delegated", "e1fe6dd8-ba31-4d61-89e7-88639da4683d")
GRAPH_MAIL_SEND = _p(MICROSOFT_GRAPH, "Mail.Send", "Application", "b633e1c5-b582-4048-a93e-9f11b44c7e96")
# Mail.ReadWrite, not Mail.Read: the runtime marks fetched mail read and moves it to "Processed".
# ID agreed by many independent permission tables (no Microsoft page read).
GRAPH_MAIL_READWRITE = _p(MICROSOFT_GRAPH, "Mail.ReadWrite", "Application", "e2a3a72e-5f79-4c64-b1b1-878b674786c9")
OFFLINE_ACCESS = _p(MICROSOFT_GRAPH, "offline_access", "Delegated")

_TABLE: dict[tuple[str, str], tuple[Permission, ...]] = {
    ("client_secret", "ews"): (FULL_ACCESS_AS_APP,),
    ("password", "ews"): (EWS_ACCESS_AS_USER,),
    ("client_secret", "graph"): (GRAPH_MAIL_SEND, GRAPH_MAIL_READWRITE),
    ("password", "graph"): (_p(MICROSOFT_GRAPH, "Mail.Send", "Delegated"),
                            _p(MICROSOFT_GRAPH, "Mail.ReadWrite", "Delegated")),
    ("client_secret", "imap"): (_p(EXCHANGE_ONLINE, "IMAP.AccessAsApp", "Application"),),
    ("client_secret", "smtp"): (_p(EXCHANGE_ONLINE, "SMTP.SendAsApp", "Application"),),
    ("password", "imap"): (_p(MICROSOFT_GRAPH, "IMAP.AccessAsUser.All", "Delegated"), OFFLINE_ACCESS),
    ("password", "smtp"): (_p(MICROSOFT_GRAPH, "SMTP.Send", "Delegated"), OFFLINE_ACCESS),
}


def permissions_for(flow: str, protocol: str = "ews", *, include_user_read: bool = True) -> list[Permission]:
    """The API permissions the app needs, for the "API permissions" step."""
    if flow not in FLOWS:
        raise ValueError(f"unknown flow '{flow}'; expected one of: {', '.join(FLOWS)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol '{protocol}'; expected one of: {', '.join(PROTOCOLS)}")
    perms = list(_TABLE[(flow, protocol)])
    if include_user_read:
        perms.append(USER_READ)
    return perms


def manifest_entries(flow: str, protocol: str = "ews", *, include_user_read: bool = True) -> list[dict]:
    """The ``requiredResourceAccess`` value: one entry per API, Exchange first."""
    perms = permissions_for(flow, protocol, include_user_read=include_user_read)
    missing = [p for p in perms if p.id is None]
    if missing:
        names = "; ".join(p.path for p in missing)
        raise ValueError(f"no verified manifest IDs for {flow} over {protocol}; "
                         f"add these on the API permissions page instead: {names}")
    entries: dict[str, list[dict]] = {}
    for p in perms:
        entries.setdefault(p.resource_app_id, []).append({"id": p.id, "type": p.manifest_type})
    return [{"resourceAppId": res, "resourceAccess": access} for res, access in entries.items()]


def manifest_snippet(flow: str, protocol: str = "ews", *, include_user_read: bool = True) -> str:
    """The ``"requiredResourceAccess": [...]`` property to paste in the Manifest
    page in place of the existing one; 2-space indented JSON."""
    body = json.dumps(manifest_entries(flow, protocol, include_user_read=include_user_read), indent=2)
    return f'"requiredResourceAccess": {body}'
