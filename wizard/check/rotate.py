"""Client secret rotation: the new secret is tested before it replaces the old one.

1. The user creates a new secret in the portal (guide 001, Azure steps 20-22)
   while the old one keeps working: an app can hold several secrets.
2. ``rotate_secret`` puts the new Value and its expiry into a *copy* of the
   config and runs the whole connection test (``conntest.run_check``) on it.
3. Only when the test passes is the config saved (``config_io.save``: atomic,
   through a symlink to its target, previous file kept as ``.bak``, this one as
   ``.good``); when that save fails, ``NotSaved`` says so; a config that reads the secret from
   ``file:PATH`` gets the new Value written to that file instead (also with a
   backup), and ``secret_expires`` in the config.
4. The user then deletes the old secret in the portal.

A config that reads the secret from ``env:NAME`` cannot be rotated here: the
variable lives wherever the service is started. No secret is ever returned in
a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path


class RotateError(Exception):
    """The rotation cannot start (wrong flow, bad value, env: reference...):
    nothing was tested and nothing changed."""


class NotSaved(Exception):
    """The new secret passed the test, but it could not be saved (disk full, no
    permission, the file changed meanwhile). ``str()`` says, in plain words,
    what happened and which secret is in use now; ``report`` is the trial's."""

    def __init__(self, message: str, report, saved: list[Path] | None = None):
        super().__init__(message)
        self.report = report
        self.saved = saved or []


@dataclass
class RotateResult:
    ok: bool                        # True: the new secret passed and was saved
    report: object                  # conntest.Report of the trial
    saved: list[Path] = field(default_factory=list)     # files written
    backups: list[Path] = field(default_factory=list)   # their previous versions
    message: str = ""


def portal_steps() -> list[str]:
    """Guide 001, Azure steps 20-22 (the registration's Certificates & secrets page)."""
    from wizard.guide.steps import load_guide
    out = []
    for st in load_guide().stages:
        for s in st.steps:
            if s.guide == "001" and s.section == "Azure" and 20 <= s.n <= 22:
                out.append(f"{s.n}. {s.text}")
    return out


def check_new_secret(raw: str, current: str | None = None) -> tuple[str, str | None]:
    """(cleaned value, error or None) for a pasted secret Value."""
    from wizard.config.fields import check_client_secret
    if raw.startswith(("env:", "file:")):
        return raw, "Give the secret's Value itself, not an env:/file: reference."
    checked = check_client_secret(raw)
    if checked.error:
        return str(checked.value), checked.error
    value = str(checked.value)
    if current and value == current:
        return value, "This is the secret already in the config: create a new one (Azure steps 20-22) and paste its Value."
    return value, None


def check_expiry(raw, today: date | None = None) -> tuple[date | None, str | None, str | None]:
    """(date, error, warning) for the new secret's Expires date."""
    from wizard.config.fields import check_secret_expiry
    checked = check_secret_expiry(raw, today)
    if checked.error:
        return None, checked.error, None
    return checked.value, None, checked.warning


def current_secret(cfg) -> str | None:
    from wizard.config.schema import ConfigError, resolve_secret
    try:
        return resolve_secret(cfg.auth.client_secret, "auth.client_secret") if cfg.auth.client_secret else None
    except ConfigError:
        return None


def preflight(cfg) -> None:
    """Raise RotateError when this config's secret cannot be rotated here."""
    if cfg.auth.flow != "client_secret":
        raise RotateError(f"rotate replaces a client secret, but this config's flow is {cfg.auth.flow}.")
    if cfg.auth.client_secret.startswith("env:"):
        name = cfg.auth.client_secret[4:]
        raise RotateError(f"the config reads the client secret from environment variable {name}: set the new "
                          f"Value there (where the service starts), then run `mailwizard check`. The old secret "
                          "keeps working until you delete it in the portal.")


def rotate_secret(cfg, path, new_secret: str, expires: date | None, *, today: date | None = None,
                  on_step=None, check=None) -> RotateResult:
    """Test ``new_secret`` on a copy of ``cfg``; save it only if the test passes.
    ``check`` replaces ``conntest.run_check`` (same signature) for callers that
    bring their own."""
    from wizard.config.schema import copy_config
    from wizard.config.files import backup_path, save, write_private

    preflight(cfg)
    value, error = check_new_secret(new_secret, current_secret(cfg))
    if error:
        raise RotateError(error)
    if expires is not None:
        expires, err, _ = check_expiry(expires, today)
        if err:
            raise RotateError(err)

    trial = copy_config(cfg)
    trial.auth.client_secret = value
    trial.auth.secret_expires = expires
    if check is None:
        from wizard.check.engine import run_check as check
    report = check(trial, on_step=on_step)
    if not report.ok:
        failed = next((s for s in report.steps if s.status == "fail"), None)
        why = f"{failed.id}: {failed.summary}" if failed else "the test did not pass"
        return RotateResult(False, report, message=f"The new secret did not pass ({why}). "
                                                   "Nothing was changed: the config keeps the old secret.")

    from wizard.config.files import SEEN, ConfigChanged, plain_reason

    path = Path(path)
    saved, backups = [], []
    ref = cfg.auth.client_secret
    if ref.startswith("file:"):
        secret_file = Path(ref[5:]).expanduser()
        had = secret_file.exists()
        try:
            write_private(secret_file, value + "\n", backup=had, lock=True)
        except OSError as exc:
            raise NotSaved(f"The new secret passed the test, but it could not be written to {secret_file}: "
                           f"{plain_reason(exc)}. Nothing was changed: the service keeps using the old "
                           "secret, so do not delete it in the portal. Fix that and run `mailwizard rotate` "
                           "again with the same new secret.", report) from None
        saved.append(secret_file)
        if had:
            backups.append(backup_path(secret_file))
        to_save = copy_config(cfg)
        to_save.auth.secret_expires = expires
    else:
        to_save = trial
    had = path.exists()
    try:
        save(to_save, path, tested=True, expect=SEEN)
    except OSError as exc:
        why = plain_reason(exc) if not isinstance(exc, ConfigChanged) else exc.reason
        if saved:
            raise NotSaved(f"The new secret passed the test and was written to {saved[0]}, which the service "
                           f"reads, but the config {path} could not be updated ({why}): its secret_expires "
                           f"still gives the old date. Set secret_expires = {expires or 'the new date'} there by hand.",
                           report, saved) from None
        raise NotSaved(f"The new secret passed the test, but the config {path} could not be saved: {why}. "
                       "Nothing was changed: the config keeps the old secret, which keeps working, so do "
                       "not delete it in the portal. Fix that and run `mailwizard rotate` again with the "
                       "same new secret" + (" (the file now holds someone else's changes: check them first)."
                                            if isinstance(exc, ConfigChanged) else "."), report) from None
    saved.append(path)
    if had:
        backups.append(backup_path(path))
    return RotateResult(True, report, saved, backups, "The new secret passed the test and is saved.")


def old_secret_reminder(old_secret: str | None, old_expires: date | None) -> str:
    from wizard.config.fields import mask_secret
    which = f"the one whose Value starts {mask_secret(old_secret)}" if old_secret else "the old one"
    when = f", expires {old_expires.isoformat()}" if old_expires else ""
    return ("Now delete the old secret: Azure portal > App registrations > the app > Certificates & secrets > "
            f"Client secrets > {which}{when} > Delete. The portal shows only the first 3 characters of each "
            "Value: match them, or the Expires date.")
