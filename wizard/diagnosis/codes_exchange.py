"""Exchange's codes: EWS (SOAP faults, X-EWS-Policy-Reason, HTTP answers)
and Microsoft Graph."""

from __future__ import annotations

from wizard.diagnosis.aadsts import CLOUD_CHOICE
from wizard.diagnosis.model import BUSY, EWS_SHUTDOWN_DATE, Entry, PERMS, USERS, entry


EXCHANGE: dict[str, Entry] = {
    # -- EWS -----------------------------------------------------------
    "ews.401.2000008": entry(
        "Exchange refused the token: it lacks the permission for EWS (x-ms-diagnostics 2000008).",
        "Check that full_access_as_app (type Application) is listed in API permissions with a green 'Granted' "
        "status; after granting consent it can take a few minutes to work.", PERMS, "registration"),
    "ews.401": entry(
        "Exchange refused the sign-in (401 Unauthorized).",
        "Check the API permissions and admin consent of app {client_id}, and that the server is the Exchange "
        "server of this tenant.", PERMS, "registration"),
    "X-EWS-Policy-Reason": entry(
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
    "ews.403": entry(
        "Exchange answered 403 Forbidden. Right after a new app registration or consent this is normal: "
        "the permissions take a while to reach Exchange.",
        "Wait a few minutes (up to an hour) and test again. If it persists, check the API permissions and "
        "admin consent of app {client_id}.", PERMS, "registration"),
    "ErrorNonExistentMailbox": entry(
        "The address {address} has no mailbox in Exchange Online.",
        "Use an address that has a licensed mailbox (Microsoft 365 admin center > Users > Licenses), or "
        "correct the spelling.", USERS, "mail"),
    "ErrorImpersonateUserDenied": entry(
        "The app may not act as {address}: it is scoped away from this mailbox (RBAC for Applications or an "
        "application access policy).",
        "Ask the Exchange admin to add {address} to the scope of app {client_id} "
        "(Get-ManagementRoleAssignment / Test-ServicePrincipalAuthorization, or Get-ApplicationAccessPolicy).",
        None, "mail"),
    "ErrorAccessDenied": entry(
        "Access to the mailbox {address} was denied.",
        "For the client secret flow, check the app's scope (RBAC for Applications or an application access "
        "policy); for the user name/password flow give {username} Full Access to {address} "
        "(Add-MailboxPermission).", None, "mail"),
    "ErrorSendAsDenied": entry(
        "The account may not send as {address}.",
        "Give {username} the Send As right on {address} (Add-RecipientPermission {address} -AccessRights "
        "SendAs -Trustee {username}), or send from the account's own address.", None, "mail"),
    "ErrorServerBusy": BUSY, "http.429": BUSY,
    "ErrorMessageSizeExceeded": entry(
        "The message is larger than Exchange takes over EWS: one request carries at most about 64 MB, and "
        "the message goes into it base64-encoded (a third larger), so about 48 MB of mail.",
        "Send it smaller (large files as links), or set [outgoing] protocol = \"graph\": Microsoft Graph "
        "takes attachments up to 150 MB through upload sessions.", None, "mail"),
    "ErrorMailRecipientNotFound": entry(
        "The test recipient {address} was not found.",
        "Check the spelling of the test recipient's address.", None, "mail"),
    # -- Graph ---------------------------------------------------------
    "graph.ErrorAccessDenied": entry(
        "Microsoft Graph denied access to {address} (403 ErrorAccessDenied): the Mail.Send / Mail.ReadWrite "
        "permission is missing or not consented, or the app is scoped away from this mailbox (RBAC for "
        "Applications or an application access policy).",
        "In API permissions of app {client_id} add Microsoft Graph > Mail.Send and Mail.ReadWrite (type "
        "Application for the client secret or certificate flow, Delegated for a user sign-in) and grant admin "
        "consent. If they are there, ask the Exchange admin to include {address} in the app's scope "
        "(Test-ServicePrincipalAuthorization / Get-ApplicationAccessPolicy).", PERMS, "registration"),
    "graph.large_attachment": entry(
        "Microsoft Graph denied access to {address} (403) while attaching a large file: mail with "
        "attachments of 3 MB or more is sent as a draft with an upload session, and that needs the "
        "{permission} permission (besides Mail.Send).",
        "In API permissions of app {client_id} add Microsoft Graph > {permission} (type Application for the "
        "client secret or certificate flow, Delegated for a user sign-in) and grant admin consent; or send "
        "attachments under 3 MB (all together up to 3 MB).", PERMS, "registration"),
    "graph.draft": entry(
        "Microsoft Graph denied access to {address} (403) while writing a draft: the relay sends each message "
        "as a draft first and then sends the draft, so that it goes out exactly once, and drafts need the "
        "{permission} permission (besides Mail.Send).",
        "In API permissions of app {client_id} add Microsoft Graph > {permission} (type Application for the "
        "client secret or certificate flow, Delegated for a user sign-in) and grant admin consent; or let the "
        "relay send over SMTP ([outgoing] protocol = \"smtp\": at least once instead of exactly once).",
        PERMS, "registration"),
    "graph.401": entry(
        "Microsoft Graph refused the token (401 InvalidAuthenticationToken).",
        "Check " + CLOUD_CHOICE + " and the API permissions and admin consent of app "
        "{client_id}; test again to get a new token.", PERMS, "registration"),
    "MailboxNotEnabledForRESTAPI": entry(
        "{address} has no cloud mailbox (it may be on-premises, inactive or unlicensed).",
        "Use an address with an Exchange Online mailbox (Microsoft 365 admin center > Users > Licenses), or "
        "correct the address.", None, "mail"),
    "ErrorInvalidUser": entry(
        "{address} is not a valid user with a mailbox in this tenant.",
        "Check the spelling, or use an address with an Exchange Online mailbox.", None, "mail"),
}
