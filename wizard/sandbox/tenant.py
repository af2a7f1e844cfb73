"""The description of a sandbox tenant: apps, secrets, consent, users, mailboxes.

A plain data model; the sandbox server (``server.py``) serves the identity
platform and EWS from it, and tests build their own tenants from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass
class Secret:
    value: str                      # what the portal shows once under "Value"
    secret_id: str                  # the GUID in the "Secret ID" column
    expires: date


@dataclass
class Certificate:
    """A certificate uploaded to the app (Certificates & secrets > Certificates):
    the public part only, as the portal keeps it. ``der`` is the X.509 certificate
    in DER; the thumbprints are what the portal shows (SHA-1) and what MSAL sends
    (``x5t`` / ``x5t#S256``). Used by ``sandbox/assertion.py``."""
    der: bytes
    description: str = ""

    @property
    def thumbprint(self) -> str:
        import hashlib
        return hashlib.sha1(self.der).hexdigest().upper()

    @property
    def thumbprint_sha256(self) -> str:
        import hashlib
        return hashlib.sha256(self.der).hexdigest().upper()


@dataclass
class App:
    client_id: str
    name: str
    secrets: list[Secret] = field(default_factory=list)
    # Application permissions with admin consent granted, as they appear in a
    # token's `roles` claim, per resource ("exchange" or "graph").
    roles: dict[str, set[str]] = field(default_factory=dict)
    # Delegated permissions with consent granted, as in the `scp` claim.
    scopes: dict[str, set[str]] = field(default_factory=dict)
    public_client: bool = False     # "Allow public client flows" (Authentication page)
    # Seconds after the registration during which EWS still answers 403
    # (the guides' "Possible errors": permissions not yet propagated).
    propagation_delay: float = 0.0
    # App-only IMAP/SMTP: the app's service principal is registered in Exchange
    # Online (New-ServicePrincipal); the token also needs the IMAP.AccessAsApp /
    # SMTP.SendAsApp role and the mailbox a FullAccess grant (Mailbox.full_access).
    exchange_service_principal: bool = False
    # Certificate credentials (client assertions signed with the key of one of these).
    certificates: list[Certificate] = field(default_factory=list)
    # Multi-tenant apps (Microsoft's own, e.g. Microsoft Graph Command Line Tools) sign in at
    # /organizations; single-tenant ones get AADSTS50194 there.
    multi_tenant: bool = False
    # The bootstrap client's refusals: its service principal disabled in the tenant
    # (AADSTS7000112), user assignment required and the user not assigned (AADSTS50105),
    # and, for a first-party client, the scopes it is preauthorized for (others: AADSTS65002).
    disabled: bool = False
    assigned_users: set[str] | None = None
    preauthorized: set[str] | None = None
    # Delegated consent at sign-in: an admin's device-code sign-in consents the scopes asked
    # (for the organization); a user who may not consent gets AADSTS90094.
    consent_at_signin: bool = False
    new: bool = False               # registered through Graph here: subject to Tenant.token_lag


@dataclass
class User:
    upn: str
    password: str
    display_name: str = ""
    mfa: bool = False               # MFA required: ROPC gets AADSTS50076
    disabled: bool = False          # AADSTS50057
    conditional_access_block: bool = False  # AADSTS53003
    # Entra ID directory roles ("Global Administrator", "Cloud Application Administrator",
    # "Privileged Role Administrator", "Application Administrator", "Application Developer").
    roles: set[str] = field(default_factory=set)


@dataclass
class Message:
    id: str
    sender: str
    to: list[str]
    subject: str
    body: str
    received: str                   # ISO 8601, UTC
    attachments: list[dict] = field(default_factory=list)  # {"name", "content_type", "content" (bytes)}
    is_read: bool = False
    cc: list[str] = field(default_factory=list)
    body_type: str = "text"         # "text" or "html" (Graph body.contentType)
    internet_message_id: str = ""   # "<...@...>"; empty: derived from id when shown
    flags: set[str] = field(default_factory=set)   # IMAP flags besides \Seen (is_read), e.g. \Deleted
    uid: int = 0                    # IMAP UID in its folder; 0: not yet assigned


@dataclass
class Mailbox:
    address: str
    inbox: list[Message] = field(default_factory=list)
    sent: list[Message] = field(default_factory=list)
    # Addresses (app client IDs or user UPNs) allowed to send as this mailbox
    # besides the mailbox's own user; app-only with full_access_as_app may
    # impersonate any mailbox unless ``scoped_out_apps`` lists it.
    send_as: set[str] = field(default_factory=set)
    scoped_out_apps: set[str] = field(default_factory=set)
    # FullAccess (Add-MailboxPermission): app client IDs (their service principals)
    # or user UPNs that may open this mailbox over IMAP/SMTP/Graph (shared use).
    full_access: set[str] = field(default_factory=set)
    # Set-CASMailbox -SmtpClientAuthenticationDisabled: None follows the tenant.
    smtp_auth_disabled: bool | None = None
    imap_disabled: bool = False     # Set-CASMailbox -ImapEnabled $false
    # Folders besides inbox and sent, by display name ("Processed", "Deleted Items").
    folders: dict[str, list[Message]] = field(default_factory=dict)
    # EWS FolderClass of those folders by display name; missing: "IPF.Note", "": none
    # (EWS CreateFolder of a plain <t:Folder> without a class).
    folder_classes: dict[str, str] = field(default_factory=dict)
    uid_next: int = 1               # next IMAP UID (one counter for all folders)


@dataclass
class Tenant:
    tenant_id: str
    domains: list[str]
    display_name: str = "Sandbox tenant"
    apps: list[App] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    mailboxes: list[Mailbox] = field(default_factory=list)
    # EWS retirement: apps not in this set get 403 + X-EWS-Policy-Reason when
    # ews_blocked is True (Set-OrganizationConfig -EWSEnabled / -EwsAllowedAppIDs).
    ews_blocked: bool = False
    ews_allowed_app_ids: set[str] = field(default_factory=set)
    # Set-TransportConfig -SmtpClientAuthenticationDisabled (mailboxes may override).
    smtp_auth_disabled: bool = False
    # Entra ID > User settings > "Users can register applications" (authorizationPolicy
    # defaultUserRolePermissions.allowedToCreateApps; Yes by default).
    users_can_register_apps: bool = True
    # Tenant app management policy: passwordAddition restricted (no new client secrets).
    secrets_blocked: bool = False
    # Replication delay (Entra is eventually consistent): the next N Graph calls on a
    # just-created object fail (sandbox/graph_apps.py), and the next N token requests of a
    # newly registered app get AADSTS700016.
    replication_lag: int = 0
    token_lag: int = 0

    def app(self, client_id: str) -> App | None:
        return next((a for a in self.apps if a.client_id.lower() == client_id.lower()), None)

    def user(self, upn: str) -> User | None:
        return next((u for u in self.users if u.upn.lower() == upn.lower()), None)

    def mailbox(self, address: str) -> Mailbox | None:
        return next((m for m in self.mailboxes if m.address.lower() == address.lower()), None)

    def knows(self, tenant: str) -> bool:
        t = tenant.lower()
        return t == self.tenant_id.lower() or t in (d.lower() for d in self.domains)
