"""The wizard App: one shared Config, the stage sequence, quit confirmation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.binding import Binding

from screens import guide_data
from screens.commands import WizardCommands

if TYPE_CHECKING:
    from wizard.config.schema import Config

# Imported where used, once the app runs (Textual's own start-up comes first):
# wizard.config.schema, wizard.config.files, wizard.config.drafts, the guide, the stage screens;
# tomlkit only when a file is written.

STAGES = guide_data.STAGES
SCREENS = {"target": ("target", "TargetScreen"), "registration": ("registration", "RegistrationScreen"),
           "ids": ("ids", "IdsScreen"), "mail": ("mail", "MailScreen"),
           "test": ("test", "ConnectionTestScreen"), "save": ("save", "SaveScreen")}


DARK, LIGHT = "textual-dark", "textual-light"


def css_path() -> Path:
    import assets   # the stylesheet's package, next to screens/
    return Path(assets.__file__).parent / "wizard.tcss"


def start_theme(environ=os.environ) -> str:
    """Light when the terminal says its background is light (COLORFGBG '0;15'), else dark."""
    parts = environ.get("COLORFGBG", "").split(";")
    return LIGHT if parts[-1] in ("7", "15") and len(parts) > 1 else DARK


@dataclass
class DemoInfo:
    """Where the sandbox listens; built from a Sandbox or a dict with its base info."""
    host: str
    port: int
    base_url: str
    ca_path: str
    smtp_port: int = 0      # the sandbox's SMTP and IMAP servers (0: none)
    imap_port: int = 0

    @classmethod
    def of(cls, demo) -> "DemoInfo":
        if isinstance(demo, DemoInfo):
            return demo
        get = demo.get if isinstance(demo, dict) else (lambda k: getattr(demo, k, None))
        host, port = get("host") or "127.0.0.1", int(get("port"))
        base_url = get("base_url") or f"https://{host}:{port}"
        return cls(host, port, base_url, str(get("ca_path")), int(get("smtp_port") or 0),
                   int(get("imap_port") or 0))

    def apply(self, cfg: Config) -> set[str]:
        """Point a config at the sandbox (TLS still verified, against its CA), on
        the servers of the config's protocols. Returns the keys it set: what was
        typed or loaded for them (an earlier run's sandbox) no longer holds."""
        cfg.endpoints.authority = self.base_url
        cfg.endpoints.ca_bundle = self.ca_path
        cfg.outgoing.server = self.host
        cfg.outgoing.port = self.smtp_port if cfg.outgoing.protocol == "smtp" and self.smtp_port else self.port
        keys = {"endpoints.authority", "endpoints.ca_bundle", "outgoing.server", "outgoing.port"}
        if cfg.incoming.protocol == "imap" and self.imap_port:
            cfg.incoming.server, cfg.incoming.port = self.host, self.imap_port
            keys |= {"incoming.server", "incoming.port"}
        elif cfg.incoming.protocol in ("ews", "graph") and (cfg.incoming.server or cfg.incoming.port):
            cfg.incoming.server, cfg.incoming.port = self.host, self.port   # not a dead sandbox's port
            keys |= {"incoming.server", "incoming.port"}
        if "graph" in (cfg.outgoing.protocol, cfg.incoming.protocol):
            cfg.endpoints.graph_url = self.base_url
            keys.add("endpoints.graph_url")
        return keys


class _Loaded:
    """An app attribute that WizardApp.load() fills on first use (config, guide, ...)."""

    def __set_name__(self, owner, name: str) -> None:
        self.key = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        if obj._loader is not None:
            obj.load()
        return obj.__dict__[self.key]

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.key] = value


class WizardApp(App):
    TITLE = "mailwizard"
    CSS_PATH = css_path()
    COMMANDS = {WizardCommands}
    COMMAND_PALETTE_BINDING = "ctrl+o"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (70, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (23, "-tall")]
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit",
                tooltip="Leave the wizard (asks first when values are not saved)."),
        Binding("f1", "help", "Help", priority=True, id="help",
                tooltip="Keys and where you are; ? too, when the cursor is not in a text field."),
        Binding("question_mark", "help", "Help", show=False, id="help-question"),
        Binding("f3", "read_back", "Read back", priority=True, id="read-back",
                tooltip="This screen's IDs large, in groups of four with a check letter, for a call."),
        Binding("f4", "toggle_theme", "Theme", priority=True, id="theme",
                tooltip="Switch between the light and the dark theme."),
        Binding("ctrl+o", "command_palette", "Commands", priority=True, id="commands",
                tooltip="Every action by name: type a few letters, Enter runs it."),
    ]

    config_path = _Loaded()
    config = _Loaded()
    guide = _Loaded()
    load_error = _Loaded()
    problems = _Loaded()
    pending_draft = _Loaded()   # a draft to offer at start

    def __init__(self, config_path: Path | None = None, config: Config | None = None, *,
                 demo: DemoInfo | None = None, guide=None, start: str = "target",
                 load_error: str | None = None, problems: list | None = None, draft=None,
                 loader=None) -> None:
        """Either the values themselves, or ``loader``: a function returning them as a
        dict (see make_app), called on first use, when the first stage is built."""
        # NO_COLOR: Textual would still paint in shades of grey; with ANSI colours
        # on, its NO_COLOR filter removes every colour and leaves bold/underline/reverse.
        super().__init__(ansi_color=True if "NO_COLOR" in os.environ else None)
        self.theme = start_theme()
        self._loader = loader
        if loader is None:
            self.config_path = Path(config_path)
            self.config = config
            self.guide = guide
            self.load_error = load_error
            self.problems = problems or []
            self.pending_draft = draft
        self.demo = demo
        self.start = start
        self.drafts: dict[str, str] = {}   # raw text typed per config key (kept across screens)
        self.dirty = False                  # values changed since load/save
        self.tested_ok = False              # last connection test passed for these values
        self.last_report = None
        self.saved_path: Path | None = None
        self.stage = start
        self.keep_secrets: bool | None = None   # None: not asked yet
        self.missing_secrets: list[str] = []    # secrets a resumed draft did not keep
        self._keeper = None
        self._help = None   # one help screen, kept (installed) and updated
        self.messages: list[str] = []   # every message shown ("title: text"), newest last

    def load(self) -> None:
        loader, self._loader = self._loader, None
        if loader is not None:
            for name, value in loader().items():
                setattr(self, name, value)

    @property
    def keeper(self):
        if self._keeper is None:
            from screens.dialogs.resume import DraftKeeper
            self._keeper = DraftKeeper(self)
        return self._keeper

    def on_unmount(self) -> None:
        if self._keeper is not None:     # the draft stays for the next start; this wizard's hold on it ends
            self._keeper.release()

    # -- state ------------------------------------------------------------
    def mark_dirty(self) -> None:
        self.dirty = True
        self.tested_ok = False
        self.keeper.changed()

    async def on_mount(self) -> None:
        if self.is_headless:
            await self.push_screen(self.make_screen(self.start))
            self.after_first_screen()
            return
        # In a terminal: build the first stage once the app's start-up is over.
        # Textual paints nothing while the app mounts; a stage pushed after that
        # is painted by its own first refresh, and its lazy parts (what lies below
        # the fold) are mounted after that paint instead of before it.
        self.call_later(self.show_first_screen)
        self.watch_terminal()

    # -- the terminal going away ----------------------------------------------
    TERMINAL_CHECK_SECONDS = 1.0

    def watch_terminal(self) -> None:
        """A dropped SSH session or a closed terminal window: the last values typed
        (still inside the draft's typing pause) are written before the wizard ends.
        The kernel says so with SIGHUP when the terminal was the wizard's
        controlling one; otherwise (started with setsid, by a supervisor) the
        terminal just stops being one, and a slow timer notices."""
        import asyncio
        import signal
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.hung_up)
        except (NotImplementedError, RuntimeError, AttributeError):   # no SIGHUP here (Windows)
            pass
        self.set_interval(self.TERMINAL_CHECK_SECONDS, self.check_terminal, name="terminal-check")

    @staticmethod
    def terminal_present() -> bool:
        import sys
        stream = sys.__stdout__
        try:
            return stream is not None and os.isatty(stream.fileno())
        except (OSError, ValueError):
            return False

    def check_terminal(self) -> None:
        if not self.terminal_present():
            self.hung_up()

    def hung_up(self) -> None:
        """Keep what was typed, then end. With the terminal gone there is nothing to
        restore or to say, and Textual's own shutdown would write to it: leave at
        once. A SIGHUP with the terminal still there (kill -HUP) ends normally."""
        self.keeper.save_now()
        if self.terminal_present():
            self.exit(return_code=129)
            return
        os._exit(129)   # 128 + SIGHUP, as a shell reports it

    def show_first_screen(self) -> None:
        self.push_screen(self.make_screen(self.start))   # not awaited: keys stay live
        self.after_first_screen()
        self.call_after_refresh(self.freeze_startup_objects)

    @staticmethod
    def freeze_startup_objects() -> None:
        """Keep the garbage collector's full collections off the keys: move what
        start-up built (Textual, the guide, the first screen) out of its reach, and
        collect less often (a full collection walks every object, msal's and
        exchangelib's once the test imported them, and stalled a key by 50-130 ms).
        Terminal runs only: a test process runs many apps and needs their memory back.
        The command line starts the wizard with collection off (start-up objects
        live on; see wizard.cli.tui._no_gc_until_first_screen): they are frozen as they are
        and collection goes back on. Otherwise only the young generations are
        collected first: a full collection here took 35-50 ms and stalled the
        first key. Either way the little cyclic garbage of start-up stays
        (measured: 0.3-0.4 MB more resident memory)."""
        import gc
        from screens.dialogs import help, readback  # noqa: F401  (F1 and F3 answer at once the first time too)
        if gc.isenabled():
            gc.collect(1)
        gc.freeze()
        gen0, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(max(gen0, 10_000), gen1, max(gen2, 50))
        gc.enable()

    def after_first_screen(self) -> None:
        if self.pending_draft is not None:
            from screens.dialogs.resume import ResumeDialog
            self.push_screen(ResumeDialog(self.pending_draft, self.guide), self.resume_answer)
            return
        if self.load_error:
            self.notify(f"{self.load_error}\nStarting from defaults; saving keeps the old file as .bak.",
                        title="Existing config not read", severity="warning", timeout=12,
                        markup=False)
        elif self.problems:
            first = self.problems[0]
            self.notify(f"{len(self.problems)} value(s) in {self.config_path.name} need attention, "
                        f"first: [{first.field}] {first.message}", title="Existing config loaded",
                        severity="warning", timeout=12, markup=False)

    # -- navigation -------------------------------------------------------
    def make_screen(self, stage: str):
        from importlib import import_module
        module, name = SCREENS[stage]
        self.stage = stage
        return getattr(import_module(f".{module}", __package__), name)()   # only the one needed

    def goto(self, stage: str, focus: str | None = None) -> None:
        screen = self.make_screen(stage)
        if focus:
            screen.initial_focus = focus
        self.switch_screen(screen)
        self.keeper.save_now()
        self.call_later(self.keeper.ask_consent)

    def stage_screen(self):
        """The stage screen under any dialogs (None before the first one)."""
        from screens.base import StageScreen
        return next((s for s in reversed(self.screen_stack) if isinstance(s, StageScreen)), None)

    def jump(self, stage: str) -> None:
        """Go straight to a stage (palette): the current stage's values are checked first."""
        screen = self.stage_screen()
        if screen is None or stage == self.stage:
            return
        if STAGES.index(stage) > STAGES.index(self.stage):
            bad = screen.commit()
            if bad is not None:
                screen.refuse(bad)
                return
            if STAGES.index(self.stage) <= STAGES.index("ids"):
                self.prune_auth()
        self.goto(stage)

    # -- resume ---------------------------------------------------------------
    def resume_answer(self, go_on: bool | None) -> None:
        draft, self.pending_draft = self.pending_draft, None
        if not go_on:
            removed = self.keeper.discard()     # never another live wizard's draft
            self.notify("The unfinished setup was removed; starting from the beginning."
                        if removed or getattr(draft, "owner", None) is None else
                        "Starting from the beginning; the other mailwizard's draft is left alone.",
                        title="Starting over")
            return
        self.keeper.apply(draft)
        stage = draft.stage if draft.stage in STAGES else "target"
        self.goto(stage)
        if self.missing_secrets:
            self.ask_missing_secrets()

    @work(exclusive=True, group="resume")
    async def ask_missing_secrets(self) -> None:
        skipped = []
        from screens.dialogs.resume import SecretPrompt, secret_label, secret_slot
        for name in list(self.missing_secrets):
            label, check = secret_label(self.config, name)
            value = await self.push_screen_wait(SecretPrompt(label, check))
            slot = secret_slot(self.config, name)
            if value is None or slot is None:
                skipped.append(label)
                continue
            setattr(*slot, value)
            if name.startswith("auth."):
                self.drafts[name] = value
            self.missing_secrets.remove(name)
        if skipped:
            self.notify(f"Still to type: {', '.join(skipped)} (stage 3 and 4).", title="Secrets",
                        severity="warning", markup=False)
        screen = self.stage_screen()
        if screen is not None and screen.STAGE in ("ids", "mail", "save"):
            await screen.recompose()
            screen.focus_first()

    def prune_auth(self) -> None:
        """Only one sign-in method is active at a time: take the other flows' values
        out of the config (the file and the test must not see them) but keep them
        as typed, so switching back brings them back."""
        from wizard.config import schema as config_module
        flow_keys = getattr(config_module, "FLOW_KEYS", None) or {
            "client_secret": ("client_secret", "secret_expires"), "password": ("username", "password")}
        auth = self.config.auth
        own = set(flow_keys.get(auth.flow, ()))
        for key in {k for keys in flow_keys.values() for k in keys} - own:
            value = getattr(auth, key, None)
            if value in ("", None):
                continue
            raw = value.isoformat() if hasattr(value, "isoformat") else str(value)
            self.drafts.setdefault(f"auth.{key}", raw)
            setattr(auth, key, None if key.endswith("_expires") else "")

    def next_stage(self) -> None:
        if self.stage == "ids":
            self.prune_auth()
        n = STAGES.index(self.stage)
        if n + 1 < len(STAGES):
            self.goto(STAGES[n + 1])

    def prev_stage(self) -> None:
        n = STAGES.index(self.stage)
        if n > 0:
            self.goto(STAGES[n - 1])

    # -- actions (keys and command palette) -----------------------------------------
    def command_available(self, name: str) -> bool:
        screen = self.stage_screen()
        stage = screen.STAGE if screen is not None else None
        if name in ("Next", "Back", "Run test", "Save", "Read back", "Copy manifest"):
            if stage is None:
                return False
            if name == "Back":
                return stage != STAGES[0]
            if name == "Next":
                return stage != STAGES[-1]
        if name in ("Settings sheet", "Admin runbook"):
            return exports_module() is not None
        return True

    def action_next_stage(self) -> None:
        screen = self.stage_screen()
        if screen is not None:
            screen.action_next()

    def action_prev_stage(self) -> None:
        screen = self.stage_screen()
        if screen is not None:
            screen.action_back()

    def action_run_test(self) -> None:
        if self.stage == "test":
            self.stage_screen().action_rerun()
        else:
            self.jump("test")

    def action_save_config(self) -> None:
        if self.stage == "save":
            self.stage_screen().action_save()
        else:
            self.jump("save")

    def action_help(self) -> None:
        from screens.dialogs.help import HelpScreen
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        elif self._help is None or not self._help.is_mounted:
            self._help = HelpScreen(self.screen)
            self.install_screen(self._help, "help")
            self.push_screen("help")
        else:
            self.push_screen(self._help.about(self.screen))

    def action_read_back(self) -> None:
        from screens.dialogs.readback import ReadBackScreen
        if isinstance(self.screen, ReadBackScreen):
            self.screen.dismiss(None)
        elif self.stage_screen() is not None:
            self.push_screen(ReadBackScreen(self.stage_screen()))

    def action_copy_manifest(self) -> None:
        from screens.clipboard import copy_text
        from screens.registration import manifest_text
        cfg = self.config
        copy_text(self, manifest_text(cfg.auth.flow, cfg.outgoing.protocol or "ews", cfg.incoming.protocol),
                  "manifest JSON")

    def show_export(self, title: str, make) -> None:
        from screens.clipboard import TextViewScreen
        try:
            text = make(self.config)
        except Exception as exc:   # an incomplete config must not stop the wizard
            self.notify(f"The {title.lower()} cannot be made from these values yet: {exc}",
                        title=title, severity="warning", markup=False)
            return
        self.push_screen(TextViewScreen(title, text))

    def action_settings_sheet(self) -> None:
        exports = exports_module()
        if exports is not None:
            self.show_export("Settings sheet (secrets masked)",
                             lambda cfg: exports.settings_sheet(cfg, reveal=False))

    def action_runbook(self) -> None:
        exports = exports_module()
        if exports is not None:
            self.show_export("Admin runbook", exports.admin_runbook)

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.theme == DARK else DARK

    def copy_to_clipboard(self, text: str) -> None:
        """OSC 52 (Textual's own); inside GNU screen also wrapped so screen passes it on."""
        from screens.clipboard import clipboard_sequence, in_gnu_screen
        if not in_gnu_screen() or self._driver is None:
            super().copy_to_clipboard(text)
            return
        self._clipboard = text
        self._driver.write(clipboard_sequence(text))

    # -- messages -------------------------------------------------------------
    def notify(self, message: str, *, title: str = "", severity="information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Messages go into the screen's layout (the key bar, or the dialog), not into
        a toast drawn over the fields; thread-safe like Textual's own."""
        import threading
        if self._thread_id != threading.get_ident():
            self.call_from_thread(self.notify, message, title=title, severity=severity,
                                  timeout=timeout, markup=markup)
            return
        self.messages.append(f"{title}: {message}" if title else message)
        self.show_message(message, title, severity,
                          self.NOTIFICATION_TIMEOUT if timeout is None else timeout, markup)

    def show_message(self, message: str, title: str, severity, timeout: float, markup: bool) -> None:
        from screens.widgets.keybar import show_message
        if not show_message(self, message, title, severity, timeout, markup):   # no place: a toast
            super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def on_input_changed(self, event) -> None:
        """Typing again answers a refusal: its message goes (the field says the rest)."""
        from screens.widgets.keybar import KeyBar
        for bar in self.screen.query(KeyBar):
            if bar.message is not None and bar.message_severity == "error":
                bar.clear_message()

    def action_help_quit(self) -> None:
        """ctrl+c (pressed out of habit): say how to leave, in words."""
        self.notify("ctrl+c does not quit here (in a text field it copies): press ctrl+q to quit.",
                    title="Quit?", markup=False)

    # -- quit ---------------------------------------------------------------
    async def action_quit(self) -> None:
        if not self.dirty:
            self.exit()
            return
        self.keeper.save_now()

        def answer(yes: bool | None) -> None:
            if yes:
                self.exit()

        from screens.dialogs.confirm import ConfirmDialog
        if not isinstance(self.screen, ConfirmDialog):
            self.push_screen(ConfirmDialog(
                "Quit without saving?",
                "The values you entered are not saved to the config file yet. They are kept "
                "in a draft: the next start offers to continue where you stopped.",
                yes="Quit", no="Stay"), answer)


def make_app(config_path, *, demo=None, initial: Config | None = None,
             stage: str = "target") -> WizardApp:
    """Build the wizard. Starts from ``initial`` if given, else from the values in
    ``config_path`` when it exists (read leniently), and offers a draft left for
    that path. ``demo``: a Sandbox (or a dict with host, port, base_url, ca_path)
    the app talks to instead of Microsoft. Files are read on first use."""
    info = DemoInfo.of(demo) if demo is not None else None

    def load() -> dict:
        from wizard.config import files as config_io
        from wizard.config.schema import Config
        path = config_io.resolve_path(config_path)
        load_error, problems, cfg, draft = None, [], initial, None
        if cfg is None:
            cfg, problems, load_error = config_io.load_lenient(path)
            cfg = cfg or Config()
            from wizard.config.drafts import load_draft
            draft = load_draft(path)
        if info is not None:   # the sandbox running now, not the one the file names
            replaced = info.apply(cfg)
            problems = [p for p in problems or [] if p.field not in replaced]
        return {"config_path": path, "config": cfg, "guide": guide_data.load(),
                "load_error": load_error, "problems": problems or [], "pending_draft": draft}

    return WizardApp(demo=info, start=stage, loader=load)


def exports_module():
    """wizard.guide.exports when this build has it (settings sheet, admin runbook), else None."""
    try:
        from wizard.guide import exports
    except ImportError:
        return None
    return exports if hasattr(exports, "settings_sheet") and hasattr(exports, "admin_runbook") else None
