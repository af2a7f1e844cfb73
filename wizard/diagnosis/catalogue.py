"""The error catalogue: every failure the connection test can meet, in plain words.

A ``Diagnosis`` says what went wrong (cause), what to do (fix), where in the
setup guide that is done (guide_step) and which wizard screen to go back to
(screen). Codes are the service's own (``AADSTS7000215``,
``ErrorNonExistentMailbox``, ``X-EWS-Policy-Reason``, ...) or ours for things
the services do not name (``net.refused``, ``tls.untrusted``, ``http.html``...).

Entry texts may hold placeholders ({client_id}, {tenant_id}, {address},
{username}, {resource}, {authority}, {host}, {port}, {retry_after}, {api},
{permission}) that
``lookup`` fills from the config and the situation. Secrets are never among
them. The functions that turn MSAL results, exchangelib exceptions and network
errors into codes live in ``diagnose.py``; this module is data plus ``lookup``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wizard.diagnosis.aadsts import PEER_ENTRIES, error_page, family
from wizard.diagnosis.registration_codes import ENTRIES as REGISTRATION_ENTRIES

# Guide step numbers differ between the two Azure guides: guide 001 (client
# secret, app-only) and the first part of guide 002 (user name/password).
_IDS = {"client_secret": "Azure step 9", "password": "Azure step 8"}
_PERMS = {"client_secret": "Azure steps 13-16", "password": "Azure steps 12-15"}
_CONSENT = {"client_secret": "Azure steps 15-16", "password": "Azure steps 14-15"}
_PUBLIC = {"client_secret": "Azure steps 17-19", "password": "Azure steps 16-18"}
_SECRET = "Azure steps 20-22"
_USERS = {"client_secret": "Azure step 23", "password": "Azure step 19"}
_REDIRECT = {"client_secret": "Azure step 6", "password": "Azure step 5"}   # the registration page's Redirect URI
# The guide keys wizard/aadsts.py names its steps by.
GUIDES = {"ids": _IDS, "perms": _PERMS, "consent": _CONSENT, "public": _PUBLIC, "secret": _SECRET,
          "users": _USERS, "redirect": _REDIRECT}

EWS_SHUTDOWN_DATE = "2027-04-01"


@dataclass
class Diagnosis:
    code: str
    cause: str
    fix: str
    guide_step: str | None = None
    screen: str | None = None            # "target" | "registration" | "ids" | "mail"
    service_message: str | None = None   # the service's own words, for unknown codes
    trace_id: str | None = None
    correlation_id: str | None = None


class DiagnosisError(Exception):
    """A failure that carries its ``Diagnosis`` (``.diagnosis``); the message is "code: cause"."""

    def __init__(self, diagnosis: Diagnosis):
        self.diagnosis = diagnosis
        super().__init__(f"{diagnosis.code}: {diagnosis.cause}")


@dataclass(frozen=True)
class Entry:
    cause: str
    fix: str
    guide: str | dict | None = None      # a step, or {flow: step}
    screen: str | None = None


def _e(cause, fix, guide=None, screen=None) -> Entry:
    return Entry(cause, fix, guide, screen)


_MFA = _e(
    "The account {username} must complete multi-factor authentication (or another sign-in challenge). "
    "The user name/password flow cannot answer such a challenge.",
    "Use the client secret flow (app-only) instead, or a service account without MFA that the tenant "
    "admin excludes from the MFA policy on purpose.",
    None, "ids")
_CA = _e(
    "A Conditional Access policy in the tenant blocked this sign-in.",
    "Ask the tenant admin to check Entra ID > Sign-in logs for this sign-in and the policy that blocked it; "
    "the user name/password flow is often blocked by policy, so the client secret flow is the usual way out.",
    None, "ids")
_ACCOUNT = _e(
    "The account {username} cannot sign in: it is disabled, locked, or its password has expired.",
    "Ask the tenant admin to enable or unlock the account, or sign in once in a browser to set a new "
    "password, then type the new password here.",
    None, "ids")
_BUSY = _e(
    "The service is throttling this client (too many requests in a short time).",
    "Wait {retry_after} and test again; if it keeps happening, lower the polling frequency.",
    None, None)

CATALOGUE: dict[str, Entry] = {
    # -- identity platform (AADSTS) ------------------------------------
    "AADSTS90002": _e(
        "The tenant '{tenant_id}' was not found: the Directory (tenant) ID is wrong, or it belongs to another "
        "Microsoft cloud than the one chosen.",
        "Copy the Directory (tenant) ID again from the app's Overview page, and check the cloud (global, US "
        "Government, China) on the first screen.", _IDS, "ids"),
    "AADSTS900023": _e(
        "The Directory (tenant) ID '{tenant_id}' is neither a GUID nor a domain name.",
        "Copy the Directory (tenant) ID again from the app's Overview page (a GUID like 5f8d2c1a-...).",
        _IDS, "ids"),
    "AADSTS700016": _e(
        "No application with the client ID {client_id} exists in this tenant: the Application (client) ID is "
        "wrong, the app was registered in another tenant, or it was created less than a minute ago.",
        "Copy the Application (client) ID again from the app's Overview page and check the tenant ID next to "
        "it. If you just registered the app, wait a minute and test again.", _IDS, "ids"),
    "AADSTS7000215": _e(
        "The client secret was not accepted. Most often the Secret ID was pasted instead of the secret Value, "
        "or part of the Value is missing.",
        "In Certificates & secrets, copy the column named 'Value' (about 40 characters with '~'), not "
        "'Secret ID'. If the Value is hidden already, create a new secret and copy its Value at once.",
        _SECRET, "ids"),
    "AADSTS7000222": _e(
        "The client secret has expired.",
        "Create a new client secret in Certificates & secrets for app {client_id}, copy its Value, paste it "
        "here and type its expiry date so the wizard can warn you next time.", _SECRET, "ids"),
    "AADSTS7000218": _e(
        "The app {client_id} does not allow public client flows, which the user name/password flow needs.",
        "In the app's Authentication page set 'Allow public client flows' to Yes and save, or choose the "
        "client secret flow instead.", _PUBLIC, "registration"),
    "AADSTS50126": _e(
        "The user name or password for {username} is wrong.",
        "Type the password again (it is case sensitive) and check the user name is the full sign-in name "
        "(user@domain).", None, "ids"),
    "AADSTS50034": _e(
        "The user {username} does not exist in this tenant.",
        "Check the spelling of the user name, and that it is an account of this tenant (Entra ID > Users).",
        _USERS, "ids"),
    "AADSTS50076": _MFA, "AADSTS50079": _MFA, "AADSTS50158": _MFA,
    "AADSTS53003": _CA, "AADSTS530033": _CA,
    "AADSTS65001": _e(
        "The permissions of app {client_id} have not been consented to.",
        "In API permissions click 'Grant admin consent' and check that every status icon turns green.",
        _CONSENT, "registration"),
    "AADSTS50057": _ACCOUNT, "AADSTS50053": _ACCOUNT, "AADSTS50055": _ACCOUNT,
    "AADSTS500011": _e(
        "The resource {resource} is not known in this tenant: Exchange Online is not licensed there, or the "
        "wrong Microsoft cloud is chosen.",
        "Check that the tenant has Exchange Online mailboxes, and the cloud chosen on the first screen.",
        None, "target"),
    "AADSTS70011": _e(
        "The requested scope is not valid for this flow.",
        "The client secret flow must ask for '{resource}/.default'. If you see this with mailwizard, please "
        "report it; check the cloud on the first screen.", None, "target"),
    "AADSTS50194": _e(
        "The app is single tenant, but the sign-in went to a shared endpoint (common/organizations).",
        "Use the tenant's own Directory (tenant) ID instead of 'common'.", _IDS, "ids"),
    "AADSTS700027": _e(
        "The certificate was not accepted: app {client_id} has no uploaded certificate with this thumbprint, "
        "the uploaded one has expired, or the key file does not belong to it.",
        "Upload the .cer file (App registrations > the app > Certificates & secrets > Certificates > Upload "
        "certificate) and check that the Thumbprint column there equals auth.thumbprint; the key file in "
        "auth.certificate must be the one created together with that .cer.", None, "registration"),
    # -- the codes users of peer tools meet most (wizard/aadsts.py) --
    **{code: _e(cause, fix, GUIDES.get(guide), screen) for code, (cause, fix, guide, screen) in PEER_ENTRIES.items()},
    # -- `mailwizard register`: Graph's refusals (diagnosis/registration_codes.py) --
    **{code: _e(cause, fix, guide, screen) for code, (cause, fix, guide, screen) in REGISTRATION_ENTRIES.items()},
    # -- certificate flow: client assertion (wizard/certs.py, sandbox/assertion.py) --
    "AADSTS700024": _e(
        "The signed sign-in request (client assertion) is outside its valid time: this computer's clock is "
        "probably wrong.",
        "Set the computer's date, time and time zone correctly (or turn on time sync) and test again.",
        None, None),
    "AADSTS700021": _e(
        "The signed sign-in request names another application than {client_id}.",
        "Check the Application (client) ID; it must be the app the certificate was uploaded to.", None, "ids"),
    "AADSTS700023": _e(
        "The signed sign-in request was meant for another tenant or cloud than {authority}.",
        "Check the Directory (tenant) ID and the cloud chosen on the first screen.", None, "ids"),
    "AADSTS50027": _e(
        "The identity platform could not read the signed sign-in request (client assertion).",
        "Create a new key and certificate with `mailwizard cert create` and upload the new .cer; if it "
        "persists, report it with the message below.", None, "ids"),
    # -- device code flow (wizard/device_code.py, sandbox/device.py) --
    "AADSTS70019": _e(
        "The sign-in code expired before the sign-in was completed in the browser.",
        "Run `mailwizard login` again and complete the sign-in within the time shown (15 minutes).",
        None, "ids"),
    "AADSTS70016": _e(
        "The sign-in in the browser has not been completed yet.",
        "Open the page shown, type the code and sign in; mailwizard keeps waiting until the code expires.",
        None, "ids"),
    "AADSTS70018": _e(
        "The code typed in the browser was wrong.",
        "Run `mailwizard login` again and type the code exactly as shown.", None, "ids"),
    "authorization_declined": _e(
        "The sign-in was cancelled in the browser (the user chose not to allow it).",
        "Run `mailwizard login` again and approve the sign-in with the account the system should use.",
        None, "ids"),
    "access_denied": _e(
        "The sign-in was cancelled in the browser (the user chose not to allow it).",
        "Run `mailwizard login` again and approve the sign-in with the account the system should use.",
        None, "ids"),
    "AADSTS50173": _e(
        "The saved sign-in was revoked (password changed or sessions revoked by an admin).",
        "Sign in again with `mailwizard login`.", None, "ids"),
    "AADSTS70000": _e(
        "The saved sign-in (refresh token) or sign-in code is no longer valid.",
        "Sign in again with `mailwizard login`.", None, "ids"),
    "auth.signin_needed": _e(
        "No saved sign-in for the device code flow on this computer (or it has expired).",
        "Sign in first with `mailwizard login` (once: the sign-in is then kept and refreshed by itself).",
        None, "ids"),
    # -- EWS -----------------------------------------------------------
    "ews.401.2000008": _e(
        "Exchange refused the token: it lacks the permission for EWS (x-ms-diagnostics 2000008).",
        "Check that full_access_as_app (type Application) is listed in API permissions with a green 'Granted' "
        "status; after granting consent it can take a few minutes to work.", _PERMS, "registration"),
    "ews.401": _e(
        "Exchange refused the sign-in (401 Unauthorized).",
        "Check the API permissions and admin consent of app {client_id}, and that the server is the Exchange "
        "server of this tenant.", _PERMS, "registration"),
    "X-EWS-Policy-Reason": _e(
        "EWS is blocked for this app by the tenant's policy (Exchange Online is retiring EWS: blocked by "
        "default since 2026-10-01, switched off for good on " + EWS_SHUTDOWN_DATE + ").",
        "An Exchange admin can allow this app until " + EWS_SHUTDOWN_DATE + ". In Exchange Online PowerShell, "
        "first read the current list (the setting replaces the whole list):\n"
        "  Get-OrganizationConfig | Select EwsAllowedAppIDs\n"
        "then add this app:\n"
        "  Set-OrganizationConfig -EWSEnabled $true -EwsAllowedAppIDs @{{Add=\"{client_id}\"}}\n"
        "or, if that form is refused, give the full list: the IDs read above plus {client_id}. "
        "Changes can take up to 24 hours. For the long run use Microsoft Graph (Mail.Send / Mail.ReadWrite) "
        "instead of EWS.", None, "mail"),
    "ews.403": _e(
        "Exchange answered 403 Forbidden. Right after a new app registration or consent this is normal: "
        "the permissions take a while to reach Exchange.",
        "Wait a few minutes (up to an hour) and test again. If it persists, check the API permissions and "
        "admin consent of app {client_id}.", _PERMS, "registration"),
    "ErrorNonExistentMailbox": _e(
        "The address {address} has no mailbox in Exchange Online.",
        "Use an address that has a licensed mailbox (Microsoft 365 admin center > Users > Licenses), or "
        "correct the spelling.", _USERS, "mail"),
    "ErrorImpersonateUserDenied": _e(
        "The app may not act as {address}: it is scoped away from this mailbox (RBAC for Applications or an "
        "application access policy).",
        "Ask the Exchange admin to add {address} to the scope of app {client_id} "
        "(Get-ManagementRoleAssignment / Test-ServicePrincipalAuthorization, or Get-ApplicationAccessPolicy).",
        None, "mail"),
    "ErrorAccessDenied": _e(
        "Access to the mailbox {address} was denied.",
        "For the client secret flow, check the app's scope (RBAC for Applications or an application access "
        "policy); for the user name/password flow give {username} Full Access to {address} "
        "(Add-MailboxPermission).", None, "mail"),
    "ErrorSendAsDenied": _e(
        "The account may not send as {address}.",
        "Give {username} the Send As right on {address} (Add-RecipientPermission {address} -AccessRights "
        "SendAs -Trustee {username}), or send from the account's own address.", None, "mail"),
    "ErrorServerBusy": _BUSY, "http.429": _BUSY,
    "ErrorMailRecipientNotFound": _e(
        "The test recipient {address} was not found.",
        "Check the spelling of the test recipient's address.", None, "mail"),
    # -- Graph ---------------------------------------------------------
    "graph.ErrorAccessDenied": _e(
        "Microsoft Graph denied access to {address} (403 ErrorAccessDenied): the Mail.Send / Mail.ReadWrite "
        "permission is missing or not consented, or the app is scoped away from this mailbox (RBAC for "
        "Applications or an application access policy).",
        "In API permissions of app {client_id} add Microsoft Graph > Mail.Send and Mail.ReadWrite (type "
        "Application for the client secret or certificate flow, Delegated for a user sign-in) and grant admin "
        "consent. If they are there, ask the Exchange admin to include {address} in the app's scope "
        "(Test-ServicePrincipalAuthorization / Get-ApplicationAccessPolicy).", _PERMS, "registration"),
    "graph.large_attachment": _e(
        "Microsoft Graph denied access to {address} (403) while attaching a large file: mail with "
        "attachments of 3 MB or more is sent as a draft with an upload session, and that needs the "
        "{permission} permission (besides Mail.Send).",
        "In API permissions of app {client_id} add Microsoft Graph > {permission} (type Application for the "
        "client secret or certificate flow, Delegated for a user sign-in) and grant admin consent; or send "
        "attachments under 3 MB (all together up to 3 MB).", _PERMS, "registration"),
    "graph.401": _e(
        "Microsoft Graph refused the token (401 InvalidAuthenticationToken).",
        "Check the cloud chosen on the first screen and the API permissions and admin consent of app "
        "{client_id}; test again to get a new token.", _PERMS, "registration"),
    "MailboxNotEnabledForRESTAPI": _e(
        "{address} has no cloud mailbox (it may be on-premises, inactive or unlicensed).",
        "Use an address with an Exchange Online mailbox (Microsoft 365 admin center > Users > Licenses), or "
        "correct the address.", None, "mail"),
    "ErrorInvalidUser": _e(
        "{address} is not a valid user with a mailbox in this tenant.",
        "Check the spelling, or use an address with an Exchange Online mailbox.", None, "mail"),
    # -- SMTP / IMAP ----------------------------------------------------
    "535 5.7.139": _e(
        "SMTP AUTH is switched off for the mailbox {address} or for the whole tenant, so the server refuses "
        "any sign-in over SMTP (also with OAuth).",
        "In Exchange Online PowerShell run: Set-CASMailbox -Identity {address} "
        "-SmtpClientAuthenticationDisabled $false (if the whole tenant has it off, check "
        "Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled; the mailbox setting above "
        "overrides it for this mailbox). Changes can take up to an hour.", None, "mail"),
    "535 5.7.3": _e(
        "The SMTP server rejected the token for {address} (535 5.7.3 Authentication unsuccessful).",
        "App-only: register the app's service principal in Exchange (New-ServicePrincipal -AppId {client_id} "
        "-ObjectId <enterprise application object id>), give it rights on the mailbox (Add-MailboxPermission "
        "-Identity {address} -User <service principal id> -AccessRights FullAccess) and check that the app has "
        "the SMTP.SendAsApp permission with admin consent. User sign-in: the user needs a mailbox and the "
        "delegated SMTP.Send permission consented.", None, "registration"),
    "554 5.2.252": _e(
        "The account may not send as {address} (554 5.2.252 SendAsDenied).",
        "Give the signing-in account the Send As right on {address} (Add-RecipientPermission -Identity "
        "{address} -AccessRights SendAs -Trustee <the account>), or send from the account's own address.",
        None, "mail"),
    "IMAP AUTHENTICATE failed": _e(
        "The IMAP server refused the sign-in to {address} (AUTHENTICATE failed): the token was rejected, or "
        "IMAP is switched off for the mailbox.",
        "Check that IMAP is on for the mailbox (Set-CASMailbox -Identity {address} -ImapEnabled $true). "
        "App-only: register the app's service principal (New-ServicePrincipal -AppId {client_id} -ObjectId "
        "<enterprise application object id>), give it Full Access to {address} (Add-MailboxPermission "
        "-Identity {address} -User <service principal id> -AccessRights FullAccess) and grant the "
        "IMAP.AccessAsApp permission. User sign-in: the user needs Full Access to {address} and the delegated "
        "IMAP.AccessAsUser.All permission.", None, "registration"),
    "imap.error": _e(
        "The IMAP server refused a command for {address}.",
        "See the server's message below; check that the mailbox exists and that the account may open it.",
        None, "mail"),
    # SMTP / IMAP servers other than Exchange Online (the fix never points to Microsoft's documentation),
    # and what any server may answer: a refused recipient, try-again-later, another protocol on the port.
    "smtp.auth": _e(
        "The SMTP server {host} refused the sign-in as {user} (AUTH XOAUTH2): it did not accept the token "
        "for this account.",
        "The XOAUTH2 user must be the account the token was issued for (app-only: the sending mailbox; user "
        "sign-in: the signed-in user). Check the user name and sender, then ask the admin of {host} whether "
        "it accepts tokens of this tenant and app (issuer, signing key, expiry); its own words are below.",
        None, "mail"),
    "smtp.rcpt": _e(
        "The SMTP server {host} refused the recipient {recipient}.",
        "Check the recipient's address. A server that relays only for its own domains refuses others "
        "('Relay access denied'): send to an address that server delivers, or ask its admin to let {user} "
        "relay. The server's own words are below.", None, "mail"),
    "smtp.transient": _e(
        "The SMTP server {host} asked to try again later ({said}), still after {attempts} tries: the message "
        "was not sent.",
        "Send it again in a few minutes. If it persists, ask the admin of {host} about the reply below (4xx "
        "replies are temporary: the server is busy, a limit was reached, or a service behind it is down).",
        None, None),
    "smtp.refused": _e(
        "The SMTP server {host} refused the message from {address}.",
        "Read the server's own words below: they name what it objects to (sender, recipient, size or "
        "content). {host} is not Exchange Online, so its admin decides; check the server name and port "
        "if this is not the server you meant.", None, "mail"),
    "imap.auth": _e(
        "The IMAP server {host} refused the sign-in to {address} (AUTHENTICATE XOAUTH2): it did not accept "
        "the token for this mailbox.",
        "The XOAUTH2 user must be the mailbox the token may open (a user sign-in: normally the signed-in "
        "user's own). Check the account address and user name, then ask the admin of {host} whether it "
        "accepts tokens of this tenant and app (issuer, signing key, expiry); its own words are below.",
        None, "mail"),
    "net.protocol": _e(
        "{host}:{port} answered, but not as {expected}: {speaks}",
        "Check the port: {expected} is on {usual}. The server's first words are below.", None, "mail"),
    # -- our own: config, network, TLS, HTTP ---------------------------------
    "secret.id_pasted": _e(
        "The client secret field holds the Secret ID (a GUID), not the secret Value.",
        "In Certificates & secrets copy the column named 'Value' (about 40 characters with '~'). If the Value "
        "is hidden already, create a new secret and copy its Value at once.", _SECRET, "ids"),
    "secret.expiring": _e(
        "The client secret expires soon.",
        "Create the next client secret for app {client_id} before it expires, and update it here.",
        _SECRET, "ids"),
    "config.invalid": _e(
        "A setting is missing or not valid.",
        "Correct the named field; the message under it says what is expected.", None, None),
    "net.dns": _e(
        "The name {host} could not be found (DNS).",
        "Check the spelling of the server name and the computer's network and DNS settings.", None, "mail"),
    "net.refused": _e(
        "The connection to {host}:{port} was refused: nothing answers on that port.",
        "Check the host name and port; for Exchange Online it is outlook.office365.com, port 443 (EWS; "
        "port 993 for IMAP), and smtp.office365.com, port 587 for SMTP.",
        None, "mail"),
    "net.timeout": _e(
        "{host}:{port} did not answer in time.",
        "Check the network, firewall and proxy (HTTPS_PROXY / NO_PROXY); the server must be reachable on "
        "port {port}.", None, "mail"),
    "net.unreachable": _e(
        "{host}:{port} cannot be reached from this computer (no route to it).",
        "Check the network connection, firewall and proxy settings.", None, "mail"),
    "net.reset": _e(
        "The connection to {host}:{port} was cut off by the other side or a firewall.",
        "Check firewall and proxy settings; try again in a moment.", None, "mail"),
    "net.proxy": _e(
        "The proxy refused or could not open the connection to {host}.",
        "Check HTTPS_PROXY / NO_PROXY and that the proxy allows {host}; a proxy that needs a sign-in must "
        "allow this computer through.", None, None),
    "tls.untrusted": _e(
        "The certificate of {host} is not trusted: it is signed by an authority this computer does not know "
        "(often an inspecting proxy or firewall).",
        "If your network inspects TLS, put its CA certificate in a PEM file and give its path as the CA bundle "
        "(endpoints.ca_bundle). Verification is never switched off.", None, "target"),
    "tls.ca_not_strict": _e(
        "The certificate of {host} comes from an authority this computer trusts (often the company's TLS "
        "inspection proxy or firewall), but it breaks a rule of the certificate standard (RFC 5280) that "
        "Python 3.13 and later enforce: {problem}.",
        "Ask the admin of that proxy or company CA to issue a CA certificate whose Basic Constraints are marked "
        "critical, with Key Usage (keyCertSign) and a Subject Key Identifier, and certificates with an "
        "Authority Key Identifier; then put the new CA certificate in the CA bundle (endpoints.ca_bundle). "
        "Verification is never switched off; Python 3.12 and older do not apply this rule.", None, "target"),
    "tls.ca_not_strict": _e(
        "The certificate of {host} comes from an authority this computer trusts (often the company's TLS "
        "inspection proxy or firewall), but it breaks a rule of the certificate standard (RFC 5280) that "
        "Python 3.13 and later enforce: {problem}.",
        "Ask the admin of that proxy or company CA to issue a CA certificate whose Basic Constraints are marked "
        "critical, with Key Usage (keyCertSign) and a Subject Key Identifier, and certificates with an "
        "Authority Key Identifier; then put the new CA certificate in the CA bundle (endpoints.ca_bundle). "
        "Verification is never switched off; Python 3.12 and older do not apply this rule.", None, "target"),
    "tls.hostname": _e(
        "The certificate of {host} is valid, but for another name.",
        "Check the server name: for Exchange Online it is outlook.office365.com. A proxy that rewrites "
        "certificates may also cause this.", None, "mail"),
    "tls.expired": _e(
        "The certificate of {host} has expired (or the computer's clock is wrong).",
        "Check the computer's date and time; if they are right, the server's certificate must be renewed.",
        None, None),
    "tls.error": _e(
        "The secure connection (TLS) to {host} could not be set up.",
        "Check proxy and firewall settings; the server must speak TLS 1.2 or later on port {port}.",
        None, None),
    "http.html": _e(
        "{host} answered with a web page instead of the expected data: usually a proxy or captive-portal "
        "sign-in page, or the wrong address.",
        "Open https://{host} in a browser on this computer and complete any network sign-in; check the "
        "proxy settings and the server name.", None, "target"),
    "http.5xx": _e(
        "The Microsoft identity platform is having trouble (server error), even after a few tries.",
        "Try again in a few minutes; check https://status.cloud.microsoft for incidents.", None, None),
    "http.unexpected": _e(
        "{host} gave an answer the wizard did not expect.",
        "Check the server name and any proxy in between; the message below is the service's own.",
        None, None),
    # -- token claims --------------------------------------------------------
    "claims.aud": _e(
        "The token is meant for another service ({service}), not {resource}.",
        "Check the cloud chosen on the first screen and the Exchange server name.", None, "target"),
    "claims.tid": _e(
        "The token comes from another tenant than {tenant_id}.",
        "Copy the Directory (tenant) ID again from the app's Overview page.", _IDS, "ids"),
    "claims.roles": _e(
        "The token carries no {permission} role: admin consent missing or permission type wrong "
        "(Delegated instead of Application).",
        "In API permissions of app {client_id}, add {api} > {permission} of type Application, then click "
        "'Grant admin consent' until the status is green.", _PERMS, "registration"),
    "claims.scp": _e(
        "The token carries no {permission} permission: admin consent missing or permission type wrong "
        "(Application instead of Delegated).",
        "In API permissions of app {client_id}, add {api} > {permission} of type Delegated, then click "
        "'Grant admin consent' until the status is green.", _PERMS, "registration"),
    "claims.readwrite": _e(
        "The token can read mail (Mail.Read) but not change it: the runtime marks each fetched message read "
        "and moves it to 'Processed', which needs Mail.ReadWrite; without it `mailwizard poll` fails on every "
        "message and fetches the same mail again.",
        "In API permissions of app {client_id}, add {api} > Mail.ReadWrite of type {kind} (Mail.Read may then "
        "be removed), then click 'Grant admin consent' until the status is green.", _PERMS, "registration"),
    "claims.exp": _e(
        "The token is already expired when it arrives: the computer's clock is probably wrong.",
        "Set the computer's date, time and time zone correctly (or turn on time sync) and test again.",
        None, None),
    "claims.upn": _e(
        "The token was issued for {service}, not for {username}.",
        "Check the user name.", None, "ids"),
    "claims.decode": _e(
        "The token could not be read.",
        "Test again; if it persists, check that nothing between this computer and Microsoft rewrites "
        "responses (proxy).", None, None),
    "ews.retirement": _e(
        "EWS in Exchange Online is switched off for good on " + EWS_SHUTDOWN_DATE + " (blocked by default "
        "since 2026-10-01 unless the tenant allows the app).",
        "This works for now. Plan the move to Microsoft Graph before " + EWS_SHUTDOWN_DATE + "; until then "
        "keep app {client_id} in EwsAllowedAppIDs.", None, None),
    "ews.protocol": _e(      # no longer used by the connection test (it checks every protocol); kept for callers
        "The connection test did not check the mailbox over {service}.",
        "The sign-in was checked; check the mailbox in the system itself after saving.", None, None),
    "ews.redirect": _e(
        "The server redirected the request elsewhere: the server name may be wrong.",
        "Use the Exchange server name itself (outlook.office365.com for Exchange Online).", None, "mail"),
    "ews.error": _e(
        "Exchange reported an error for {address}.",
        "See the service's message below; correct the mailbox settings and test again.", None, "mail"),
    "cancelled": _e("The test was cancelled.", "Run the test again when ready.", None, None),
    "internal": _e(
        "The test stopped on an unexpected problem inside mailwizard.",
        "Test again; if it repeats, report it with the message below.", None, None),
}

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


# Words for a value the situation did not give, when a config is known: a message for
# the user never shows an unfilled "<name>" (without a config, "<name>" marks the gap).
UNKNOWN = {"username": "the account", "address": "the mailbox", "host": "the server", "port": "its port",
           "client_id": "this app", "tenant_id": "this tenant", "service": "another service",
           "kind": "Application or Delegated", "retry_after": "a minute"}


def _fill(text: str, values: dict, marked_gaps: bool = True) -> str:
    def one(m):
        v = values.get(m.group(1))
        if v not in (None, ""):
            return str(v)
        return f"<{m.group(1).replace('_', ' ')}>" if marked_gaps else UNKNOWN.get(m.group(1), "(not known)")
    # '{{' / '}}' are literal braces (PowerShell hash tables).
    text = text.replace("{{", "\x00").replace("}}", "\x01")
    return _PLACEHOLDER.sub(one, text).replace("\x00", "{").replace("\x01", "}")


def context_of(cfg, flow: str | None = None) -> dict:
    """The placeholder values a config gives (no secrets)."""
    if cfg is None:
        return {"flow": flow}
    flow = flow or cfg.auth.flow
    return {
        "client_id": cfg.microsoft.client_id, "tenant_id": cfg.microsoft.tenant_id,
        "username": (cfg.auth.username if flow in ("password", "device_code") else "") or "the account",
        "address": cfg.outgoing.sender, "resource": cfg.cloud.exchange_resource,
        "authority": cfg.authority_host, "flow": flow,
        "kind": "Application" if flow in ("client_secret", "certificate") else "Delegated",
    }


def normalise_code(code) -> str:
    """7000215 / 'AADSTS7000215' / ' aadsts7000215 ' -> 'AADSTS7000215'."""
    text = str(code).strip()
    if text.isdigit():
        return f"AADSTS{text}"
    if text.upper().startswith("AADSTS"):
        return "AADSTS" + text[6:]
    return text


def lookup(code: str, *, cfg=None, flow: str | None = None, service_message: str | None = None,
           trace_id: str | None = None, correlation_id: str | None = None, **values) -> Diagnosis:
    """The Diagnosis for a code, filled in for this config. Unknown codes keep
    the service's message and IDs so the user can search or report them."""
    code = normalise_code(code)
    ctx = context_of(cfg, flow)
    ctx.update({k: v for k, v in values.items() if v is not None})
    ctx.setdefault("retry_after", "a minute")
    ctx.setdefault("api", "Office 365 Exchange Online")
    ctx.setdefault("permission", "EWS.AccessAsUser.All" if ctx.get("flow") == "password" else "full_access_as_app")
    entry = CATALOGUE.get(code)
    if entry is None:
        return _unknown(code, cfg, ctx, service_message, trace_id, correlation_id)
    guide = entry.guide
    if isinstance(guide, dict):
        guide = guide.get(ctx.get("flow") or "client_secret")
    gaps = cfg is None
    return Diagnosis(code, _fill(entry.cause, ctx, gaps), _fill(entry.fix, ctx, gaps), guide, entry.screen,
                     service_message, trace_id, correlation_id)


def _unknown(code: str, cfg, ctx: dict, service_message, trace_id, correlation_id) -> Diagnosis:
    """A code without an entry: an AADSTS code is explained from its family
    (wizard/aadsts.py) with the address of its own page; others keep the
    service's words. Either way the service's message and IDs are kept."""
    said = f" The service said: {service_message}" if service_message else ""
    if not code.startswith("AADSTS") or not code[6:].isdigit():
        return Diagnosis(code, f"The service reported {code}" + (f": {service_message}" if service_message else ""),
                         "Look the code up in Microsoft's documentation (search for it with the trace ID), "
                         "correct the setting it names and test again.",
                         None, None, service_message, trace_id, correlation_id)
    page = error_page(code, cfg.microsoft.cloud if cfg is not None else None)
    fam = family(code)
    if fam is None:
        cause = f"The identity platform refused the sign-in with {code}, a code mailwizard has no entry for."
        fix, guide, screen = "Correct the setting the message names and test again.", None, None
    else:
        prefix, about, fix, guide, screen = fam
        cause = (f"The identity platform refused the sign-in with {code}, a code mailwizard has no entry for; "
                 f"codes starting AADSTS{prefix} concern {about}.")
        guide = GUIDES.get(guide)
    if isinstance(guide, dict):
        guide = guide.get(ctx.get("flow") or "client_secret")
    fix = f"{_fill(fix, ctx)} Microsoft's page for this code: {page}"
    return Diagnosis(code, cause + said, fix, guide, screen, service_message, trace_id, correlation_id)
