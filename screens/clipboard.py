"""Copying text to the terminal's clipboard (OSC 52), with a plain view as fallback.

Textual's ``App.copy_to_clipboard`` writes the OSC 52 escape sequence; the
terminal (and tmux with ``set-clipboard on``) decides whether it honours it, and
nothing tells us whether it did. So the notification also offers the plain view:
the text alone on a screen, without borders, for the terminal's own selection.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static


def copy_text(app, text: str, what: str, plain_key: str = "p") -> None:
    app.copy_to_clipboard(text)
    app.notify(
        f"Copied the {what} to the clipboard (OSC 52). If pasting gives nothing, your "
        f"terminal does not allow it (in tmux: set -g set-clipboard on): press {plain_key} "
        "to show it plain and select it with the mouse.",
        title="Copied", timeout=8,
    )


class PlainTextScreen(ModalScreen[None]):
    """The text alone, no borders or padding, so the terminal can select it cleanly."""

    BINDINGS = [Binding("escape,q", "close", "Close", id="plain-close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="plain"):
            yield Static(self.text, markup=False, id="plain-text")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
