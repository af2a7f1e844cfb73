"""The EWS retirement guardrail: what choosing EWS means for this config today.

Dates and phase sentences come from ``assets/guide_steps.toml``
(``[ews_retirement]``, via ``wizard.guide.steps``):
- before ``blocked_from`` (2026-10-01): EWS in Exchange Online works; warn with the dates;
- from ``blocked_from`` until ``shutdown`` (2027-04-01): EWS is blocked unless the
  tenant allows this app (``Set-OrganizationConfig -EwsEnabled $true
  -EwsAllowedAppIDs ...``); warn with the exact command;
- from ``shutdown``: EWS in Exchange Online is off for good; an error, with the
  Graph (or IMAP/SMTP) alternative.
Exchange Server on-premises (``microsoft.exchange = "on_premises"``) keeps EWS:
no warning. A config that does not use EWS gets no warning either.

No Textual here; the TUI, ``check`` and config validation call ``ews_status``
or ``ews_problem``.
"""

from __future__ import annotations

from datetime import date

OK, WARN, ERROR = "ok", "warn", "error"


def uses_ews(cfg) -> bool:
    return "ews" in (cfg.outgoing.protocol, cfg.incoming.protocol)


def ews_on_exchange_online(cfg) -> bool:
    return uses_ews(cfg) and cfg.microsoft.exchange != "on_premises"


def allow_list_commands(client_id: str) -> str:
    """The PowerShell that puts ``client_id`` on the tenant's EWS allow list
    without dropping the apps already on it (the parameter replaces the list)."""
    cid = client_id or "<Application (client) ID>"
    return "\n".join([
        "$appId = \"%s\"" % cid,
        "$current = (Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy).EwsAllowedAppIDs",
        "$current    # keep this output: it is the list to restore if something goes wrong",
        "$list = @((@($current) -join \",\") -split \",\" | ForEach-Object { $_.Trim() } | Where-Object { $_ })",
        "if ($list -notcontains $appId) { $list += $appId }",
        "Set-OrganizationConfig -EwsEnabled $true -EwsAllowedAppIDs ($list -join \",\")",
    ])


def _graph_alternative(cfg) -> str:
    if cfg.system == "monitor_g5":
        return ("Monitor G5 talks to Exchange Online over EWS only: ask Monitor for a version that uses "
                "Microsoft Graph. In mailwizard set outgoing.protocol = \"graph\" (Graph Mail.Send / Mail.ReadWrite application "
                "permissions) once the system supports it.")
    return ("Use Microsoft Graph instead (outgoing.protocol = \"graph\", application permissions Mail.Send / "
            "Mail.ReadWrite), or IMAP/SMTP with OAuth (XOAUTH2) where the system only speaks those.")


def ews_status(cfg, today: date | None = None) -> tuple[str, str]:
    """(level, message): level "ok" (nothing to say: no EWS, or Exchange on-premises),
    "warn" (EWS on Exchange Online before the shutdown) or "error" (after it)."""
    from wizard.guide.steps import load_guide

    if not uses_ews(cfg):
        return OK, ""
    if cfg.microsoft.exchange == "on_premises":
        return OK, "Exchange Server on-premises keeps EWS: the Exchange Online retirement does not apply."
    today = today or date.today()
    r = load_guide().ews_retirement
    phase = r.phase(today)
    sentence = r.sentence(today)
    cid = cfg.microsoft.client_id or "<Application (client) ID>"
    if phase == "before":
        return WARN, (f"{sentence} Ask the tenant admin to put this app ({cid}) on the EWS allow list before "
                      f"then (`mailwizard export runbook`), and plan the move to {r.recommended}.")
    if phase == "during":
        return WARN, (f"{sentence} The tenant admin must allow this app ({cid}), in Exchange Online PowerShell "
                      f"(reads the current list first, because -EwsAllowedAppIDs replaces it; changes can take "
                      f"up to 24 h):\n{allow_list_commands(cfg.microsoft.client_id)}\n"
                      f"A blocked call gets HTTP 403 with X-EWS-Policy-Reason. Plan the move to {r.recommended} now.")
    return ERROR, f"{sentence} {_graph_alternative(cfg)}"


def ews_problem(cfg, today: date | None = None, locate=lambda key: None):
    """The guardrail as a ``wizard.config.schema.Problem`` (warning or error) on the
    protocol field, or None: for ``validate()`` and the check's config step."""
    from wizard.config.schema import Problem

    level, message = ews_status(cfg, today)
    if level == OK:
        return None
    fld = "outgoing.protocol" if cfg.outgoing.protocol == "ews" else "incoming.protocol"
    return Problem(fld, message, locate(fld), warning=(level == WARN))
