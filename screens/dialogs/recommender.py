""""Help me choose": a few questions -> the recommended flow and protocol, with the reason."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, RadioSet, Static

from wizard.guide import recommend as rc

from screens.widgets.fields import Choice, Tick

SPEAKS = {   # RadioButton id -> the protocols the system speaks
    "speaks-ews": ("ews",),
    "speaks-graph": rc.CHOICES,
    "speaks-smtp_imap": ("smtp+imap",),
}
SPEAKS_LABELS = {"speaks-ews": "EWS only", "speaks-graph": "Microsoft Graph (and maybe others)",
                 "speaks-smtp_imap": "SMTP + IMAP only"}


class RecommenderScreen(ModalScreen):
    """Dismisses with a ``wizard.guide.recommend.Recommendation`` (u) or None (Escape)."""

    BINDINGS = [
        Binding("u", "use", "Use this", id="rec-use", tooltip="Apply the recommended flow and protocol."),
        Binding("escape", "cancel", "Cancel", id="rec-cancel"),
    ]
    DEFAULT_CSS = """
    RecommenderScreen { align: center middle; }
    RecommenderScreen #rec-dialog {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    RecommenderScreen Checkbox, RecommenderScreen Checkbox:focus { border: none; padding: 0; height: auto; }
    RecommenderScreen RadioSet { border: none; padding: 0; height: auto; }
    RecommenderScreen #rec-result { border: round $accent; padding: 0 1; height: auto; }
    RecommenderScreen #rec-buttons { height: auto; }
    RecommenderScreen #rec-buttons Button { margin: 0 1 0 0; }
    """

    def compose(self) -> ComposeResult:
        cfg = self.app.config
        speaks = {"monitor_g5": "speaks-ews", "efecte_esm": "speaks-smtp_imap"}.get(cfg.system, "speaks-graph")
        with VerticalScroll(id="rec-dialog"):
            yield Static("Help me choose: answer for the system you connect", classes="modal-title")
            yield Tick("The system can sign in as an app (app-only)",
                           cfg.system != "efecte_esm", id="rec-app-only")
            yield Tick("MFA is enforced for the service account", False, id="rec-mfa")
            yield Tick("Conditional Access or security defaults are on", False, id="rec-ca")
            yield Tick("Exchange Server on-premises (not Exchange Online)",
                           cfg.microsoft.exchange == "on_premises", id="rec-onprem")
            yield Static("The system speaks:")
            with RadioSet(id="rec-speaks"):
                for key, label in SPEAKS_LABELS.items():
                    yield Choice(label, value=key == speaks, id=key)
            yield Static("", id="rec-result", markup=False)
            with Horizontal(id="rec-buttons"):
                yield Button("Use this (u)", variant="primary", id="rec-use")
                yield Button("Cancel (Esc)", id="rec-cancel")

    def on_mount(self) -> None:
        self.query_one("#rec-app-only").focus(scroll_visible=False)   # keep the title in view
        self.update_result()

    def answers(self) -> rc.Answers:
        q = self.query_one
        pressed = q("#rec-speaks", RadioSet).pressed_button
        return rc.Answers(system=self.app.config.system, app_only=q("#rec-app-only", Checkbox).value,
                          mfa=q("#rec-mfa", Checkbox).value, conditional_access=q("#rec-ca", Checkbox).value,
                          speaks=SPEAKS.get(pressed.id if pressed else "", rc.CHOICES),
                          exchange="on_premises" if q("#rec-onprem", Checkbox).value else "online")

    def recommendation(self) -> rc.Recommendation:
        return rc.recommend(self.answers())

    def update_result(self) -> None:
        result = self.query_one("#rec-result", Static)
        result.update(self.recommendation().text(brief=True))
        result.border_title = "Recommendation"

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.update_result()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        self.update_result()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "rec-use":
            self.action_use()
        else:
            self.action_cancel()

    def action_use(self) -> None:
        self.dismiss(self.recommendation())

    def action_cancel(self) -> None:
        self.dismiss(None)
