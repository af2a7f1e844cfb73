"""Yes/no confirmation dialog, returning a bool."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmDialog(ModalScreen[bool]):
    """Ask a yes/no question: y or the yes button answers yes, n or the no button no.
    ``default`` is the answer whose button has the focus (Enter); ``escape`` the
    answer Escape gives (no, unless told: Escape must never do the risky thing)."""

    BINDINGS = [
        Binding("escape", "escape", "Close", id="confirm-escape"),
        Binding("n", "answer(False)", "No", id="confirm-no"),
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),
        Binding("left,right", "app.focus_previous", show=False),
    ]

    def __init__(self, title: str, text: str, *, yes: str = "Yes", no: str = "No",
                 default: bool = False, escape: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.yes = yes
        self.no = no
        self.default = default
        self.escape = escape

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="dialog-title", markup=False)
            yield Static(self.text, id="dialog-text", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="primary" if self.default else "error", id="yes")
                yield Button(f"{self.no} (n)", variant="error" if self.default else "primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes" if self.default else "#no").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    def action_escape(self) -> None:
        self.dismiss(self.escape)
