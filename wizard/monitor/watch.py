"""One profile's check as monitoring sees it, and every profile at once.

``observe`` (before the check) and ``conclude`` (after it) wrap
``wizard.check.engine.run_check``: the idle sign-in warning needs the last use
from *before* the check refreshed the token, and the alerts need the report.
``check_profile`` does the whole of it for one config file; ``check_all`` runs
it for every profile concurrently, at most ``MAX_PARALLEL`` at a time.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from wizard.monitor.facts import Facts, gather

MAX_PARALLEL = 4
CONFIG_FIX = "Correct the named field in the file, or run `mailwizard` to fix it in the wizard."


@dataclass
class ProfileResult:
    profile: str
    path: str
    report: object                  # wizard.check.engine.Report
    facts: Facts = field(default_factory=Facts)
    duration: float = 0.0           # seconds
    config_error: bool = False      # the file could not be loaded: no check ran
    idle_days: float | None = None  # delegated: days the sign-in had been idle before this check
    ran_at: float = field(default_factory=time.time)    # when the check ended (seconds since the epoch)

    @property
    def ok(self) -> bool:
        return bool(self.report.ok)


def observe(cfg) -> Facts:
    return gather(cfg)


def conclude(cfg, path, report, before: Facts, *, profile: str, send_alerts: bool = True,
             today: date | None = None) -> tuple[Facts, float | None]:
    """After the check: the idle warning on the token step, the facts as they are
    now, and the alert mails (step ``alerts``). (facts, idle days before the check)."""
    idle = warn_idle(report, before)
    after = gather(cfg)
    if send_alerts and cfg.alerts.enabled:
        from wizard.monitor import alerts
        try:
            alerts.process(cfg, path, report, after, profile=profile, today=today)
        except Exception as exc:    # our own bug: say so in the step, never break the check
            from wizard.check.engine import Step
            report.steps.append(Step("alerts", "Send the alert mails", "fail", 0,
                                     f"The alerts could not be worked out ({type(exc).__name__}: {exc}).",
                                     "internal", "Report this with `mailwizard report`.",
                                     details={"unsent": 1}))
            report.ok = False
    return after, idle


def warn_idle(report, before: Facts, now: float | None = None) -> float | None:
    """A delegated sign-in idle for ``usage.IDLE_WARN_DAYS`` or more before this
    check: the token step (if it passed) becomes a warning naming AADSTS700082."""
    from wizard.identity.usage import IDLE_WARN_DAYS
    if not before.delegated or before.refresh_last_used is None:
        return None
    days = ((time.time() if now is None else now) - before.refresh_last_used) / 86400
    step = next((s for s in report.steps if s.id == "token"), None)
    if days >= IDLE_WARN_DAYS and step is not None and step.status == "pass":
        since = time.strftime("%Y-%m-%d", time.gmtime(before.refresh_last_used))
        step.status, step.code = "warn", "signin.idle"
        step.summary = (f"The saved sign-in had not been used for {int(days)} days (since {since}). A refresh "
                        "token lapses after 90 days without use (AADSTS700082), and then the system stops "
                        "quietly. This check used it now, which restarts the 90 days.")
        step.fix = ("Let `mailwizard check` (or `poll`) run at least weekly, e.g. the daily timer of "
                    "`mailwizard export systemd`; each run refreshes the sign-in.")
    return days


def _failed_report(message: str):
    from wizard.check.engine import Report, Step, TITLES
    return Report(False, [Step("config", TITLES["config"], "fail", 0, message, "config.invalid", CONFIG_FIX,
                               screen="ids")])


def check_profile(profile: str, path, *, send_to=None, send_alerts: bool = True, tuning=None,
                  on_step=None, post=None, today: date | None = None) -> ProfileResult:
    """Load ``path``, run the check, warn and alert. Never raises for a bad file:
    the result then holds a failed ``config`` step and ``config_error``.
    ``post(report, cfg, path)`` runs after the check (the CLI's own warnings)."""
    from wizard.config.schema import ConfigError
    from wizard.config.files import load
    from wizard.check.engine import run_check
    start = time.monotonic()
    try:
        cfg = load(path)
    except ConfigError as exc:      # still the dates the file names (a secret past its date is an error)
        from wizard.config.files import load_lenient
        lenient, _problems, _error = load_lenient(path)
        return ProfileResult(profile, str(path), _failed_report(exc.render()),
                             gather(lenient) if lenient is not None else Facts(),
                             duration=time.monotonic() - start, config_error=True)
    before = observe(cfg)
    report = run_check(cfg, send_to=send_to, on_step=on_step, tuning=tuning)
    if post is not None:
        post(report, cfg, path)
    facts, idle = conclude(cfg, path, report, before, profile=profile, send_alerts=send_alerts, today=today)
    return ProfileResult(profile, str(path), report, facts, time.monotonic() - start, idle_days=idle)


def profile_name(path, given: str | None = None) -> str:
    """The ``profile`` label: the name given, the profile the path belongs to,
    "default" for the default config, else the file's name without .toml."""
    if given:
        return given
    from wizard.config.files import default_path, list_profiles
    target = Path(path).expanduser().absolute()
    for name, p in list_profiles():
        if Path(p).absolute() == target:
            return name
    if target == default_path().absolute():
        return "default"
    return target.stem


def check_all(profiles: list[tuple[str, Path]], *, max_parallel: int = MAX_PARALLEL, on_done=None,
              **kwargs) -> list[ProfileResult]:
    """``check_profile`` for each (name, path), concurrently (bounded), in the given
    order; ``on_done(result)`` as each one ends (progress)."""
    if not profiles:
        return []

    def one(item):
        try:
            result = check_profile(item[0], item[1], **kwargs)
        except Exception as exc:    # our own bug: that profile fails, the others are still reported
            report = _failed_report(f"mailwizard could not check this profile ({type(exc).__name__}: {exc}).")
            report.steps[0].code = "internal"
            result = ProfileResult(item[0], str(item[1]), report)
        if on_done is not None:
            try:
                on_done(result)
            except Exception:       # a broken display must not break the checks
                pass
        return result
    workers = max(1, min(max_parallel, len(profiles)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mailwizard-profile") as pool:
        return list(pool.map(one, profiles))
