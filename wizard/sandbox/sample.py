"""The sample tenant that `mailwizard demo` and the tests use.

Its values are fake and known to everyone: they only work against the
embedded sandbox on 127.0.0.1.
"""

from __future__ import annotations

from datetime import date, timedelta

from wizard.config.clouds import GRAPH_CLI_CLIENT_ID
from wizard.sandbox.tenant import App, Mailbox, Secret, Tenant, User

TENANT_ID = "5f8d2c1a-7b3e-4a9d-8c6f-1e2d3b4a5c6d"
DOMAIN = "contoso.com"

# App registered as in guides 000/001: client secret, full_access_as_app consented;
# set up completely for the runtime on every protocol: Graph Mail.Send/Read/ReadWrite,
# app-only IMAP/SMTP (IMAP.AccessAsApp, SMTP.SendAsApp, its service principal
# registered in Exchange Online, FullAccess on the sender and incoming mailboxes).
SECRET_APP_ID = "3f6a9c2e-8b1d-4c5e-9a7f-2d4b6e8c0a1f"
SECRET_VALUE = "Qm48Q~Zr5TgVb2NcX7kLp1WsDf9HjY3uEo6RiAaK"
SECRET_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
EXPIRED_SECRET_VALUE = "Vw21Q~Kd8PmNx4BtR6cZs0LyGh3JfU7eWq5TnOiE"
EXPIRED_SECRET_ID = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"

# App for the user name/password flow (guide 002): public client flows = Yes,
# EWS.AccessAsUser.All delegated and consented (and IMAP/SMTP, Graph mail incl. .Shared).
PASSWORD_APP_ID = "9b1c7d3e-5f2a-4e8b-a6c4-3d7f1e9b2c5a"

# App registered but admin consent never granted (guide step 15 skipped).
NO_CONSENT_APP_ID = "c4e8a2f6-1d3b-4c7e-9f5a-8b2d6e0c4a1f"
NO_CONSENT_SECRET_VALUE = "Hx73Q~Lp2WqZ8vNc5RtYb1KmDg4JsF6eUa9OiTwP"

SERVICE_USER = "svc-erp@contoso.com"
SERVICE_PASSWORD = "Sandbox-Passw0rd!"
MFA_USER = "mfa.user@contoso.com"
MFA_PASSWORD = "Sandbox-Passw0rd!"

# Directory roles for `mailwizard register` (sandbox/graph_apps.py): a Global Administrator, a Cloud
# Application Administrator (may consent everything except Microsoft Graph app roles), and the
# service account above, which is no admin.
ADMIN_USER = "admin@contoso.com"
ADMIN_PASSWORD = "Sandbox-Admin-Passw0rd!"
CLOUD_APP_ADMIN = "cloudadmin@contoso.com"
CLOUD_APP_ADMIN_PASSWORD = "Sandbox-Admin-Passw0rd!"
# Microsoft Graph Command Line Tools: the first-party public client `register` signs in with by default
# (multi-tenant; an admin's sign-in consents the scopes it asks for).
BOOTSTRAP_APP_ID = GRAPH_CLI_CLIENT_ID    # Microsoft Graph Command Line Tools, as in every tenant

SENDER = "erp@contoso.com"
RECIPIENT = "test.recipient@contoso.com"
INCOMING = ["orders@contoso.com", "invoices@contoso.com"]
NO_MAILBOX = "nomailbox@contoso.com"


def sample_tenant(today: date | None = None) -> Tenant:
    today = today or date.today()
    return Tenant(
        tenant_id=TENANT_ID,
        domains=[DOMAIN, "contoso.onmicrosoft.com"],
        display_name="Contoso (mailwizard sandbox)",
        apps=[
            App(
                client_id=SECRET_APP_ID,
                name="Monitor G5",
                secrets=[
                    Secret(SECRET_VALUE, SECRET_ID, today + timedelta(days=540)),
                    Secret(EXPIRED_SECRET_VALUE, EXPIRED_SECRET_ID, today - timedelta(days=3)),
                ],
                roles={"exchange": {"full_access_as_app", "IMAP.AccessAsApp", "SMTP.SendAsApp"},
                       "graph": {"Mail.Send", "Mail.Read", "Mail.ReadWrite"}},
                public_client=False,
                exchange_service_principal=True,
            ),
            App(
                client_id=PASSWORD_APP_ID,
                name="Monitor G5 (user name/password)",
                scopes={"exchange": {"EWS.AccessAsUser.All", "IMAP.AccessAsUser.All", "SMTP.Send"},
                        "graph": {"User.Read", "Mail.Send", "Mail.Read", "Mail.ReadWrite", "Mail.Send.Shared",
                                  "Mail.ReadWrite.Shared"}},
                public_client=True,
            ),
            App(
                client_id=NO_CONSENT_APP_ID,
                name="Monitor G5 (consent missing)",
                secrets=[Secret(NO_CONSENT_SECRET_VALUE, "d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f7a", today + timedelta(days=365))],
                public_client=False,
            ),
            App(client_id=BOOTSTRAP_APP_ID, name="Microsoft Graph Command Line Tools", public_client=True,
                multi_tenant=True, consent_at_signin=True),
        ],
        users=[
            User(SERVICE_USER, SERVICE_PASSWORD, "ERP service account"),
            User(MFA_USER, MFA_PASSWORD, "User with MFA", mfa=True),
            User(ADMIN_USER, ADMIN_PASSWORD, "Tenant admin", mfa=True, roles={"Global Administrator"}),
            User(CLOUD_APP_ADMIN, CLOUD_APP_ADMIN_PASSWORD, "Cloud app admin", roles={"Cloud Application Administrator"}),
        ],
        mailboxes=[
            Mailbox(SENDER, send_as={SERVICE_USER}, full_access={SECRET_APP_ID}),
            Mailbox(SERVICE_USER),
            Mailbox(RECIPIENT),
            # The service account reads the shared incoming mailboxes (password flow);
            # the client-secret app opens them over IMAP (FullAccess for its service principal).
            *[Mailbox(a, send_as={SERVICE_USER}, full_access={SECRET_APP_ID}) for a in INCOMING],
        ],
    )


def shaped_config(sb, system: str = "monitor_g5", flow: str = "client_secret", protocol: str | None = None):
    """A working config of the sample tenant on ``sb`` in one shape, as `mailwizard
    sandbox --write-config` writes it. Efecte ESM reads its service account's own
    mailbox (guide 004); the other systems the sample incoming mailboxes."""
    from wizard.config.schema import IncomingAccount
    from wizard.config.mailboxes import reads_own_mailbox, service_mailbox
    cfg = sb.config(flow, protocol=protocol, system=system)
    if reads_own_mailbox(cfg):
        cfg.incoming.accounts = [IncomingAccount(address=service_mailbox(cfg))]
    return cfg


def unregistered_config(sb, system: str = "monitor_g5", flow: str = "client_secret", protocol: str | None = None):
    """A config of one shape before its app is registered: system, flow, protocols, mailboxes and the
    sandbox's endpoints (authority, Graph, CA), but no tenant ID, client ID, secret or certificate
    thumbprint, for `mailwizard register` (the certificate flow keeps the key file's path)."""
    cfg = shaped_config(sb, system, flow, protocol)
    cfg.microsoft.tenant_id = cfg.microsoft.client_id = ""
    cfg.auth.client_secret, cfg.auth.secret_expires = "", None
    cfg.auth.thumbprint, cfg.auth.certificate_expires = "", None
    cfg.endpoints.graph_url = sb.base_url
    return cfg
