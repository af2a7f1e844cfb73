"""Resume after a dropped SSH session or a kill: every value typed is kept in a
draft (wizard.config.drafts), secrets only when the user agreed, and the next start
offers to continue where it stopped.

Saving is debounced while typing (DELAY after the last change), immediate when a
field is left or the stage changes; a write costs a few milliseconds.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from wizard.config import drafts
from wizard.config import fields as f

from screens import guide_data
from screens.dialogs.confirm import ConfirmDialog

DELAY = 0.4   # seconds of quiet typing before the draft is written
SLOT = re.compile(r"^(?:(auth)\.(client_secret|password)|(incoming\.accounts|users)\[(\d+)\]\.password)$")
SECRET_RAW_KEYS = ("auth.client_secret", "auth.password")


def secret_slot(cfg, name: str):
    """'auth.client_secret' / 'incoming.accounts[0].password' -> (object, attribute), or None."""
    m = SLOT.match(name)
    if not m:
        return None
    if m.group(1):
        return cfg.auth, m.group(2)
    items = cfg.incoming.accounts if m.group(3) == "incoming.accounts" else cfg.users
    n = int(m.group(4))
    return (items[n], "password") if n < len(items) else None


def has_literal_secret(cfg, raw: dict) -> bool:
    """A secret typed (not an env:/file: reference) in the config or the raw texts."""
    values = [cfg.auth.client_secret, cfg.auth.password] + [a.password for a in cfg.incoming.accounts]
    values += [raw.get(k, "") for k in SECRET_RAW_KEYS]
    return any(v and not str(v).startswith(("env:", "file:")) for v in values)


def secret_label(cfg, name: str) -> tuple[str, object]:
    """(what to ask for, check function) for a missing secret."""
    if name == "auth.client_secret":
        return "Client secret (Value)", f.check_client_secret
    if name == "auth.password":
        who = cfg.auth.username or "the service account"
        return f"Password of {who}", f.check_password
    slot = secret_slot(cfg, name)
    owner = getattr(slot[0], "address", "") or getattr(slot[0], "username", "") if slot else ""
    return f"Password for {owner or name}", lambda raw: f.Checked(raw, None)


def stage_words(stage: str, guide) -> str:
    if stage not in guide_data.STAGES:
        return stage
    return f"stage {guide_data.STAGES.index(stage) + 1}/6 ({guide_data.stage_text(guide, stage)[0]})"


class DraftKeeper:
    """Writes app state to the draft for app.config_path."""

    def __init__(self, app) -> None:
        self.app = app
        self.timer = None
        self.asking = False
        self.failed = False
        self.claim = None       # drafts.Claim once this wizard wrote its draft

    def changed(self) -> None:
        """A value changed: write after DELAY of quiet (restarts on each change)."""
        if self.timer is None:
            self.timer = self.app.set_timer(DELAY, self.save_now, name="draft")
        else:
            self.timer.reset()

    def save_now(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        app = self.app
        if not app.dirty:
            return
        try:
            if self.claim is None:      # the draft is this wizard's while it runs
                self.claim = drafts.claim(app.config_path)
            drafts.save_draft(app.config_path, app.config, app.stage,
                              keep_secrets=bool(app.keep_secrets), raw=dict(app.drafts),
                              missing_secrets=list(app.missing_secrets), claim=self.claim)
        except drafts.DraftBusy as exc:
            if not self.failed:
                self.failed = True
                app.notify(f"{exc}. Save before you leave; saving asks before it replaces a "
                           "file the other one saved.", title="No draft", severity="warning",
                           markup=False)
        except OSError as exc:
            if not self.failed:   # say it once; the wizard works on without drafts
                self.failed = True
                app.notify(f"Could not keep a draft of your values: {exc.strerror or exc}. "
                           "Save before you leave.", title="No draft", severity="warning",
                           markup=False)

    def discard(self) -> bool:
        """Remove this config's draft; False when there was none, or when another
        live wizard owns it (it is left alone)."""
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        claim, self.claim = self.claim, None
        return drafts.discard_draft(self.app.config_path, claim)

    def release(self) -> None:
        """The wizard ends: its draft stays, but it no longer owns it (the kernel
        lets go too when the process ends some other way)."""
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        claim, self.claim = self.claim, None
        if claim is not None:
            claim.release()

    # -- consent for secrets ---------------------------------------------------
    def ask_consent(self) -> None:
        """The first time a secret is filled in: keep secrets in the draft? (default no)."""
        app = self.app
        if app.keep_secrets is not None or self.asking or not app.dirty:
            return
        if not has_literal_secret(app.config, app.drafts):
            return
        self.asking = True

        def answer(yes: bool | None) -> None:
            self.asking = False
            app.keep_secrets = bool(yes)
            self.save_now()

        app.push_screen(ConfirmDialog(
            "Keep secrets in the draft too?",
            "What you type is kept in a draft (a file only you can read, in your state "
            "folder) so a dropped SSH session can continue. Keep the secret and passwords "
            "in it too? No: they are left out and asked again when you continue.",
            yes="Keep them", no="Leave out"), answer)

    # -- resume -----------------------------------------------------------------
    def apply(self, draft) -> None:
        """Take over the draft's values (the stage is entered by the caller)."""
        app = self.app
        app.config = draft.cfg
        raw = dict(draft.raw)
        if app.demo is not None:   # the sandbox listens on a new port each run
            for key in app.demo.apply(app.config):
                raw.pop(key, None)   # the old run's server and port, as typed
        app.drafts = raw
        # secrets left out of a draft mean the user said no (asked when the first one was
        # filled); a draft without any secret yet leaves the question for later
        app.keep_secrets = True if draft.secrets_kept else (False if draft.missing_secrets else None)
        app.missing_secrets = [m for m in draft.missing_secrets if secret_slot(app.config, m)]
        app.dirty = True
        app.tested_ok = False


def config_newer(draft) -> bool:
    try:
        mtime = draft.config_path.stat().st_mtime
    except OSError:
        return False
    return mtime > draft.saved_at.timestamp() + 1


class ResumeDialog(ConfirmDialog):
    """Continue the unfinished setup (default) or start over (removes the draft)."""

    def __init__(self, draft, guide) -> None:
        text = (draft.describe(datetime.now(timezone.utc)) +
                f"\nContinue goes to {stage_words(draft.stage, guide)} with every value typed; "
                "Start over forgets them.")
        if draft.owner is not None:
            text += ("\n! Continue starts from a copy of its values (saving asks before it replaces "
                     "a file the other one saved); Start over leaves its draft alone.")
        elif config_newer(draft):
            text += ("\n! Warning: the config file was saved after this draft (by another "
                     "mailwizard, or by hand): continuing replaces its values when you save.")
        super().__init__("Continue where you stopped?", text,
                         yes="Continue", no="Start over", default=True, escape=True)


class SecretPrompt(ModalScreen[str | None]):
    """Ask again for a secret that was not kept in the draft."""

    BINDINGS = [Binding("escape", "skip", "Later", id="secret-later")]

    def __init__(self, label: str, check) -> None:
        super().__init__()
        self.label = label
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Type again: {self.label}", id="dialog-title", markup=False)
            yield Static("It was not kept in the draft. Type or paste it, then Enter. "
                         "Esc: later (on stage 3).", id="dialog-text", markup=False)
            yield Input(password=True, id="secret-input")
            yield Static("", id="secret-msg", classes="field-msg -error", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        checked = self.check(event.value)
        if checked.error:
            self.query_one("#secret-msg", Static).update("✘ Error: " + checked.error)
            return
        self.dismiss(str(checked.value))

    def action_skip(self) -> None:
        self.dismiss(None)
