"""The check as a Nagios / Icinga / Zabbix-agent plugin: one status line with
performance data, then one line per profile, and the plugin exit code.

    MAILWIZARD WARNING - secret expires in 10 days (2026-12-16) | 'ok'=1;;1:;0;1 'secret_days'=10;31:;8: ...

Exit codes (the plugin convention): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
- CRITICAL: a step failed (including a config that cannot be read), or an end
  date (secret, certificate, EWS switch-off) is ``critical_days`` or fewer away
  (or past).
- WARNING: a step warned (e.g. the secret's own 30-day warning, an idle
  delegated sign-in), or an end date is ``warning_days`` or fewer away.
- UNKNOWN: mailwizard itself could not run the check (bad options, an internal error).
Perfdata (``'label'=value[UOM];warn;crit;min;max``, thresholds as plugin
ranges that alert exactly when this line's state does, e.g. ``31:;8:`` for the
defaults 30 and 7): ``ok`` (1/0), ``failed`` and ``warned`` (step counts), ``duration``
(s), ``secret_days``, ``certificate_days``, ``ews_days`` (days left) and
``signin_idle_days`` (delegated flows); with several profiles each label is
prefixed with the profile name and an underscore.
"""

from __future__ import annotations

from datetime import date

from wizard.identity.usage import IDLE_WARN_DAYS as IDLE_WARN     # the token step warns at this many days

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
WARNING_DAYS, CRITICAL_DAYS = 30, 7
NOUN = {"secret": "secret", "certificate": "certificate", "ews": "EWS (Exchange Online)"}


def evaluate(result, *, warning_days: int = WARNING_DAYS, critical_days: int = CRITICAL_DAYS,
             today: date | None = None) -> tuple[int, list[str]]:
    """(state, what is wrong, worst first) for one ``watch.ProfileResult``."""
    today = today or date.today()
    found: list[tuple[int, str]] = []
    for s in result.report.steps:
        code, summary = f" {s.code}" if s.code else "", s.summary
        if s.code == "secret.expiring" and result.facts.secret_expires is not None:
            if "Also: " not in summary:
                continue        # the expiry below says it, with the date
            code, summary = "", summary.split("Also: ", 1)[1]      # what else the step warns of
        if s.status in ("fail", "warn"):
            found.append((CRITICAL if s.status == "fail" else WARNING, f"{s.id}{code}: {_short(summary)}"))
    for kind, day in result.facts.expiries():
        left = (day - today).days
        if left > warning_days:
            continue
        state = CRITICAL if left <= critical_days else WARNING
        text = (f"{NOUN[kind]} ended on {day.isoformat()}" if left < 0 else
                f"{NOUN[kind]} {'is switched off' if kind == 'ews' else 'expires'} in {left} days ({day.isoformat()})")
        found.append((state, text))
    found.sort(key=lambda item: -item[0])
    return (max((s for s, _ in found), default=OK), [t for _, t in found])


def _short(text: str, room: int = 100) -> str:
    text = " ".join(str(text or "").split()).replace("|", "/")     # '|' starts the perfdata
    return text if len(text) <= room else text[:room - 1] + "…"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def perfdata(result, *, prefix: str = "", warning_days: int = WARNING_DAYS, critical_days: int = CRITICAL_DAYS,
             today: date | None = None) -> list[str]:
    today = today or date.today()
    steps = result.report.steps
    failed = sum(s.status == "fail" for s in steps)
    warned = sum(s.status == "warn" for s in steps)

    def item(label, value, uom="", warn="", crit="", low="", high=""):
        return f"'{prefix}{label}'={_number(value)}{uom};{warn};{crit};{low};{high}".rstrip(";")
    out = [item("ok", 1 if result.ok else 0, crit="1:", low=0, high=1),
           item("failed", failed, crit="0", low=0), item("warned", warned, warn="0", low=0),
           item("duration", round(result.duration, 3), "s", low=0)]
    # Plugin ranges alert when the value lies OUTSIDE them ("8:" alerts below 8), and the state above
    # alerts at ``critical_days`` or fewer days left: so the ranges start one day later.
    for kind, day in result.facts.expiries():
        out.append(item(f"{kind}_days", (day - today).days, warn=f"{warning_days + 1}:", crit=f"{critical_days + 1}:"))
    if result.idle_days is not None:
        # The token step warns at IDLE_WARN days or more ("59" alerts above 59); an idle sign-in alone is never
        # critical (this check just used it): a lapsed one fails the token step, which `failed` carries.
        out.append(item("signin_idle_days", int(result.idle_days), warn=str(IDLE_WARN - 1), low=0))
    return out


def render(results, *, warning_days: int = WARNING_DAYS, critical_days: int = CRITICAL_DAYS,
           today: date | None = None) -> tuple[str, int]:
    """(text, exit code) for one or several profiles; the worst state wins."""
    opts = dict(warning_days=warning_days, critical_days=critical_days, today=today)
    if not results:
        return "MAILWIZARD UNKNOWN - no config to check (no default config and no profile)", UNKNOWN
    judged = [(r, *evaluate(r, **opts)) for r in results]
    worst = max(state for _, state, _ in judged)
    several = len(results) > 1
    perf = [p for r in results for p in perfdata(r, prefix=f"{r.profile}_" if several else "", **opts)]
    if not several:
        r, state, problems = judged[0]
        summary = "; ".join(problems[:3]) if problems else f"all {len(r.report.steps)} steps passed"
        return f"MAILWIZARD {NAMES[worst]} - {summary} | {' '.join(perf)}", worst
    bad = [(r, s, p) for r, s, p in judged if s != OK]
    summary = (f"{len(bad)} of {len(results)} profiles not OK: " +
               "; ".join(f"{r.profile} {NAMES[s]} ({p[0]})" for r, s, p in bad[:3])) if bad else \
        f"all {len(results)} profiles OK"
    lines = [f"MAILWIZARD {NAMES[worst]} - {summary} | {' '.join(perf)}"]
    for r, state, problems in judged:
        lines.append(f"{r.profile}: {NAMES[state]}" + (f" - {'; '.join(problems)}" if problems else "")
                     + f" ({r.path})")
    return "\n".join(lines), worst
