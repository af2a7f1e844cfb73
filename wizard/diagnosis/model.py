"""The catalogue's vocabulary: a Diagnosis (what went wrong, what to do, where
in the guide, which screen), the error that carries one, an Entry of the
catalogue, the guides' step numbers the entries point to, and the entries
several services share."""

from __future__ import annotations

from dataclasses import dataclass

# Guide step numbers differ between the two Azure guides: guide 001 (client
# secret, app-only) and the first part of guide 002 (user name/password).
IDS = {"client_secret": "Azure step 9", "password": "Azure step 8"}
PERMS = {"client_secret": "Azure steps 13-16", "password": "Azure steps 12-15"}
CONSENT = {"client_secret": "Azure steps 15-16", "password": "Azure steps 14-15"}
PUBLIC = {"client_secret": "Azure steps 17-19", "password": "Azure steps 16-18"}
SECRET = "Azure steps 20-22"
USERS = {"client_secret": "Azure step 23", "password": "Azure step 19"}
REDIRECT = {"client_secret": "Azure step 6", "password": "Azure step 5"}   # the registration page's Redirect URI
# The guide keys wizard/aadsts.py names its steps by.
GUIDES = {"ids": IDS, "perms": PERMS, "consent": CONSENT, "public": PUBLIC, "secret": SECRET,
          "users": USERS, "redirect": REDIRECT}

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


def entry(cause, fix, guide=None, screen=None) -> Entry:
    return Entry(cause, fix, guide, screen)


MFA = entry(
    "The account {username} must complete multi-factor authentication (or another sign-in challenge). "
    "The user name/password flow cannot answer such a challenge.",
    "Use the client secret flow (app-only) instead, or a service account without MFA that the tenant "
    "admin excludes from the MFA policy on purpose.",
    None, "ids")
CA = entry(
    "A Conditional Access policy in the tenant blocked this sign-in.",
    "Ask the tenant admin to check Entra ID > Sign-in logs for this sign-in and the policy that blocked it; "
    "the user name/password flow is often blocked by policy, so the client secret flow is the usual way out.",
    None, "ids")
ACCOUNT = entry(
    "The account {username} cannot sign in: it is disabled, locked, or its password has expired.",
    "Ask the tenant admin to enable or unlock the account, or sign in once in a browser to set a new "
    "password, then type the new password here.",
    None, "ids")
BUSY = entry(
    "The service is throttling this client (too many requests in a short time).",
    "Wait {retry_after} and test again; if it keeps happening, lower the polling frequency.",
    None, None)
