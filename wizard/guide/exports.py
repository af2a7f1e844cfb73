"""Documents made from a saved config, for the people who must act on it.

- ``settings_sheet(cfg)``: what to type into the consuming system, with the
  system's own field names: Monitor ERP G5 (guides 001-003: System settings >
  System overall, Settings for incoming e-mail, per-user settings, the WEBSHOP
  user and the webshop's E-mail method) and Efecte ESM (guide 004: the platform
  settings lines). Secrets are masked unless ``reveal=True``.
- ``admin_runbook(cfg)``: the Exchange Online PowerShell the tenant admin runs
  for this setup, with the real client ID filled in, and the app manifest. It
  never holds a secret.
- ``manifest_text(cfg)``: the ``requiredResourceAccess`` snippet for the
  Manifest page (wizard.guide.manifest).

Field names are copied from the guides' text and screenshots; keep them
exact, the user searches the product's screens for them.
"""

from __future__ import annotations

from datetime import date

# -- the consuming systems' own words ------------------------------------------

G5_EMAIL_METHOD = "Server based, via Microsoft Exchange Online"
G5_FLOWS = {"client_secret": "Client secret", "password": "User name/Password"}
G5_SERVICE = "Exchange Online"
G5_WEBSHOP_METHOD = "According to user settings"

ESM_STORE_ENABLED = "mail.store.oauth.enabled"
ESM_TRANSPORT_ENABLED = "mail.transport.oauth.enabled"
ESM_AUTHORIZE = "mail.oauth.authorize.endpoint"
ESM_CLIENT_ID = "mail.oauth.client.id"
ESM_SCOPES = "mail.oauth.scopes"


def _secret(value: str, reveal: bool, password: bool = False, field: str = "auth.password") -> str:
    """A secret as the sheet shows it: masked, or (reveal) its value. A reference
    (env:NAME, file:PATH) says where the value is; revealing one that cannot be
    resolved raises ConfigError naming the field and the variable or file."""
    from wizard.config.schema import resolve_secret
    from wizard.config.fields import mask_password, mask_secret
    if not value:
        return "(not set)"
    if reveal:
        return resolve_secret(value, field)
    source = reference_source(value)
    if source:
        return f"(not shown: in {source}; `mailwizard export sheet --reveal` prints it)"
    return mask_password(value) if password else mask_secret(value)


def reference_source(value: str) -> str | None:
    """'environment variable ERP_SECRET' for 'env:ERP_SECRET', 'file
    /etc/erp/secret' for 'file:/etc/erp/secret'; None for a literal value."""
    if value.startswith("env:"):
        return f"environment variable {value[4:]}"
    if value.startswith("file:"):
        return f"file {value[5:]}"
    return None


def _rows(rows: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    width = max((len(k) for k, _ in rows), default=0)
    return [f"{indent}{k:<{width}}  {v}" for k, v in rows]


def _heading(text: str) -> list[str]:
    return ["", text, "-" * len(text)]


def _retirement_note(cfg, today: date | None) -> list[str]:
    from wizard.guide.steps import load_guide
    from wizard.guide.retirement import ERROR, OK, ews_status
    level, message = ews_status(cfg, today)
    if level == OK:
        return []
    if level == ERROR:
        return ["", f"ERROR (EWS retirement): {message}"]
    sentence = load_guide().ews_retirement.sentence(today or date.today())
    return ["", f"NOTE (EWS retirement): {sentence} The tenant admin must allow this app "
                f"({cfg.microsoft.client_id}) for EWS: see `mailwizard export runbook`."]


# -- Monitor ERP G5 ------------------------------------------------------------

def _g5_flow(cfg) -> str:
    return G5_FLOWS.get(cfg.auth.flow, cfg.auth.flow)


def _monitor_g5(cfg, reveal: bool, today: date | None) -> list[str]:
    from wizard.config.schema import ALL_FLOWS
    m, a, o, i = cfg.microsoft, cfg.auth, cfg.outgoing, cfg.incoming
    flow = _g5_flow(cfg)
    secret = _secret(a.client_secret, reveal, field="auth.client_secret") if a.flow == "client_secret" else "(leave empty)"
    out = ["Monitor ERP G5: e-mail settings (guides 001-003)"]
    if a.flow not in G5_FLOWS:
        out += ["", f"WARNING: Monitor G5's Authentication flow offers only {' and '.join(G5_FLOWS.values())}; "
                    f"this config uses {ALL_FLOWS.get(a.flow, a.flow)}, which Monitor G5 cannot use."]

    from wizard.config.endpoints import mail_endpoint
    out_host, out_port = (o.server, o.port) if o.protocol == "graph" else mail_endpoint(cfg, "out")[1:]
    out += _heading("System settings > System overall > E-mail")
    out += _rows([
        ("E-mail method", G5_EMAIL_METHOD),
        ("Server address (Exchange/SMTP)", out_host),
        ("Port (Exchange/SMTP)", str(out_port)),       # SMTP left at 443 ("not set"): the 587 the runtime uses
    ])
    out += ["", "  Microsoft Entra ID (Azure Exchange/SharePoint)"]
    out += _rows([
        ("Application (client) ID", m.client_id or "(not set)"),
        ("Directory (tenant) ID", m.tenant_id or "(not set)"),
        ("Authentication flow", flow),
        ("Client secret", secret),
    ])
    out += ["", "  Test: click the green icon next to Server address (Exchange/SMTP); in Check e-mail settings:"]
    test_rows = [("E-mail method", G5_EMAIL_METHOD),
                 ("Recipient", o.test_recipient or "(any address you can read)"),
                 ("Sender", o.sender or "(not set)")]
    if a.flow == "password":
        test_rows += [("User name (Exchange)", a.username or "(not set)"),
                      ("Password (Exchange)", _secret(a.password, reveal, password=True))]
    out += _rows(test_rows, "    ")
    out += ["    Press Test: the Result box shows \"OK!\" (a 403 right after setup: wait a moment and test again)."]

    _proto, in_host, in_port = mail_endpoint(cfg, "in")     # the server and port the runtime reads from
    out += _heading("Settings for incoming e-mail")
    out += ["  Server settings"]
    out += _rows([
        ("Service", G5_SERVICE),
        ("Server name", in_host),
        ("Port", str(in_port)),
        ("Polling interval", f"{i.poll_minutes} min"),
        ("Application (client) ID", m.client_id or "(not set)"),
        ("Directory (tenant) ID", m.tenant_id or "(not set)"),
        ("Authentication flow", flow),
        ("Client secret", secret),
    ])
    out += ["", "  E-mail accounts (plus icon or F5 adds a row; the green icon validates it)"]
    if not i.accounts:
        out += ["    (none in the config)"]
    for n, acc in enumerate(i.accounts, 1):
        rows = [("E-mail", acc.address)]
        if a.flow == "password":
            rows += [("User name", acc.username or a.username or "(not set)"),
                     ("Password", _secret(acc.password or a.password, reveal, password=True))]
        rows += [("Type", ", ".join(acc.types) or "(select the Types that apply, e.g. Monitor-to-Monitor)"),
                 ("Available", "Available to all" if acc.available_to in ("", "all") else acc.available_to)]
        out += [f"    account {n}"] + _rows(rows, "      ")
    out += ["  Press Save, then close the procedure."]

    out += _heading("Users: per-user e-mail settings (Monitor G5 22.6)")
    out += ["  A user's own e-mail settings override the system settings: adjust them too."]
    webshop = [u for u in cfg.users if u.name.upper() == "WEBSHOP"]
    for u in cfg.users:
        rows = [("E-mail method", G5_EMAIL_METHOD)]
        if u.flow == "password" or a.flow == "password":
            rows += [("User name (Exchange)", u.username or "(not set)"),
                     ("Password (Exchange)", _secret(u.password, reveal, password=True))]
        if u.sender:
            rows.append(("(sends as)", u.sender))
        out += [f"    user {u.name}"] + _rows(rows, "      ")
    if not cfg.users:
        out += ["    (no per-user settings in the config)"]
    out += ["", "  With the Webshop option, the WEBSHOP user (used by the webshop) needs:"]
    ws_rows = [("E-mail method", G5_EMAIL_METHOD)]
    if a.flow == "password":
        w = webshop[0] if webshop else None
        ws_rows += [("User name (Exchange)", (w.username if w else "") or "(the Exchange account's user name)"),
                    ("Password (Exchange)", _secret(w.password, reveal, password=True) if w and w.password else "(its password)")]
    out += _rows(ws_rows, "      ")
    out += _heading("Webshop – Administration (options for Monitor G5)")
    out += _rows([("E-mail method", f"{G5_WEBSHOP_METHOD} in Monitor G5")])
    return out


# -- Efecte ESM ----------------------------------------------------------------

def esm_lines(cfg) -> list[tuple[str, str]]:
    """The platform settings (key, value) of guide 004, for this tenant and cloud."""
    from wizard.config.clouds import resolve
    e = resolve(cfg)
    tenant = cfg.microsoft.tenant_id or "{tenantID}"
    host = e.exchange_host
    return [
        (ESM_STORE_ENABLED, "true"),
        (ESM_TRANSPORT_ENABLED, "true"),
        (ESM_AUTHORIZE, f"{e.authority}/{tenant}/oauth2/v2.0/authorize"),
        (ESM_CLIENT_ID, cfg.microsoft.client_id or "{clientId}"),
        (ESM_SCOPES, f"https://{host}/IMAP.AccessAsUser.All,https://{host}/SMTP.Send"),
    ]


def _efecte_esm(cfg, reveal: bool, today: date | None) -> list[str]:
    from wizard.config.clouds import IMAP_PORT, SMTP_PORT, resolve
    e = resolve(cfg)
    a, i = cfg.auth, cfg.incoming
    out = ["Efecte ESM: OAuth2 for IMAP and SMTP (guide 004, ESM 2021.1 or later)"]
    if a.flow not in ("password", "device_code"):
        out += ["", "WARNING: ESM uses delegated OAuth2 (user name and password, the app set to public client: "
                    "Allow public client flows = Yes, else AADSTS7000218); this config uses app-only "
                    f"flow {a.flow}, which these lines do not cover."]
    out += _heading("Maintenance > System settings > Edit Platform Settings")
    out += ["  Find each setting with the filter field and set it:", ""]
    out += [f"  {k} = {v}" for k, v in esm_lines(cfg)]
    out += ["", "  Mailtasks with their own connection settings need the same lines in each mailtask's properties."]
    out += _heading("The basic mail settings these lines add to (ESM's own fields)")
    out += _rows([
        ("IMAP server", f"{i.server or e.imap_host}:{i.port or IMAP_PORT} (SSL/TLS)"),
        ("SMTP server", f"{cfg.outgoing.server if cfg.outgoing.protocol == 'smtp' else e.smtp_host}:"
                        f"{cfg.outgoing.port if cfg.outgoing.protocol == 'smtp' else SMTP_PORT} (STARTTLS)"),
        ("User name", a.username or "(the mailbox's user name)"),
        ("Password", _secret(a.password, reveal, password=True) if a.password else "(not set)"),
        ("Mailbox", cfg.outgoing.sender or "(not set)"),
    ])
    out += ["", "  Exchange Online limits for SMTP AUTH: 30 messages per minute, 10,000 recipients per day."]
    return out


# -- another system --------------------------------------------------------------

def _generic(cfg, reveal: bool, today: date | None) -> list[str]:
    from wizard.config.clouds import resolve
    e = resolve(cfg)
    m, a, o, i = cfg.microsoft, cfg.auth, cfg.outgoing, cfg.incoming
    rows = [
        ("Token endpoint", f"{e.authority}/{m.tenant_id}/oauth2/v2.0/token"),
        ("Authorize endpoint", f"{e.authority}/{m.tenant_id}/oauth2/v2.0/authorize"),
        ("Directory (tenant) ID", m.tenant_id or "(not set)"),
        ("Application (client) ID", m.client_id or "(not set)"),
        ("Flow", a.flow),
    ]
    if a.flow == "client_secret":
        rows.append(("Client secret", _secret(a.client_secret, reveal, field="auth.client_secret")))
        if a.secret_expires:
            rows.append(("Secret expires", a.secret_expires.isoformat()))
    elif a.flow == "certificate":
        rows += [("Certificate (PEM)", a.certificate), ("Thumbprint", a.thumbprint)]
    else:
        rows.append(("User name", a.username))
        if a.flow == "password":
            rows.append(("Password", _secret(a.password, reveal, password=True)))
    scope_host = {"graph": e.graph_url}.get(o.protocol, e.exchange_resource)
    rows += [
        ("Scope (app-only)", f"{scope_host}/.default"),
        ("Outgoing", f"{o.protocol} {o.server}:{o.port}"),
        ("Sender", o.sender or "(not set)"),
        ("Incoming", f"{i.protocol}, every {i.poll_minutes} min"),
    ]
    rows += [("  account", acc.address) for acc in i.accounts]
    return ["Mail settings (generic)", ""] + _rows(rows)


def settings_sheet(cfg, *, reveal: bool = False, today: date | None = None) -> str:
    """The consuming system's settings, in its own field names; secrets masked
    unless ``reveal``."""
    build = {"monitor_g5": _monitor_g5, "efecte_esm": _efecte_esm}.get(cfg.system, _generic)
    lines = build(cfg, reveal, today)
    lines += _retirement_note(cfg, today)
    from wizard.guide.relay_settings import sheet_lines
    lines += sheet_lines(cfg)
    if not reveal and any(s for s in (cfg.auth.client_secret, cfg.auth.password)):
        lines += ["", "Secrets are masked; `mailwizard export sheet --reveal` shows them (keep that output private)."]
    return "\n".join(lines).rstrip() + "\n"


# -- the admin runbook -----------------------------------------------------------

EXO_ENVIRONMENTS = {"global": None, "usgov": "O365USGovGCCHigh", "usgov-dod": "O365USGovDoD", "china": "O365China"}
RBAC_ROLES = {  # RBAC for Applications role per protocol and direction
    ("ews", "out"): "Application EWS.AccessAsApp", ("ews", "in"): "Application EWS.AccessAsApp",
    ("graph", "out"): "Application Mail.Send", ("graph", "in"): "Application Mail.ReadWrite",
}


def _mailboxes(cfg) -> list[str]:
    seen: list[str] = []
    for addr in [cfg.outgoing.sender] + [a.address for a in cfg.incoming.accounts]:
        if addr and addr.lower() not in (s.lower() for s in seen):
            seen.append(addr)
    return seen


def _ps_list(items: list[str]) -> str:
    return "@(" + ", ".join(f'"{x}"' for x in items) + ")"


def _manifest_flow(flow: str) -> str:
    return "client_secret" if flow in ("client_secret", "certificate") else "password"


def manifest_text(cfg) -> str:
    """The Manifest page snippet for this flow and protocol(s), or the API
    permissions to add by hand where no verified IDs exist."""
    from wizard.guide import manifest
    flow = _manifest_flow(cfg.auth.flow)
    protocols = []
    for p in (cfg.outgoing.protocol, cfg.incoming.protocol):
        if p not in protocols:
            protocols.append(p)
    parts = []
    for p in protocols:
        try:
            snippet = manifest.manifest_snippet(flow, p)
            parts.append(f"// {p.upper()}: in the app's Manifest, replace \"requiredResourceAccess\" with:\n{snippet}")
        except ValueError:
            perms = "\n".join(f"//   {perm.path}" for perm in manifest.permissions_for(flow, p))
            parts.append(f"// {p.upper()}: add these on API permissions > Add a permission, then Grant admin consent:\n{perms}")
    return "\n\n".join(parts) + "\n"


def admin_runbook(cfg, *, today: date | None = None) -> str:
    """Exchange Online PowerShell for the tenant admin, for this config's flow
    and protocols, with the real client ID; never a secret."""
    from wizard.config.schema import APP_ONLY_FLOWS, SYSTEMS
    from wizard.guide.steps import load_guide
    from wizard.guide.retirement import allow_list_commands

    today = today or date.today()
    m, a = cfg.microsoft, cfg.auth
    cid = m.client_id or "<Application (client) ID>"
    mailboxes = _mailboxes(cfg)
    protos = {cfg.outgoing.protocol, cfg.incoming.protocol}
    app_only = a.flow in APP_ONLY_FLOWS
    L: list[str] = [
        "# mailwizard admin runbook: Exchange Online PowerShell for the tenant admin",
        f"# System: {SYSTEMS.get(cfg.system, cfg.system)}",
        f"# Tenant: {m.tenant_id or '(not set)'}   Cloud: {m.cloud}",
        f"# App (client) ID: {cid}   Flow: {a.flow}",
        f"# Outgoing: {cfg.outgoing.protocol}   Incoming: {cfg.incoming.protocol}",
        f"# Mailboxes: {', '.join(mailboxes) or '(none in the config)'}",
        f"# Made by mailwizard on {today.isoformat()}. It holds no secret.",
        "",
    ]
    if m.exchange == "on_premises":
        L += ["# The config says Exchange Server on-premises: the Exchange Online commands below do not apply.",
              "# EWS keeps working on-premises; give the app's account access with your on-premises tools.", ""]
        L += ["# ---- App manifest (Azure portal > App registrations > the app > Manifest) ----", "<#"]
        L += manifest_text(cfg).rstrip("\n").split("\n")
        return "\n".join(L + ["#>"]) + "\n"

    env = EXO_ENVIRONMENTS.get(m.cloud)
    L += ["# ---- 0. Connect (PowerShell 7; sign in as an Exchange administrator) ----",
          "# Install-Module ExchangeOnlineManagement -Scope CurrentUser   # once",
          "Connect-ExchangeOnline" + (f" -ExchangeEnvironmentName {env}" if env else ""),
          f'$appId = "{cid}"',
          ""]
    step = 1
    needs_sp = app_only and (protos & {"ews", "graph", "imap", "smtp"})
    if needs_sp:
        L += [f"# ---- {step}. Register the app's service principal in Exchange Online ----",
              "# ObjectId is the Object ID on Microsoft Entra ID > Enterprise applications > the app",
              "# (not the Object ID on the App registrations page).",
              '$spObjectId = "<Enterprise application Object ID>"',
              f'New-ServicePrincipal -AppId $appId -ObjectId $spObjectId -DisplayName "mailwizard {cfg.system}"',
              "Get-ServicePrincipal -Identity $spObjectId | Format-List DisplayName, AppId, ObjectId",
              ""]
        step += 1

    if "ews" in protos:
        r = load_guide().ews_retirement
        phase = r.phase(today)
        L += [f"# ---- {step}. Allow the app to use EWS (EWS retirement) ----",
              f"# {r.sentence(today)}"]
        if phase == "after":
            L += ["# EWS in Exchange Online is off: no setting brings it back. Move this system to",
                  "# Microsoft Graph (outgoing.protocol = \"graph\") or IMAP/SMTP with OAuth.", ""]
        else:
            L += ["# -EwsAllowedAppIDs replaces the WHOLE list (one comma-separated string): read it first",
                  "# and keep every app already on it. With -EwsEnabled $true only the listed apps can use",
                  "# EWS. Changes can take up to 24 hours. The list is shown only with",
                  "# -RetrieveEwsOperationAccessPolicy (a plain Get-OrganizationConfig leaves it out).",
                  "Get-OrganizationConfig | Format-List EwsEnabled, EwsApplicationAccessPolicy, EwsAllowList, EwsBlockList"]
            L += allow_list_commands(m.client_id).split("\n")[1:]
            L += ["(Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy) | Format-List EwsEnabled, EwsAllowedAppIDs",
                  ""]
        step += 1

    if app_only and protos & {"ews", "graph"} and mailboxes:
        scope = f"mailwizard {cfg.system} mailboxes"
        filt = " -or ".join(f"PrimarySmtpAddress -eq '{x}'" for x in mailboxes)
        L += [f"# ---- {step}. Scope the app to its mailboxes (RBAC for Applications) ----",
              "# The app-only permission in Entra ID (admin consent) reaches EVERY mailbox. RBAC for",
              "# Applications grants the same right for the listed mailboxes only; permissions add up,",
              "# so once the scoped assignment works, remove the tenant-wide grant (API permissions >",
              "# the Application permission > Remove permission / revoke admin consent).",
              f'New-ManagementScope -Name "{scope}" -RecipientRestrictionFilter "{filt}"']
        roles = []
        if cfg.outgoing.protocol in ("ews", "graph"):
            roles.append(RBAC_ROLES[(cfg.outgoing.protocol, "out")])
        if cfg.incoming.protocol in ("ews", "graph") and cfg.incoming.accounts:
            roles.append(RBAC_ROLES[(cfg.incoming.protocol, "in")])
        for role in dict.fromkeys(roles):
            L.append(f'New-ManagementRoleAssignment -App $spObjectId -Role "{role}" -CustomResourceScope "{scope}"')
        for x in mailboxes:
            L.append(f'Test-ServicePrincipalAuthorization -Identity $spObjectId -Resource "{x}" | Format-Table')
        L += [""]
        step += 1

    if app_only and protos & {"imap", "smtp"} and mailboxes:
        L += [f"# ---- {step}. Mailbox rights for app-only IMAP/SMTP ----",
              "# The token alone is not enough: the service principal needs rights on each mailbox",
              "# (else SMTP 535 5.7.3 / IMAP AUTHENTICATE failed).",
              f"foreach ($mbx in {_ps_list(mailboxes)}) {{",
              "    Add-MailboxPermission -Identity $mbx -User $spObjectId -AccessRights FullAccess",
              "}", ""]
        step += 1

    if "smtp" in protos:
        senders = [cfg.outgoing.sender] if cfg.outgoing.sender else []
        senders += [u.sender for u in cfg.users if u.sender and u.sender not in senders]
        L += [f"# ---- {step}. Allow SMTP AUTH (OAuth/XOAUTH2 still needs it; else 535 5.7.139) ----",
              "Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled"]
        for x in senders or ["<sender mailbox>"]:
            L.append(f'Set-CASMailbox -Identity "{x}" -SmtpClientAuthenticationDisabled $false')
        L += [""]
        step += 1
    if "imap" in protos:
        accounts = [acc.address for acc in cfg.incoming.accounts] or ["<mailbox>"]
        L += [f"# ---- {step}. Check IMAP is on for the mailboxes read ----"]
        for x in accounts:
            L.append(f'Get-CASMailbox -Identity "{x}" | Format-List ImapEnabled, SmtpClientAuthenticationDisabled')
        L += [""]
        step += 1

    L += ["Disconnect-ExchangeOnline -Confirm:$false", "",
          f"# ---- {step}. App manifest (Azure portal > App registrations > the app > Manifest) ----",
          "# Not PowerShell: paste into the portal.", "<#"]
    L += manifest_text(cfg).rstrip("\n").split("\n")
    L += ["#>"]
    return "\n".join(L) + "\n"
