"""Identity platform (AADSTS) codes beyond the setup guides, and what an
unknown code's family says.

``PEER_ENTRIES`` are the codes users of peer tools meet most (their issue
trackers, 2024-2026; see the shared docs' microsoft-365.md), each checked
against Microsoft's "Microsoft Entra authentication and authorization error
codes" page (or, for AADSTS500113 and AADSTS1002012, which that page does not
list, the service's own message). Each is ``(cause, fix, guide, screen)``; guide
is a key of ``catalogue.GUIDES`` (the flow-dependent step in guides 001/002) or
None where no guide step applies. ``catalogue`` turns them into entries.

``family(code)`` explains a code the catalogue has no entry for from its
leading digits. Microsoft's page does not define ranges; the families below
summarise the codes that page lists under each prefix (e.g. AADSTS53000-53011
and 530032-530035 are all Conditional Access and device policies, AADSTS65001-
650057 consent and the app's requested permissions, AADSTS80001-81012 the
on-premises sign-in agents and Seamless SSO).

Data only: no import from the rest of the package.
"""

from __future__ import annotations

import re

# Where the cloud is chosen, for the fixes that ask to check it: the field of stage 1 of the
# wizard (screens/target.py) and its key in the config.
CLOUD_CHOICE = ("the Microsoft cloud ('Microsoft cloud' on stage 1 of the wizard, or microsoft.cloud in the "
                "config: global, US Government or China)")

# -- the codes peer tools meet most -----------------------------------------------------------

PEER_ENTRIES: dict[str, tuple[str, str, str | None, str | None]] = {
    "AADSTS500113": (
        "App {client_id} has no redirect URI (reply address) registered, and the sign-in went through the "
        "browser, which must return to one. mailwizard's own flows need none; a system that signs in in a "
        "browser (such as Efecte ESM's authorize endpoint) does.",
        "In App registrations > the app > Authentication, add the redirect URI that system uses (Add a "
        "platform; for a desktop or public client: Mobile and desktop applications, "
        "https://login.microsoftonline.com/common/oauth2/nativeclient, as in the guide).",
        "redirect", "registration"),
    "AADSTS50011": (
        "The redirect URI (reply address) the sign-in asked to return to does not match any of those "
        "registered for app {client_id}; they must match exactly (scheme, host, path, trailing slash).",
        "Compare the redirect URI in the message below with App registrations > the app > Authentication, "
        "and add that exact URI there or correct it in the system that signs in.",
        "redirect", "registration"),
    "AADSTS900971": (
        "The sign-in request named no redirect URI (reply address) to return to.",
        "Set the redirect URI in the OAuth settings of the system that signs in, and register the same URI "
        "in App registrations > the app > Authentication.",
        "redirect", "registration"),
    "AADSTS70003": (
        "The sign-in asked for a grant type the identity platform does not support for this request "
        "(UnsupportedGrantType).",
        "The system that signs in uses the wrong flow or token endpoint: it must post to "
        "{authority}/{tenant_id}/oauth2/v2.0/token with the flow chosen here. If you see this with "
        "mailwizard itself, please report it with the message below.",
        None, "target"),
    "AADSTS700025": (
        "App {client_id} is a public client ('Allow public client flows' is Yes), so the sign-in must not "
        "send a client secret or certificate, but it did.",
        "For the client secret flow set 'Allow public client flows' to No on the app's Authentication page; "
        "for the user name/password or device code flow leave it Yes and send no secret.",
        "public", "registration"),
    "AADSTS7000112": (
        "The application {client_id} is disabled in this tenant, so nobody can sign in to it.",
        "A tenant admin opens Entra ID > Enterprise applications > the app > Properties and sets 'Enabled "
        "for users to sign-in?' to Yes, after finding out why it was switched off.",
        None, "registration"),
    "AADSTS1002012": (
        "The client secret (or certificate) flow asked for a scope without '/.default': app-only sign-ins may "
        "only ask for '{resource}/.default', the permissions already granted to the app.",
        "Ask for '{resource}/.default' and give the permissions in API permissions with admin consent, not in "
        "the request. mailwizard asks so itself: if you see this with it, check " + CLOUD_CHOICE
        + " and report it.",
        "perms", "target"),
    "AADSTS65002": (
        "The Application (client) ID {client_id} belongs to an application of Microsoft's own; such apps get "
        "tokens only for the APIs that pre-authorized them, so their ID cannot be borrowed to send mail.",
        "Register an app of your own in the tenant and use its Application (client) ID.",
        "ids", "ids"),
    "AADSTS65004": (
        "The user {username} declined the consent prompt of app {client_id}.",
        "Sign in again and accept the permissions, or have a tenant admin click 'Grant admin consent' in API "
        "permissions so no user is asked.",
        "consent", "registration"),
    "AADSTS90094": (
        "Administrator consent is required: app {client_id} asks for permissions that only an admin may "
        "consent to, or users may not consent to apps in this tenant.",
        "A tenant admin clicks 'Grant admin consent' in API permissions of app {client_id} and checks that "
        "every status icon turns green.",
        "consent", "registration"),
    "AADSTS50105": (
        "The account {username} is not assigned to app {client_id}, and the app only lets assigned users "
        "sign in ('Assignment required?' is Yes).",
        "A tenant admin adds {username} (or a group it is in) in Entra ID > Enterprise applications > the "
        "app > Users and groups, or sets 'Assignment required?' to No in its Properties.",
        "users", "ids"),
    "AADSTS700082": (
        "The saved sign-in (refresh token) expired because it was not used for too long (90 days by "
        "default): a system that signs in as a user stops quietly this way.",
        "Sign in again (`mailwizard login` for the device code flow, or test again for user name/password). "
        "Then let `mailwizard check` or `poll` run regularly (daily from cron or a timer) so the sign-in "
        "stays in use.",
        None, "ids"),
    "AADSTS70043": (
        "The saved sign-in (refresh token) is no longer accepted: a Conditional Access sign-in frequency "
        "policy makes {username} sign in again after a set time.",
        "Sign in again (`mailwizard login`). For a system that runs unattended, ask the tenant admin to "
        "exclude this account from the sign-in frequency policy, or use an app-only flow (client secret or "
        "certificate), which has no user sign-in to repeat.",
        None, "ids"),
    "AADSTS50020": (
        "The account {username} comes from another identity provider or organisation (a personal Microsoft "
        "account or a guest's home tenant) and does not exist in tenant {tenant_id}.",
        "Sign in with an account of this tenant (Entra ID > Users), or have the admin invite it as a guest; "
        "check that the Directory (tenant) ID is the tenant the account belongs to.",
        "users", "ids"),
    "AADSTS53000": (
        "A Conditional Access policy requires a compliant (managed) device, and this computer is not one.",
        "Ask the tenant admin to exclude this service account from the device policy, or to enroll this "
        "computer in device management; an app-only flow (client secret or certificate) is not bound to a "
        "device.",
        None, "ids"),
}


# -- families of codes the catalogue does not know ---------------------------------------------

# (prefix of the digits, what codes of it are about, what to do, guide key, screen); the longest
# matching prefix wins.
FAMILIES: list[tuple[str, str, str, str | None, str | None]] = [
    ("1600", "the account chosen and the tenant it belongs to",
     "Sign in with an account of this tenant, or have the admin invite it as a guest.", "users", "ids"),
    ("20", "the tenant's federated identity provider (such as AD FS)",
     "Ask the admin of that identity provider; the tenant's own settings are not the cause.", None, None),
    ("40", "the tenant's federated identity provider (such as AD FS)",
     "Ask the admin of that identity provider; the tenant's own settings are not the cause.", None, None),
    ("5", "the signing-in account and its sign-in: user name and password, a locked, disabled or "
          "unknown account, multi-factor authentication, the session, or a tenant policy",
     "Check the user name and password, and ask the tenant admin to look this sign-in up in Entra ID > "
     "Sign-in logs (search by the trace ID below).", None, "ids"),
    ("53", "Conditional Access and device policies of the tenant",
     "Ask the tenant admin to look this sign-in up in Entra ID > Sign-in logs (by the trace ID below) and "
     "check which Conditional Access policy applied; an app-only flow (client secret or certificate) avoids "
     "most user policies.", None, "ids"),
    ("6", "consent and the permissions the app asks for",
     "Check API permissions of app {client_id} and click 'Grant admin consent' until every status is green.",
     "consent", "registration"),
    ("7", "the app registration and the OAuth request: client ID, client secret or certificate, grant type, "
          "scope, saved sign-ins (refresh tokens) and device codes",
     "Check the Application (client) ID, the secret or certificate, and the app's Authentication and API "
     "permissions pages.", "ids", "ids"),
    ("75", "SAML single sign-on, which mailwizard does not use", "Check the app's single sign-on settings "
     "in Entra ID > Enterprise applications; for mail use the flows offered here.", None, "target"),
    ("76", "SAML single sign-on, which mailwizard does not use", "Check the app's single sign-on settings "
     "in Entra ID > Enterprise applications; for mail use the flows offered here.", None, "target"),
    ("8", "the tenant's on-premises sign-in: pass-through authentication agents, Active Directory and "
          "Seamless SSO",
     "Ask the tenant admin to check the authentication agents and Active Directory (their logs name the "
     "cause).", None, None),
    ("9", "the request itself, the tenant or the Microsoft cloud: tenant not found, wrong cloud, a malformed "
          "request, admin consent, or the service being busy",
     "Check the Directory (tenant) ID and " + CLOUD_CHOICE + "; if those are right, test again in "
     "a few minutes.", "ids", "ids"),
    ("12", "changing the account's password",
     "Change the password in a browser (https://mysignins.microsoft.com) or ask the admin to reset it.",
     None, "ids"),
    ("13", "Windows Hello keys and registered devices",
     "These concern sign-ins from a Windows device: check the account and the flow chosen here.",
     None, "ids"),
]

_DIGITS = re.compile(r"AADSTS(\d+)$")

# Microsoft's error lookup page per cloud (the error code page names these two; the codes are the
# same in every cloud, so the others use the global page).
ERROR_PAGES = {"china": "https://login.partner.microsoftonline.cn/error"}
ERROR_PAGE = "https://login.microsoftonline.com/error"


def error_page(code: str, cloud: str | None = None) -> str:
    """https://login.microsoftonline.com/error?code=50058 for AADSTS50058."""
    return f"{ERROR_PAGES.get(cloud or '', ERROR_PAGE)}?code={code.removeprefix('AADSTS')}"


def family(code: str) -> tuple[str, str, str, str | None, str | None] | None:
    """The family of an AADSTS code as (prefix, about, fix, guide key, screen),
    or None when the code is not AADSTS followed by digits or no family fits."""
    m = _DIGITS.match(code or "")
    if not m:
        return None
    digits = m.group(1)
    best = None
    for entry in FAMILIES:
        if digits.startswith(entry[0]) and (best is None or len(entry[0]) > len(best[0])):
            best = entry
    return best
