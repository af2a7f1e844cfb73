"""`mailwizard register`'s refusals as Diagnoses: ``for_signin`` rewords a failed
admin sign-in for the bootstrap client; ``graph_refusal`` turns a Graph error of
one registration step into the catalogue's entry (texts in ``registration_codes``)."""

from __future__ import annotations

from wizard.diagnosis.catalogue import Diagnosis, lookup
from wizard.config.clouds import GRAPH_CLI_CLIENT_ID
from wizard.diagnosis.registration_codes import SIGNIN

ADMIN_CONSENT_URL = "{authority}/{tenant}/adminconsent?client_id={client_id}"


def _bootstrap_name(client_id: str) -> str:
    return "Microsoft Graph Command Line Tools" if client_id.lower() == GRAPH_CLI_CLIENT_ID else f"the app {client_id}"


def for_signin(d: Diagnosis, client_id: str) -> Diagnosis:
    """Registration wording for a failed admin sign-in with the bootstrap client ``client_id``."""
    entry = SIGNIN.get(d.code)
    if entry is not None:
        cause, fix, guide, screen = entry
        d.cause, d.fix = cause.format(bootstrap=_bootstrap_name(client_id)), fix
        d.guide_step, d.screen = guide, screen
    return d


def graph_refusal(step: str, status: int, code: str, message: str, *, resource: str = "",
                  guide_step: str | None = None) -> Diagnosis:
    """The Diagnosis for Graph's error ``code`` (HTTP ``status``) on registration step ``step``
    ("lookup", "app", "sp", "app_roles", "grants", "secret", "certificate")."""
    msg = message or code
    if step == "secret" and ("policy" in msg.lower() or "CredentialTypeNotAllowed" in code
                             or "lifetime" in msg.lower()):
        ours = "register.secrets_blocked"
    elif status == 403 and code == "Authorization_RequestDenied":
        if step == "app_roles" and resource == "Microsoft Graph":
            ours = "register.graph_roles_denied"
        elif step in ("app_roles", "grants"):
            ours = "register.consent_denied"
        else:
            ours = "register.create_denied"
    elif code == "permission.not_found":
        ours = "register.permission_missing"
    elif code in ("Request_ResourceNotFound", "NoBackingApplicationObject", "replication"):
        ours = "register.replication"
    else:
        return Diagnosis(f"graph.{code or status}", f"Microsoft Graph answered {status} {code}: {msg}",
                         "Run `mailwizard register` again; if it fails the same way, do this step in the portal "
                         "(the guide step shown) and report the message.", guide_step, "registration", msg)
    d = lookup(ours, resource=resource or None, permission=msg if code == "permission.not_found" else None,
               service_message=msg)
    if guide_step:
        d.guide_step = guide_step       # the flow's own step (guides 001, 002, 004 number them differently)
    return d


def admin_consent_url(authority_host: str, tenant_id: str, client_id: str) -> str:
    """The URL an admin opens to grant the app's configured permissions for the organisation."""
    return ADMIN_CONSENT_URL.format(authority=authority_host.rstrip("/"), tenant=tenant_id or "organizations",
                                    client_id=client_id)
