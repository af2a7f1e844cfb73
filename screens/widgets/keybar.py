"""The key bar: every key of the current screen, wrapped onto as many lines as
the terminal's width needs (Textual's Footer is one line and cuts keys off at
60 columns). Keys are bold, descriptions plain: readable without colour."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

SEPARATOR = "  "


def key_label(app, binding) -> str:
    """'^n', 'F1', 'esc': how a binding's key is shown."""
    shown = app.get_key_display(binding)
    if len(shown) in (2, 3) and shown[0] == "f" and shown[1:].isdigit():
        shown = shown.upper()
    return shown


def screen_keys(screen) -> list[tuple[str, str, object]]:
    """(key shown, description, binding) of the screen's shown bindings, one per action."""
    seen: set[str] = set()
    items = []
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.show or not binding.description or binding.action in seen:
            continue
        seen.add(binding.action)
        items.append((key_label(screen.app, binding), binding.description, binding))
    return items


def pack(items: list[tuple[str, str]], width: int) -> list[list[tuple[str, str]]]:
    """Greedy line packing of 'key description' items; an item is never split."""
    lines: list[list[tuple[str, str]]] = [[]]
    used = 0
    for key, desc in items:
        size = len(key) + 1 + len(desc)
        extra = size if not lines[-1] else len(SEPARATOR) + size
        if lines[-1] and used + extra > width:
            lines.append([])
            used, extra = 0, size
        lines[-1].append((key, desc))
        used += extra
    return lines


SYMBOLS = {"error": "✘ ", "warning": "! ", "information": ""}
MAX_MESSAGE_LINES = 6


def message_text(message: str, title: str = "", severity: str = "information",
                 markup: bool = False) -> Text:
    """A message as the key bar shows it: state by symbol and word, the title bold."""
    text = Text()
    head = SYMBOLS.get(severity, "") + title
    if head.strip():
        text.append(head.rstrip() + ": ", style="bold")
    body = Text.from_markup(message) if markup else Text(message)
    text.append_text(body)
    return text


class KeyBar(Widget):
    """Docked at the bottom; as tall as the keys need, and the last message above
    them. Messages are part of the layout (the body gets shorter while one is
    shown) instead of a toast drawn over the fields: they never cover what the
    user types into, selects or answers."""

    message: Text | None = None
    message_severity = ""
    _message_timer = None

    def show_message(self, text: Text, timeout: float | None, severity: str = "information") -> None:
        self.message = text
        self.message_severity = severity
        if self._message_timer is not None:
            self._message_timer.stop()
        self._message_timer = self.set_timer(timeout, self.clear_message) if timeout else None
        self.refresh(layout=True)
        self.call_after_refresh(self._keep_focus_in_view)

    def clear_message(self) -> None:
        self.message = None
        self._message_timer = None
        self.refresh(layout=True)

    def _keep_focus_in_view(self) -> None:
        focused = self.screen.focused
        if focused is not None and focused.is_attached:
            focused.scroll_visible(animate=False, immediate=True)

    def _message_lines(self, width: int) -> list[Text]:
        if self.message is None:
            return []
        lines = list(self.message.wrap(self.app.console, max(width, 1)))
        if len(lines) > MAX_MESSAGE_LINES:
            lines = lines[:MAX_MESSAGE_LINES]
            lines[-1].truncate(max(width - 1, 1))
            lines[-1].append("…")
        return lines

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh(layout=True)

    def _items(self) -> list[tuple[str, str]]:
        return [(key, desc) for key, desc, _ in screen_keys(self.screen)]

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._message_lines(width)) + len(pack(self._items(), max(width, 1)))

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ignore")
        width = max(self.content_size.width, 1)
        for line in self._message_lines(width):
            text.append_text(line)
            text.append("\n")
        for n, line in enumerate(pack(self._items(), width)):
            if n:
                text.append("\n")
            for m, (key, desc) in enumerate(line):
                if m:
                    text.append(SEPARATOR)
                text.append(key, style="bold")
                text.append(" " + desc)
        return text


def show_message(app, message: str, title: str, severity: str, timeout: float | None,
                 markup: bool) -> bool:
    """Show a message where it covers nothing: in the key bar of the screen on top, or
    at the end of its dialog box. False when the screen has neither."""
    from textual.widgets import Static
    try:
        screen = app.screen
    except Exception:   # no screen yet (start-up)
        return False
    text = message_text(message, title, severity, markup)
    bars = screen.query(KeyBar)
    if bars:
        bars.first().show_message(text, timeout, severity)
        return True
    dialogs = screen.query("#dialog, #rec-dialog")
    if not dialogs:
        return False
    found = screen.query(".dialog-msg")
    line = found.first(Static) if found else Static("", classes="dialog-msg field-msg")
    line.update(text)
    line.set_class(severity == "error", "-error")
    if not found:
        dialogs.first().mount(line)
    line.display = True
    return True
