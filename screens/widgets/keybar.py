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


class KeyBar(Widget):
    """Docked at the bottom; as tall as the keys need."""

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
        return len(pack(self._items(), max(width, 1)))

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ignore")
        for n, line in enumerate(pack(self._items(), max(self.content_size.width, 1))):
            if n:
                text.append("\n")
            for m, (key, desc) in enumerate(line):
                if m:
                    text.append(SEPARATOR)
                text.append(key, style="bold")
                text.append(" " + desc)
        return text
