"""Stage 2's "Let the wizard do it": `mailwizard register` in a dialog.

An admin signs in once with the device code shown here (on any device); the
core (``wizard.registration.engine``) then does the portal steps through
Microsoft Graph, writes tenant ID, client ID and the secret or certificate into
the config file, and runs the connection test. Each step appears as it is done,
with its guide step. The wizard's own fields take the new values, so stage 3
shows them filled. Escape cancels the sign-in; a run that stopped half-way
says what exists now, and pressing w again completes it.
"""

from __future__ import annotations

import threading

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class RegisterDialog(ModalScreen[dict | None]):
    DEFAULT_CSS = """
    RegisterDialog { align: center middle; }
    RegisterDialog #dialog { width: 76; max-height: 100%; }
    RegisterDialog #register-log { height: auto; max-height: 10; }
    RegisterDialog #register-code { height: auto; display: none; }
    """
    BINDINGS = [Binding("escape", "close", "Cancel / close", id="register-close")]

    def __init__(self, cfg, path, *, admin_client_id: str | None = None) -> None:
        super().__init__()
        self.cfg, self.path = cfg, path
        self.admin_client_id = admin_client_id
        self.cancel = threading.Event()
        self.lines: list[str] = []
        self.result = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Let the wizard do it: register the app through Microsoft Graph", id="dialog-title")
            yield Static("A tenant admin signs in once; the wizard then does the portal steps, writes the IDs and "
                         "the secret into the config and tests it.", id="dialog-text", markup=False)
            yield Static("", id="register-code", markup=False)
            with VerticalScroll(id="register-log", can_focus=True):
                yield Static("Asking the identity platform for a code…", id="register-lines", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel (Esc)", variant="error", id="register-cancel")

    def on_mount(self) -> None:
        self.query_one("#register-cancel").focus()
        self.run_register()

    # -- updates from the worker -----------------------------------------------------------
    def add_line(self, text: str) -> None:
        if not self.is_attached:
            return
        self.lines.append(text)
        self.query_one("#register-lines", Static).update("\n".join(self.lines))
        self.query_one("#register-log").scroll_end(animate=False)

    def show_code(self, flow) -> None:
        if self.is_attached:
            self.flow = flow
            box = self.query_one("#register-code", Static)
            self.draw_code()
            box.display = True

    def draw_code(self) -> None:
        """The framed instructions as wide as the dialog's inside (a frame wider than that wraps)."""
        from wizard.identity import device_code
        box = self.query_one("#register-code", Static)
        width = self.query_one("#dialog").content_size.width - box.styles.gutter.width
        box.update(device_code.display(self.flow, qr=False, width=max(min(width, 72), 20),
                                       who="a tenant admin's account"))

    def on_resize(self) -> None:
        if getattr(self, "flow", None) is not None and self.query_one("#register-code").display:
            self.draw_code()

    def tick(self, seconds: int) -> None:
        if self.is_attached:
            self.query_one("#dialog-text", Static).update(
                f"Waiting for the admin's sign-in: the code expires in {seconds // 60}:{seconds % 60:02d}. "
                "Esc cancels.")

    def finished(self, result, error: str | None) -> None:
        self.result = result
        if not self.is_attached:
            return
        self.query_one("#register-code").display = False
        button = self.query_one("#register-cancel", Button)
        button.label, button.variant = "Close (Esc)", "primary"
        text = self.query_one("#dialog-text", Static)
        if error:
            text.update(f"✘ {error}")
            return
        if result.ok:
            done = "Registered and tested" if result.check is not None else "Registered"
            later = "" if result.check is not None else " The connection test runs at stage 5, once the mail " \
                                                        "settings of stage 4 are in."
            text.update(f"✔ {done}" + ("" if result.changed else " (nothing had to change)") +
                        f": client {result.client_id}, saved to {self.path}.{later}")
            self.apply(result)
        else:
            d = result.diagnosis
            text.update(f"✘ Not finished: {d.cause if d else 'a step failed'}\nFix: {d.fix if d else ''}"
                        + (f"\nAdmin-consent URL: {result.consent_url}" if result.consent_url else "")
                        + "\nWhat exists now stays; press w again after the fix to complete it.")
            if result.client_id:
                self.apply(result)
        steps = [sec["title"].split(" (")[0] for sec in result.manual if not sec["title"].startswith("0.")]
        if steps:
            self.add_line("Beyond Graph, for an Exchange admin (Ctrl+O > Admin runbook has the commands): "
                          + "; ".join(steps))

    def apply(self, result) -> None:
        """The wizard's config takes the registration's values (the file has them already)."""
        new = getattr(result, "config", None)
        if new is None:
            return
        cfg = self.app.config
        cfg.microsoft.tenant_id, cfg.microsoft.client_id = new.microsoft.tenant_id, new.microsoft.client_id
        for name in ("client_secret", "secret_expires", "certificate", "thumbprint", "certificate_expires"):
            setattr(cfg.auth, name, getattr(new.auth, name))
        if hasattr(self.app, "mark_dirty"):
            self.app.mark_dirty()

    # -- the work -------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="register", exit_on_error=False, description="Register the app")
    def run_register(self) -> None:
        from wizard.identity.msal_common import AuthError
        from wizard.registration.engine import Options, register
        from wizard.registration.signin import finish_signin, start_signin
        from wizard.config.clouds import GRAPH_CLI_CLIENT_ID
        call = self.app.call_from_thread
        cancel = self.cancel
        try:
            boot, flow = start_signin(self.cfg, self.admin_client_id or GRAPH_CLI_CLIENT_ID)
            call(self.show_code, flow)
            token = finish_signin(boot, flow, cancel=cancel,
                                  on_tick=lambda s: None if cancel.is_set() else call(self.tick, s))
        except AuthError as exc:
            d = exc.diagnosis
            call(self.finished, None, "Cancelled." if cancel.is_set() else f"{d.code}: {d.cause} {d.fix or ''}")
            return
        claims = token.claims or {}
        call(self.add_line, f"✔ Signed in as {claims.get('upn') or '?'} (tenant {claims.get('tid')})")

        def event(kind: str, text: str) -> None:
            if not cancel.is_set():
                call(self.add_line, {"action": "✔ ", "failed": "✘ "}.get(kind, "… ") + text)

        # Before stage 4 the mail settings are not there to test: stage 5 tests them.
        result = register(self.cfg, self.path, token, Options(on_event=event, sleep=cancel.wait,
                                                              test=bool(self.cfg.outgoing.sender)))
        call(self.finished, result, None)

    # -- keys ---------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_close()

    def action_close(self) -> None:
        self.cancel.set()
        r = self.result
        self.dismiss({"ok": bool(r and r.ok), "client_id": r.client_id if r else ""} if r else None)
