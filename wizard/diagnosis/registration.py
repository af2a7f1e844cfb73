"""The refusals `mailwizard register` can meet, each with its own cause, fix and
guide step: the admin's device-code sign-in with the bootstrap client
(Microsoft Graph Command Line Tools by default) and the Graph calls that do the
portal's work. Facts: docs graph-registration-and-relay.md sections A-C
(Microsoft's error-code reference, "Grant tenant-wide admin consent",
"Delegate app management", application-upsert, addPassword).

``for_signin(d, client_id)`` rewords a sign-in Diagnosis for the bootstrap
client; ``graph_refusal(step, status, code, message, ...)`` turns a Graph error
of one registration step into a Diagnosis.
"""

from __future__ import annotations

from wizard.diagnosis.catalogue import Diagnosis

GRAPH_CLI = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
ROLES_FOR_APPS = ("Application Developer, Cloud Application Administrator, Application Administrator or "
                  "Global Administrator")
ADMIN_CONSENT_URL = "{authority}/{tenant}/adminconsent?client_id={client_id}"


def _bootstrap_name(client_id: str) -> str:
    return "Microsoft Graph Command Line Tools" if client_id.lower() == GRAPH_CLI else f"the app {client_id}"


def for_signin(d: Diagnosis, client_id: str) -> Diagnosis:
    """Registration wording for a failed admin sign-in with the bootstrap client ``client_id``."""
    name = _bootstrap_name(client_id)
    own = ("register your organisation's own public client app with the delegated permissions "
           "Application.ReadWrite.All, AppRoleAssignment.ReadWrite.All and DelegatedPermissionGrant.ReadWrite.All "
           "(admin consent granted, 'Allow public client flows' = Yes) and run again with --admin-client-id <its ID>")
    code = d.code
    if code in ("AADSTS53003", "AADSTS530033", "AADSTS530035"):
        d.cause = (f"Conditional Access (or security defaults) blocked the device code sign-in with {name}. "
                   "Microsoft recommends blocking the device code flow where it is not needed, and many tenants do.")
        d.fix = ("Ask the tenant admin to allow this one sign-in (exclude the admin account or this app from the "
                 "'Authentication flows' policy for the session), or run `mailwizard register` on a device the "
                 "policy allows; otherwise follow the guide's portal steps by hand (`mailwizard export runbook` "
                 "and the wizard's stage 2).")
        d.guide_step = "Azure step 1"
    elif code == "AADSTS90094":
        d.cause = ("The account that signed in may not consent to Application.ReadWrite.All, "
                   "AppRoleAssignment.ReadWrite.All and DelegatedPermissionGrant.ReadWrite.All: these need an admin "
                   f"(AdminConsentRequired) for {name}.")
        d.fix = ("Sign in as a Global Administrator, Privileged Role Administrator or Cloud Application "
                 "Administrator, or ask one to run `mailwizard register` (or to send you the portal steps' result). "
                 "A Cloud Application Administrator can register and consent everything except Microsoft Graph "
                 "application permissions.")
        d.guide_step = "Azure step 1"
    elif code == "AADSTS65002":
        d.cause = (f"{name} is a Microsoft (first-party) app that is not preauthorized for the Graph scopes "
                   "register asks for; Microsoft blocks reusing its app IDs for other APIs.")
        d.fix = (f"Use Microsoft Graph Command Line Tools ({GRAPH_CLI}, the default) or {own}.")
        d.guide_step = "Azure step 1"
    elif code == "AADSTS50105":
        d.cause = (f"The tenant requires user assignment for {name}, and the account that signed in is not "
                   "assigned to it.")
        d.fix = (f"Ask an admin to assign you to '{name}' under Entra ID > Enterprise applications > Users and "
                 f"groups, or {own}.")
        d.guide_step = "Azure step 1"
    elif code == "AADSTS7000112":
        d.cause = f"{name} is disabled in this tenant (its enterprise application has 'Enabled for users to sign-in' = No)."
        d.fix = (f"Ask an admin to enable it under Entra ID > Enterprise applications > {name} > Properties, "
                 f"or {own}.")
        d.guide_step = "Azure step 1"
    elif code in ("AADSTS65001", "AADSTS65004"):
        d.cause = f"Consent to {name}'s scopes was not given at sign-in."
        d.fix = ("Sign in again and accept the permissions, ticking 'Consent on behalf of your organization' if "
                 "you are an admin.")
        d.guide_step = "Azure step 1"
    return d


def graph_refusal(step: str, status: int, code: str, message: str, *, resource: str = "",
                  cfg=None, client_id: str = "", guide_step: str | None = None) -> Diagnosis:
    """The Diagnosis for Graph's error ``code`` (HTTP ``status``) on registration step ``step``
    ("app", "sp", "app_roles", "grants", "secret", "certificate", "lookup")."""
    msg = message or code
    if step == "secret" and ("policy" in msg.lower() or "CredentialTypeNotAllowed" in code):
        return Diagnosis(
            "register.secrets_blocked",
            "The tenant's app management policy does not allow client secrets on new apps (passwordAddition "
            "restricted) or caps their lifetime below the one asked for. The service said: " + msg,
            "Use the certificate flow (`mailwizard cert`, then `register` again with auth.flow = \"certificate\"), "
            "pick a shorter expiry (--secret-months), or ask the admin for an exception for this app "
            "(Entra ID > App management policies).",
            guide_step or "Azure steps 20-22", "registration", msg)
    if status == 403 and code == "Authorization_RequestDenied":
        if step == "app_roles" and resource == "Microsoft Graph":
            return Diagnosis(
                "register.graph_roles_denied",
                "Granting Microsoft Graph application permissions (e.g. Mail.Send as an application) needs a "
                "Privileged Role Administrator or Global Administrator; the account that signed in is not one "
                "(a Cloud Application Administrator can grant every other consent).",
                "Ask a Privileged Role Administrator or Global Administrator to run `mailwizard register` again "
                "(it completes what is missing), or to open the admin-consent URL below and accept.",
                guide_step or "Azure steps 15-16", "registration", msg)
        if step in ("app_roles", "grants"):
            return Diagnosis(
                "register.consent_denied",
                "The account that signed in may not grant admin consent: it needs Cloud Application "
                "Administrator, Application Administrator, Privileged Role Administrator or Global Administrator.",
                "Ask an admin to run `mailwizard register` again (it completes what is missing) or to open the "
                "admin-consent URL below and accept.",
                guide_step or "Azure steps 15-16", "registration", msg)
        return Diagnosis(
            "register.create_denied",
            "The account that signed in may not register applications: either 'Users can register "
            "applications' is No in this tenant and it holds none of the roles " + ROLES_FOR_APPS + ", or it is "
            "not an owner of the existing app.",
            "Ask an admin to run `mailwizard register`, or to give you the Application Developer role (you then "
            "own the apps you create).",
            guide_step or "Azure steps 4-7", "registration", msg)
    if code == "permission.not_found":
        return Diagnosis(
            "register.permission_missing",
            f"The API {resource} in this tenant offers no permission named {msg}.",
            "Check that the tenant has Exchange Online (a licence) and that the config's protocols are right; "
            "then run again.", guide_step or "Azure steps 13-14", "registration", msg)
    if code in ("Request_ResourceNotFound", "NoBackingApplicationObject", "replication"):
        return Diagnosis(
            "register.replication",
            "Entra ID had not yet replicated the new app or service principal when the next step needed it, "
            "and it was still missing after the retries.",
            "Wait a few minutes and run `mailwizard register` again: it finds what exists and completes the rest.",
            guide_step, "registration", msg)
    return Diagnosis(f"graph.{code or status}", f"Microsoft Graph answered {status} {code}: {msg}",
                     "Run `mailwizard register` again; if it fails the same way, do this step in the portal "
                     "(the guide step shown) and report the message.", guide_step, "registration", msg)


def admin_consent_url(authority_host: str, tenant_id: str, client_id: str) -> str:
    """The URL an admin opens to grant the app's configured permissions for the organisation."""
    return ADMIN_CONSENT_URL.format(authority=authority_host.rstrip("/"), tenant=tenant_id or "organizations",
                                    client_id=client_id)
