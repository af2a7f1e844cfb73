"""The wizard App: one shared Config, the stage sequence, quit confirmation."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from wizard import config as config_module
from wizard import config_io
from wizard.config import Config

from . import guide_data
from .dialogs import ConfirmDialog

STAGES = guide_data.STAGES


def css_path() -> Path:
    return Path(str(files("assets") / "wizard.tcss"))


@dataclass
class DemoInfo:
    """Where the sandbox listens; built from a Sandbox or a dict with its base info."""
    host: str
    port: int
    base_url: str
    ca_path: str

    @classmethod
    def of(cls, demo) -> "DemoInfo":
        if isinstance(demo, DemoInfo):
            return demo
        get = demo.get if isinstance(demo, dict) else (lambda k: getattr(demo, k, None))
        host, port = get("host") or "127.0.0.1", int(get("port"))
        base_url = get("base_url") or f"https://{host}:{port}"
        return cls(host, port, base_url, str(get("ca_path")))

    def apply(self, cfg: Config) -> None:
        """Point a config at the sandbox (TLS still verified, against its CA)."""
        cfg.endpoints.authority = self.base_url
        cfg.endpoints.ca_bundle = self.ca_path
        cfg.outgoing.server = self.host
        cfg.outgoing.port = self.port


class WizardApp(App):
    TITLE = "mailwizard"
    CSS_PATH = css_path()
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit",
                tooltip="Leave the wizard (asks first when values are not saved)."),
    ]

    def __init__(self, config_path: Path, config: Config, *, demo: DemoInfo | None = None,
                 guide=None, start: str = "target", load_error: str | None = None,
                 problems: list | None = None) -> None:
        super().__init__()
        self.config_path = Path(config_path)
        self.config = config
        self.demo = demo
        self.guide = guide
        self.start = start
        self.load_error = load_error
        self.problems = problems or []
        self.drafts: dict[str, str] = {}   # raw text typed per config key (kept across screens)
        self.dirty = False                  # values changed since load/save
        self.tested_ok = False              # last connection test passed for these values
        self.last_report = None
        self.saved_path: Path | None = None
        self.stage = start

    # -- state ------------------------------------------------------------
    def mark_dirty(self) -> None:
        self.dirty = True
        self.tested_ok = False

    async def on_mount(self) -> None:
        await self.push_screen(self.make_screen(self.start))
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
        from . import ids, mail, registration, save, target, test
        modules = {"target": target.TargetScreen, "registration": registration.RegistrationScreen,
                   "ids": ids.IdsScreen, "mail": mail.MailScreen, "test": test.ConnectionTestScreen,
                   "save": save.SaveScreen}
        self.stage = stage
        return modules[stage]()

    def goto(self, stage: str, focus: str | None = None) -> None:
        screen = self.make_screen(stage)
        if focus:
            screen.initial_focus = focus
        self.switch_screen(screen)

    def prune_auth(self) -> None:
        """Only one sign-in method is active at a time: take the other flows' values
        out of the config (the file and the test must not see them) but keep them
        as typed, so switching back brings them back."""
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

    # -- quit ---------------------------------------------------------------
    async def action_quit(self) -> None:
        if not self.dirty:
            self.exit()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.exit()

        if not isinstance(self.screen, ConfirmDialog):
            self.push_screen(ConfirmDialog(
                "Quit without saving?",
                "The values you entered are not saved yet and will be lost.",
                yes="Quit", no="Stay"), answer)


def make_app(config_path, *, demo=None, initial: Config | None = None,
             stage: str = "target") -> WizardApp:
    """Build the wizard. Starts from ``initial`` if given, else from the values in
    ``config_path`` when it exists (read leniently). ``demo``: a Sandbox (or a
    dict with host, port, base_url, ca_path) the app talks to instead of Microsoft."""
    path = config_io.resolve_path(config_path)
    load_error, problems = None, []
    cfg = initial
    if cfg is None:
        cfg, problems, load_error = config_io.load_lenient(path)
        cfg = cfg or Config()
    info = DemoInfo.of(demo) if demo is not None else None
    if info is not None:
        info.apply(cfg)
    return WizardApp(path, cfg, demo=info, guide=guide_data.load(), start=stage,
                     load_error=load_error, problems=problems)
