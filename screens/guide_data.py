"""Access to the guide data (wizard.guide.steps) with a small fallback.

The wizard keeps working when the guide data cannot be loaded: each stage then
shows its built-in title and intro and an empty step list.
"""

from __future__ import annotations

from datetime import date

STAGES = ("target", "registration", "ids", "mail", "test", "save")
WIZARD_FLOWS = ("client_secret", "password")   # the two flows the guides set up
OFFERED_FLOWS = WIZARD_FLOWS + ("certificate", "device_code")   # and the safer ones beyond them

FALLBACK = {
    "target": ("System and sign-in method",
               "Choose the system you are connecting and how it signs in to Microsoft 365. "
               "Read the limitations of each method first: they decide which one fits."),
    "registration": ("Register the app in Azure",
                     "Register an application in the Azure portal (or Entra admin center) "
                     "and give it the permissions below. Follow the steps, then come back."),
    "ids": ("Application and tenant IDs",
            "Copy the IDs from the app's Overview page and the sign-in values. "
            "Each value is checked as you type."),
    "mail": ("Mail server and mailboxes",
             "Tell the wizard which server and mailboxes the system uses. "
             "The test recipient gets one test message."),
    "test": ("Connection test",
             "The wizard now signs in and talks to the mail server exactly as the system will. "
             "A failed step says what went wrong, how to fix it and which guide step to revisit."),
    "save": ("Save the configuration",
             "Check the settings below, then save them. Secrets are masked here "
             "but written in full to a file only you can read."),
}

FIELD_FALLBACK = {
    "client_id": ("Application (client) ID", "On the app's Overview page (a GUID)."),
    "tenant_id": ("Directory (tenant) ID", "On the app's Overview page (a GUID), or a verified domain."),
    "client_secret": ("Client secret Value", "Certificates & secrets: the 'Value' column, not the Secret ID."),
    "secret_expires": ("Secret expires (YYYY-MM-DD)", "The 'Expires' column next to the secret."),
    "username": ("Service account user name", "The sign-in name, user@contoso.com."),
    "password": ("Service account password", "The service account's password (no MFA possible)."),
    "server": ("Server", "Exchange Online: outlook.office365.com."),
    "port": ("Port", "443 for Exchange Online (HTTPS)."),
    "sender": ("Sender mailbox", "The mailbox the system sends from."),
    "test_recipient": ("Test recipient (optional)", "Gets one test message from the connection test."),
    "poll_minutes": ("Polling interval (minutes)", "How often the system fetches incoming mail."),
    "account_address": ("E-mail address", ""),
    "account_types": ("Types", "What the mailbox's mail is used for (Monitor-to-Monitor, CRM, ...)."),
    "account_available_to": ("Available to", ""),
}


def load() -> object | None:
    try:
        from wizard.guide.steps import load_guide
    except ImportError:
        return None
    try:
        return load_guide()
    except Exception:  # a broken guide file must not stop the wizard
        return None


def _stage(guide, stage_id: str):
    stages = getattr(guide, "stages", None) if guide is not None else None
    if isinstance(stages, dict):
        return stages.get(stage_id)
    for stage in stages or ():
        if getattr(stage, "id", None) == stage_id:
            return stage
    return None


def stage_text(guide, stage_id: str) -> tuple[str, str]:
    """(title, intro) for a stage."""
    title, intro = FALLBACK[stage_id]
    stage = _stage(guide, stage_id)
    if stage is not None:
        title = getattr(stage, "title", "") or title
        intro = getattr(stage, "intro", "") or intro
    return title, intro


# The app registration for a flow beyond the guides follows the guide flow it is
# built on (certificate: the client secret's; device code: user name & password's).
REGISTRATION_AS = {"certificate": "client_secret", "device_code": "password"}


def steps(guide, stage_id: str, flow: str, system: str) -> list:
    stage = _stage(guide, stage_id)
    if stage is None:
        return []
    if stage_id == "registration":
        flow = REGISTRATION_AS.get(flow, flow)
    try:
        return list(stage.steps_for(flow, system))
    except Exception:
        return []


def field_text(guide, name: str) -> tuple[str, str]:
    """(label, help) for a field, by its short name ('client_id')."""
    label, help_ = FIELD_FALLBACK.get(name, (name, ""))
    fields = getattr(guide, "fields", None) or {}
    info = fields.get(name) if hasattr(fields, "get") else None
    if info is not None:
        label = getattr(info, "label", "") or label
        help_ = getattr(info, "help", "") or help_
    return label, help_


def _by_id(items) -> dict:
    if isinstance(items, dict):
        return dict(items)
    return {getattr(it, "id", None): it for it in items or ()}


def flows(guide) -> dict:
    return _by_id(getattr(guide, "flows", None))


def systems(guide) -> dict:
    return _by_id(getattr(guide, "systems", None))


def ews_warning(guide, today: date | None = None) -> str:
    today = today or date.today()
    try:
        if hasattr(guide, "ews_warning"):
            return guide.ews_warning(today) or ""
        if hasattr(guide, "ews_retirement"):
            return guide.ews_retirement.sentence(today)
    except Exception:
        pass
    return ("EWS in Exchange Online is blocked from 1 October 2026 unless the tenant allows the app, "
            "and switched off for good on 1 April 2027.")


def choice_line(guide, system: str, flow: str) -> str:
    """'Monitor ERP G5 · Client secret (app-only)': short enough for one line at 80 columns."""
    from wizard.config.schema import ALL_FLOWS, SYSTEMS
    sys_label = getattr(systems(guide).get(system), "label", None) or SYSTEMS.get(system, system)
    flow_label = getattr(flows(guide).get(flow), "label", None) or ALL_FLOWS.get(flow, flow)
    return f"{sys_label} · {flow_label}"


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 5, 9, 10] -> '1-3, 5, 9-10'."""
    out: list[str] = []
    nums = sorted(set(numbers))
    start = prev = None
    for n in nums + [None]:
        if start is not None and (n is None or n != prev + 1):
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if n is not None and start is None:
            start = n
        prev = n
    return ", ".join(out)


def step_refs(steps) -> str:
    """'Guide 001: Azure steps 9, 20-22; Guide 003: System settings items 2, 4':
    the guide's step numbers this stage covers, in guide order."""
    groups: dict[tuple, list[int]] = {}
    for step in steps:
        guide, section = getattr(step, "guide", None), getattr(step, "section", None)
        if guide is None or section is None:
            continue
        groups.setdefault((guide, section, bool(getattr(step, "item", False))), []).append(step.n)
    by_guide: dict[str, list[str]] = {}
    for (guide, section, item), numbers in groups.items():
        word = ("items" if item else "steps") if len(set(numbers)) > 1 else ("item" if item else "step")
        by_guide.setdefault(guide, []).append(f"{section} {word} {_ranges(numbers)}")
    return "; ".join(f"Guide {guide}: " + ", ".join(parts) for guide, parts in by_guide.items())
