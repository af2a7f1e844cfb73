"""The help screen (F1, or ? when the cursor is not in a text field): where you
are, which guide steps this stage covers, and every key that works here."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from screens import guide_data
from screens.widgets.keybar import KeyBar, key_label

GENERAL_KEYS = [
    ("Tab, Shift+Tab", "move between fields, lists and buttons"),
    ("Enter", "next field; on the last field it means Next"),
    ("Space, arrows", "choose in a list (system, sign-in method); arrows scroll text"),
    ("Esc", "close a dialog or this help"),
    ("?", "this help, when the cursor is not in a text field"),
]
TERMINAL_NOTE = ("If your terminal takes the F-keys (GNOME Terminal uses F1 and F10), open the "
                 "command list with ^o and type what you want: every action is there.")


def binding_rows(app, screen) -> list[tuple[str, str]]:
    """(keys, what it does) for every screen and app binding active on screen, shown
    or not (the text fields' and scroll areas' own editing keys are left out)."""
    from textual.app import App
    from textual.screen import Screen
    rows: dict[str, tuple[list[str], str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.description or not isinstance(active.node, (App, Screen)):
            continue
        keys, text = rows.setdefault(binding.action, ([], binding.tooltip or binding.description))
        shown = key_label(app, binding)
        if shown not in keys:
            keys.append(shown)
        if binding.tooltip and binding.description not in text:
            rows[binding.action] = (keys, f"{binding.description}: {binding.tooltip}")
    return [(", ".join(keys), text) for keys, text in rows.values()]


def help_text(app, screen) -> Text:
    text = Text()
    stage = getattr(screen, "STAGE", "")
    if stage:
        title, intro = guide_data.stage_text(app.guide, stage)
        number = guide_data.STAGES.index(stage) + 1
        text.append(f"Stage {number}/6: {title}\n", style="bold")
        text.append(intro.strip() + "\n")
        refs = guide_data.step_refs(guide_data.steps(app.guide, stage, app.config.auth.flow,
                                                     app.config.system))
        if refs:
            text.append("In the guide: ", style="bold")
            text.append(refs + "\n")
        text.append("\n")
    text.append("Keys on this screen\n", style="bold underline")
    rows = binding_rows(app, screen)
    width = min(max((len(keys) for keys, _ in rows), default=10), 16)   # one column of keys
    for keys, what in rows:
        text.append(f"  {keys:<{width}}", style="bold")
        text.append(f" {what}\n")
    text.append("\nKeys everywhere\n", style="bold underline")
    for keys, what in GENERAL_KEYS:
        text.append(f"  {keys:<15}", style="bold")
        text.append(f" {what}\n")
    text.append("\n" + TERMINAL_NOTE)
    return text


class HelpScreen(Screen[None]):
    BINDINGS = [Binding("escape,f1,q,question_mark", "close", "Close help", id="help-close")]

    def __init__(self, under) -> None:
        super().__init__()
        from screens.base import preset_breakpoints
        preset_breakpoints(self)
        self.under = under   # the screen the help is about

    def compose(self) -> ComposeResult:
        yield Static("Help · keys and where you are", id="help-title", classes="modal-title")
        with VerticalScroll(id="help-body", can_focus=True):
            yield Static(help_text(self.app, self.under), id="help-text")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def about(self, under) -> "HelpScreen":
        """Show the help for another screen (the app keeps one HelpScreen: building
        a new one on each F1 cost a keypress 50 ms)."""
        if under is not self.under:
            self.under = under
            self.query_one("#help-body").scroll_home(animate=False)
        self.query_one("#help-text", Static).update(help_text(self.app, under))
        return self

    def action_close(self) -> None:
        self.dismiss(None)


__all__ = ["HelpScreen", "binding_rows", "help_text", "key_label"]
