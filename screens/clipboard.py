"""Copying text to the terminal's clipboard (OSC 52), with a plain view as fallback.

Textual's ``App.copy_to_clipboard`` writes the OSC 52 escape sequence; the
terminal (and tmux with ``set-clipboard on``) decides whether it honours it, and
nothing tells us whether it did. So the notification also offers the plain view:
the text alone on a screen, without borders, for the terminal's own selection.
"""

from __future__ import annotations

import base64
import os

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from screens.widgets.keybar import KeyBar


def in_gnu_screen(environ=os.environ) -> bool:
    """GNU screen is somewhere between the wizard and the terminal (STY is set by
    screen and inherited by whatever runs inside it, a tmux included)."""
    return "STY" in environ


def clipboard_sequence(text: str, environ=os.environ) -> str:
    """What to write to copy text: OSC 52, and inside GNU screen also the same
    wrapped for screen. Which of screen and tmux is the inner one cannot be told
    from the environment when both are there (each inherits the other's
    variable), so both forms go out: screen drops the plain one and passes the
    wrapped one on; tmux takes the plain one and drops the wrapped one."""
    if not in_gnu_screen(environ):
        return osc52(text)
    return osc52(text) + osc52(text, gnu_screen=True)


def osc52(text: str, *, gnu_screen: bool = False) -> str:
    """The OSC 52 'set clipboard' sequence. GNU screen passes a sequence to the outer
    terminal only inside DCS strings of limited length, so it is sent in pieces."""
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    if not gnu_screen:
        return f"\x1b]52;c;{data}\a"
    pieces = [data[i:i + 76] for i in range(0, len(data), 76)] or [""]
    return "\x1bP\x1b]52;c;" + "\x1b\\\x1bP".join(pieces) + "\x07\x1b\\"


def copy_text(app, text: str, what: str, plain_key: str = "p") -> None:
    app.copy_to_clipboard(text)
    app.notify(
        f"the {what} (OSC 52). Pasting gives nothing? Press {plain_key} and select it with "
        "the mouse (tmux: set -g set-clipboard on).",
        title="Copied", timeout=8, markup=False,
    )


def can_suspend(app) -> bool:
    driver = getattr(app, "_driver", None)
    return driver is not None and getattr(driver, "can_suspend", False) and not app.is_headless


def show_plain(app, text: str, title: str = "the text") -> None:
    """Show text plain, for the terminal's own mouse selection. In a terminal the
    wizard steps aside (its screen is put away) and the text is printed as it is:
    the terminal wraps a long line itself and copies it back as ONE line, so an
    endpoint, the scopes or a runbook command come out whole and runnable. A line
    drawn by the wizard is a row of its own, and a wrapped row would be copied with
    a line break in the middle. Enter goes back. Where that is not possible, the
    wizard's own plain view, which never wraps (it scrolls sideways)."""
    if not can_suspend(app):
        app.push_screen(PlainTextScreen(text))
        return
    out, keys = terminal_streams()
    lost = False
    with app.suspend():
        try:
            print_plain(text, title, out, keys)
        except (EOFError, OSError):   # the terminal went away while the text was shown
            lost = True
    if lost and hasattr(app, "terminal_present") and not app.terminal_present():
        app.hung_up()


def terminal_streams():
    """The terminal's own output and input (the app's are redirected while it runs)."""
    import sys
    return sys.__stdout__, sys.__stdin__


def print_plain(text: str, title: str, out, keys) -> None:
    """The text, nothing added inside it, then a line saying how to go back; waits for Enter."""
    if getattr(out, "isatty", lambda: False)():
        out.write("\x1b[H\x1b[2J")   # a clear screen: only the text to select
    out.write(text.rstrip("\n") + "\n\n")
    out.write(f"(End of {title}. Long lines are whole: select them with the mouse. "
              "Press Enter to go back to the wizard.)\n")
    out.flush()
    keys.readline()


class PlainTextScreen(Screen[None]):
    """The text alone, no borders or padding, so the terminal can select it cleanly.
    Lines are never wrapped (a wrapped line would be copied as two): a line wider
    than the terminal scrolls sideways (arrows)."""

    BINDINGS = [Binding("escape,q", "close", "Close", id="plain-close")]
    DEFAULT_CSS = """
    PlainTextScreen #plain { overflow-x: auto; scrollbar-size-horizontal: 1; }
    PlainTextScreen #plain-text { width: auto; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        from rich.text import Text
        with ScrollableContainer(id="plain", can_focus=True):
            yield Static(Text(self.text, no_wrap=True, overflow="ignore"), id="plain-text")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#plain").focus()

    def action_close(self) -> None:
        self.dismiss(None)


class TextViewScreen(Screen[None]):
    """A document (settings sheet, runbook) to read, copy (c) or show plain (p)."""

    BINDINGS = [
        Binding("c", "copy", "Copy", id="view-copy", tooltip="Copy it to your clipboard over OSC 52."),
        Binding("p", "plain", "Show plain", id="view-plain",
                tooltip="Show it alone, without borders, to select it with the mouse."),
        Binding("escape,q", "close", "Close", id="view-close"),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, classes="modal-title", markup=False)
        with VerticalScroll(id="view-body", can_focus=True):
            yield Static(self.text, markup=False, id="view-text")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#view-body").focus()

    def action_copy(self) -> None:
        copy_text(self.app, self.text, self.title_text.lower())

    def action_plain(self) -> None:
        show_plain(self.app, self.text, self.title_text.lower())

    def action_close(self) -> None:
        self.dismiss(None)
