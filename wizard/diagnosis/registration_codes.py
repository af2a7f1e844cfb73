"""The catalogue entries of `mailwizard register`'s refusals (data only: the
catalogue merges them; ``wizard.diagnosis.registration`` picks the entry for a
failed sign-in or Graph call). Each is ``(cause, fix, guide step, screen)``.

Facts: docs graph-registration-and-relay.md sections A-C (Microsoft's error-code
reference, "Grant tenant-wide admin consent", "Delegate app management",
application-upsert, addPassword); the 403 variant of the replication error is
from public issue threads (terraform-provider-azuread #992, azure-powershell #29530).
"""

from wizard.config.clouds import GRAPH_CLI_CLIENT_ID

ROLES_FOR_APPS = ("Application Developer, Cloud Application Administrator, Application Administrator or "
                  "Global Administrator")
_OWN = ("register your organisation's own public client app with the delegated permissions "
        "Application.ReadWrite.All, AppRoleAssignment.ReadWrite.All and DelegatedPermissionGrant.ReadWrite.All "
        "(admin consent granted, 'Allow public client flows' = Yes) and run again with --admin-client-id <its ID>")

# The admin's device-code sign-in with the bootstrap client ({bootstrap}: its name).
SIGNIN: dict[str, tuple[str, str, str | None, str | None]] = {
    "AADSTS53003": (
        "Conditional Access (or security defaults) blocked the device code sign-in with {bootstrap}. Microsoft "
        "recommends blocking the device code flow where it is not needed, and many tenants do.",
        "Ask the tenant admin to allow this one sign-in (exclude the admin account or this app from the "
        "'Authentication flows' policy for the session), or run `mailwizard register` on a device the policy "
        "allows; otherwise follow the guide's portal steps by hand (`mailwizard export runbook` and the "
        "wizard's stage 2).", "Azure step 1", "registration"),
    "AADSTS90094": (
        "The account that signed in may not consent to Application.ReadWrite.All, AppRoleAssignment.ReadWrite.All "
        "and DelegatedPermissionGrant.ReadWrite.All for {bootstrap}: these need an admin (AdminConsentRequired).",
        "Sign in as a Global Administrator, Privileged Role Administrator or Cloud Application Administrator, or "
        "ask one to run `mailwizard register`. A Cloud Application Administrator can register and consent "
        "everything except Microsoft Graph application permissions.", "Azure step 1", "registration"),
    "AADSTS65002": (
        "{bootstrap} is a Microsoft (first-party) app that is not preauthorized for the Graph scopes register asks "
        "for; Microsoft blocks reusing its app IDs for other APIs.",
        f"Use Microsoft Graph Command Line Tools ({GRAPH_CLI_CLIENT_ID}, the default) or {_OWN}.", "Azure step 1",
        "registration"),
    "AADSTS50105": (
        "The tenant requires user assignment for {bootstrap}, and the account that signed in is not assigned to it.",
        "Ask an admin to assign you to it under Entra ID > Enterprise applications > Users and groups, or "
        f"{_OWN}.", "Azure step 1", "registration"),
    "AADSTS7000112": (
        "{bootstrap} is disabled in this tenant (its enterprise application has 'Enabled for users to sign-in' = No).",
        f"Ask an admin to enable it under Entra ID > Enterprise applications > Properties, or {_OWN}.",
        "Azure step 1", "registration"),
    "AADSTS65001": (
        "Consent to {bootstrap}'s scopes was not given at sign-in.",
        "Sign in again and accept the permissions, ticking 'Consent on behalf of your organization' if you are an "
        "admin.", "Azure step 1", "registration"),
}
SIGNIN["AADSTS530033"] = SIGNIN["AADSTS530035"] = SIGNIN["AADSTS53003"]
SIGNIN["AADSTS65004"] = SIGNIN["AADSTS65001"]

# The Graph calls (catalogue codes of their own).
ENTRIES: dict[str, tuple[str, str, str | None, str | None]] = {
    "register.create_denied": (
        "The account that signed in may not register applications: either 'Users can register applications' is "
        f"No in this tenant and it holds none of the roles {ROLES_FOR_APPS}, or it is not an owner of the "
        "existing app.",
        "Ask an admin to run `mailwizard register`, or to give you the Application Developer role (you then own "
        "the apps you create).", "Azure steps 4-7", "registration"),
    "register.consent_denied": (
        "The account that signed in may not grant admin consent: it needs Cloud Application Administrator, "
        "Application Administrator, Privileged Role Administrator or Global Administrator.",
        "Ask an admin to run `mailwizard register` again (it completes what is missing) or to open the "
        "admin-consent URL and accept.", "Azure steps 15-16", "registration"),
    "register.graph_roles_denied": (
        "Granting Microsoft Graph application permissions (e.g. Mail.Send as an application) needs a Privileged "
        "Role Administrator or Global Administrator; the account that signed in is not one (a Cloud Application "
        "Administrator can grant every other consent).",
        "Ask a Privileged Role Administrator or Global Administrator to run `mailwizard register` again (it "
        "completes what is missing), or to open the admin-consent URL and accept.", "Azure steps 15-16",
        "registration"),
    "register.secrets_blocked": (
        "The tenant's app management policy does not allow client secrets on this app (passwordAddition "
        "restricted) or caps their lifetime below the one asked for.",
        "Use the certificate flow (set auth.flow = \"certificate\" and run `mailwizard register` again: it makes "
        "the key and uploads the certificate), pick a shorter lifetime (--secret-months), or ask the admin for "
        "an exception for this app (Entra ID > App management policies).", "Azure steps 20-22", "registration"),
    "register.permission_missing": (
        "The API {resource} in this tenant offers no permission named {permission}.",
        "Check that the tenant has Exchange Online (a licence) and that the config's protocols are right; then "
        "run again.", "Azure steps 13-14", "registration"),
    "register.resource_missing": (
        "The tenant has no service principal for {resource}, so its permissions cannot be granted: the service "
        "is not provisioned in this tenant (no Exchange Online licence yet) or the config names the wrong cloud.",
        "Check the tenant's subscriptions (Microsoft 365 admin center > Billing > Your products) and the config's "
        "microsoft.cloud; then run again.", "Azure steps 13-14", "registration"),
    "register.replication": (
        "Entra ID had not yet replicated the new app or service principal when the next step needed it, and it "
        "was still missing after the retries.",
        "Wait a few minutes and run `mailwizard register` again: it finds what exists and completes the rest.",
        None, "registration"),
    "register.secret_env": (
        "The config reads the client secret from an environment variable, which register cannot set.",
        "Remove auth.client_secret (or set it to file:PATH) and run again; then set the variable from the file.",
        "Azure steps 20-22", "ids"),
    "register.certificate_keys": (
        "The app has certificates whose public keys Graph did not return, so replacing the list here would "
        "remove them.",
        "Upload the .cer file next to the key on the app's Certificates & secrets page, then run again.",
        "Azure steps 20-22", "registration"),
}
