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
them. The entries live by service in ``codes_identity`` (AADSTS),
``codes_exchange`` (EWS, Graph), ``codes_mail`` (SMTP, IMAP) and ``codes_local``
(config, network, TLS, claims); ``classify`` turns MSAL results, exchangelib
exceptions and network errors into codes; this module joins the entries and
fills them in (``lookup``).
"""

from __future__ import annotations

import re

from wizard.diagnosis.aadsts import error_page, family

from wizard.diagnosis.codes_exchange import EXCHANGE
from wizard.diagnosis.codes_identity import IDENTITY
from wizard.diagnosis.codes_local import LOCAL
from wizard.diagnosis.codes_mail import MAIL
from wizard.diagnosis.model import (EWS_SHUTDOWN_DATE, GUIDES, Diagnosis, DiagnosisError,  # noqa: F401  (the vocabulary
                                    Entry)                                                  # is imported from here)

CATALOGUE: dict[str, Entry] = {**IDENTITY, **EXCHANGE, **MAIL, **LOCAL}

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
