"""Alert mails through the config's own mailbox, while it still works.

With ``[alerts] to = [...]`` in the config, each `mailwizard check` (unless
``--no-alerts``) mails the recipients when:
- the client secret, the certificate or EWS in Exchange Online ends within one
  of ``days_before`` (default 30, 14, 7, 1 days), or has ended;
- the check starts failing, and when it passes again (recovery).
Each alert goes once: per end date and threshold (a first run 10 days before
sends one mail for the 14-day threshold and counts the 30-day one as told), and
once per failing spell. Everything due in one run goes in one mail. What was
sent is kept in ``alerts.json`` in the user state dir (mode 0600, written
atomically under a lock), per config file. An alert that cannot be sent is
tried again on the next run and shows as the failed step ``alerts`` (code
``alerts.unsent``): the exit code and the metrics carry it. Sent alerts whose
state cannot be saved make the step a warning (``alerts.state``): the next run
sends them again.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from wizard.monitor.facts import WHAT, Facts
from wizard.config.files import read_state


@dataclass
class Alert:
    subject: str
    body: str
    marks: list[str] = field(default_factory=list)     # state keys to set once sent
    failing: bool | None = None                         # the failing state to keep once sent


@dataclass
class Outcome:
    due: list[Alert]
    sent: bool = True
    diagnosis: object = None      # the Diagnosis when sending failed


def state_path() -> Path:
    from platformdirs import user_state_path
    return user_state_path("mailwizard", appauthor=False) / "alerts.json"


def _config_key(path) -> str:
    from wizard.config.files import real_target
    return str(real_target(Path(path).expanduser()).absolute())


def load_state(config_path) -> dict:
    entry = read_state(state_path()).get(_config_key(config_path))
    return entry if isinstance(entry, dict) else {}


def save_state(config_path, entry: dict) -> None:
    """Raises OSError (WriteError) when the state dir cannot be written."""
    from wizard.config.files import locked, write_private
    with locked(state_path()) as target:
        data = read_state(target)
        data[_config_key(config_path)] = entry
        write_private(target, json.dumps(data, indent=1, sort_keys=True) + "\n")


def due(cfg, report, facts: Facts, entry: dict, *, profile: str, today: date | None = None) -> list[Alert]:
    """The alerts this run owes (none already sent for the same date and threshold)."""
    today = today or date.today()
    sent = entry.get("sent") or {}
    out = []
    thresholds = cfg.alerts.thresholds()
    for kind, day in facts.expiries():
        left = (day - today).days
        crossed = [t for t in thresholds if left <= t]
        if left < 0:
            keys = [f"{kind}:{day}:ended"]
        elif crossed:
            keys = [f"{kind}:{day}:{t}" for t in crossed]
        else:
            continue
        if keys[-1] in sent:        # the tightest threshold crossed was told already
            continue
        out.append(Alert(_expiry_subject(kind, day, left, profile), _expiry_body(cfg, kind, day, left, today),
                         keys))
    failing = [s for s in report.steps if s.status == "fail"]
    if failing and not entry.get("failing"):
        first = failing[0]
        out.append(Alert(f"[mailwizard] {profile}: the mail connection test fails ({first.id}: {first.code or 'failed'})",
                         _failing_body(failing), failing=True))
    elif not failing and entry.get("failing"):
        out.append(Alert(f"[mailwizard] {profile}: the mail connection works again",
                         "The connection test passes again: every step passed (warnings allowed).\n", failing=False))
    return out


def _expiry_subject(kind: str, day: date, left: int, profile: str) -> str:
    what = {"secret": "the client secret", "certificate": "the certificate", "ews": "EWS in Exchange Online"}[kind]
    if left < 0:
        return f"[mailwizard] {profile}: {what} ended on {day.isoformat()}"
    when = "today" if left == 0 else f"in {left} day{'s' if left != 1 else ''}"
    verb = "is switched off" if kind == "ews" else "expires"
    return f"[mailwizard] {profile}: {what} {verb} {when} ({day.isoformat()})"


def _expiry_body(cfg, kind: str, day: date, left: int, today: date) -> str:
    state = f"ended on {day.isoformat()}" if left < 0 else f"ends on {day.isoformat()}, in {left} day(s)"
    cid = cfg.microsoft.client_id
    if kind == "secret":
        fix = (f"Create a new client secret for app {cid} (Azure portal > App registrations > Certificates & "
               "secrets, guide steps 20-22), then replace it with `mailwizard rotate --secret-env NAME --expires "
               "YYYY-MM-DD`: it is tested before it is saved.")
    elif kind == "certificate":
        fix = (f"Create a new certificate (`mailwizard cert`), upload its .cer to app {cid} (Certificates & "
               "secrets > Certificates), set auth.certificate, auth.thumbprint and auth.certificate_expires, "
               "and run `mailwizard check`.")
    else:
        from wizard.guide.retirement import ews_status
        fix = ews_status(cfg, today)[1]
    return f"{WHAT[kind]} {state}.\n\nWhat to do: {fix}\n"


def _failing_body(failing) -> str:
    lines = ["The connection test fails. Mail from this system may not go out or come in.", ""]
    for s in failing:
        lines.append(f"- {s.id}: {s.summary}")
        if s.code:
            lines.append(f"  code: {s.code}")
        if s.fix:
            lines.append(f"  fix: {s.fix}")
    return "\n".join(lines) + "\n"


def process(cfg, config_path, report, facts: Facts, *, profile: str, today: date | None = None,
            mailer_factory=None) -> Outcome:
    """Send what is due in one mail, remember it, and add the step ``alerts`` to
    the report (a failure to send makes the report fail)."""
    from wizard.check.engine import Step
    entry = load_state(config_path)
    alerts = due(cfg, report, facts, entry, profile=profile, today=today)
    step = Step("alerts", "Send the alert mails")
    outcome = Outcome(alerts)
    start = time.monotonic()
    if not alerts:
        step.status, step.summary = "pass", f"No alert due (alerts go to {', '.join(cfg.alerts.to)})."
    else:
        diagnosis = _send(cfg, alerts, profile, config_path, mailer_factory)
        if diagnosis is None:
            sent = entry.setdefault("sent", {})
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            for alert in alerts:
                sent.update({k: stamp for k in alert.marks})
                if alert.failing is not None:
                    entry["failing"] = alert.failing
            told = "; ".join(a.subject.partition(': ')[2] for a in alerts)
            step.status = "pass"
            step.summary = f"Sent {len(alerts)} alert(s) to {', '.join(cfg.alerts.to)}: {told}."
            try:
                save_state(config_path, entry)
            except OSError as exc:      # sent all the same: a warning, not a send failure
                step.status, step.code = "warn", "alerts.state"
                why = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
                step.summary = (f"{len(alerts)} alert(s) sent, but {state_path()} cannot be written ({why}), so "
                                f"the next run sends them again. Sent to {', '.join(cfg.alerts.to)}: {told}.")
                step.fix = (f"Make {state_path().parent} writable for the user that runs mailwizard (it holds "
                            "alerts.json, mode 0600); the next run then sends them once more and remembers it.")
        if diagnosis is not None:
            outcome.sent, outcome.diagnosis = False, diagnosis
            step.status, step.code = "fail", "alerts.unsent"
            step.details["unsent"] = len(alerts)
            step.summary = (f"{len(alerts)} alert(s) could not be sent to {', '.join(cfg.alerts.to)} "
                            f"({diagnosis.code}: {diagnosis.cause}); they are tried again on the next run.")
            step.fix = diagnosis.fix
    step.ms = round((time.monotonic() - start) * 1000, 1)
    report.steps.append(step)
    if step.status == "fail":
        report.ok = False
    return outcome


def _send(cfg, alerts: list[Alert], profile: str, config_path, mailer_factory):
    """None when sent; else the Diagnosis of the failure."""
    from wizard.runtime import MailError, Mailer
    from wizard.runtime.model import diagnosis_of
    urgent = alerts[0].subject if len(alerts) == 1 else f"{alerts[0].subject} (and {len(alerts) - 1} more)"
    body = "\n".join(a.subject.partition(": ")[2] + "\n" + "-" * 40 + "\n" + a.body for a in alerts)
    body += (f"\nConfig: {config_path} (profile {profile}) on {socket.gethostname()}.\n"
             f"Sent by `mailwizard check` through {cfg.outgoing.sender}; each alert is sent once.\n")
    factory = mailer_factory or (lambda c: Mailer(c, prompt=None))
    try:
        with factory(cfg) as mailer:
            mailer.send(list(cfg.alerts.to), urgent, body)
    except MailError as exc:
        return exc.diagnosis
    except Exception as exc:        # never let an alert break the check
        return diagnosis_of(exc, cfg)
    return None


