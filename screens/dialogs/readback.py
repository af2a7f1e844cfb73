"""Read-back view (F3) for support calls: the current screen's IDs shown large,
in groups of four with the check letter, NATO spelling on demand (n), and the
focused ID copied over OSC 52 (c) or shown plain (p). Secrets never appear."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Digits, Static

from wizard.guide import readback

from screens import guide_data
from screens.clipboard import copy_text, show_plain
from screens.widgets.keybar import KeyBar
from screens.widgets.fields import CheckedField

# What each stage reads back; other stages show every ID known so far.
STAGE_KEYS = {
    "ids": ["microsoft.client_id", "microsoft.tenant_id", "auth.username"],
    "mail": ["outgoing.sender", "outgoing.test_recipient"],
}
ALL_KEYS = ["microsoft.client_id", "microsoft.tenant_id", "auth.username", "outgoing.sender",
            "outgoing.test_recipient"]
NBSP = "\u00a0"


def _config_value(cfg, key: str) -> str:
    section, _, name = key.partition(".")
    value = getattr(getattr(cfg, section, None), name, "")
    return "" if value is None else str(value)


def readback_items(app, screen) -> list[tuple[str, str]]:
    """(label, value) of the IDs to read back from screen: the value as it is in the
    field now (cleaned when valid), else as in the config. Never a secret."""
    stage = getattr(screen, "STAGE", "")
    cfg = app.config
    keys = list(STAGE_KEYS.get(stage, ALL_KEYS))
    if stage == "ids" and cfg.auth.flow != "password":
        keys.remove("auth.username")
    boxes = {box.key: box for box in screen.query(CheckedField)} if stage else {}
    items = []
    for key in keys:
        box = boxes.get(key)
        if box is not None:
            checked = box.checked()
            value = str(checked.value) if checked.ok and checked.value else box.raw.strip()
        else:
            value = _config_value(cfg, key)
        if not value and stage not in STAGE_KEYS:
            continue
        label = guide_data.field_text(app.guide, key.rpartition(".")[2])[0]
        items.append((label, value))
    # then the rest of the setup a call goes through: servers and ports, the secret's
    # expiry, incoming accounts, per-user settings (stage 4 first)
    rest = readback.setup_items(cfg)
    if stage == "mail":
        rest.sort(key=lambda item: item[0] == "Secret expires")
    return items + rest


def is_hex_id(value: str) -> bool:
    bare = "".join(readback.groups(value))
    return len(bare) >= 8 and all(c in readback.HEX for c in bare)


def big_lines(value: str, per_line: int) -> list[str]:
    """The groups for the Digits widget (which draws 0-9 and A-F only)."""
    parts = [g.upper() for g in readback.groups(value)]
    return [(NBSP * 2).join(parts[i:i + per_line]) for i in range(0, len(parts), per_line)]


DIGIT_CELLS = 3        # Digits draws each character three cells wide
ITEM_CHROME = 2 + 1 + 2 + 2   # the view's padding, its scroll bar, an item's border and padding


def groups_per_line(width: int) -> int:
    """As many groups of an ID a line (4, 3 or 2) as fit drawn large (at 60 columns
    four took 66 cells and lost their last column)."""
    for n in (4, 3):
        if len(big_lines("0" * 4 * n, n)[0]) * DIGIT_CELLS <= width - ITEM_CHROME:
            return n
    return 2


def detail_text(label: str, value: str, spelled: bool, parts=None) -> str:
    """render_readback without its label line (the item shows the label itself), and
    for a plain value (an address, a server) without the value again: the item
    shows it already, only its spelling is added (of ``parts`` alone when given:
    the values inside a phrase, not its words)."""
    lines = readback.render_readback(label, value, spelled=spelled, parts=parts).split("\n")[1:]
    if value and not is_hex_id(value):
        lines = lines[1:]
    return "\n".join(lines)


class ReadBackItem(Vertical, can_focus=True):
    def __init__(self, label: str, value: str, per_line: int, parts=None) -> None:
        super().__init__(classes="rb-item")
        self.label = label
        self.value = value
        self.per_line = per_line
        self.parts = parts      # [(what, value)] inside a phrase (readback.setup_parts); None: the whole value

    def compose(self) -> ComposeResult:
        yield Static(self.label, classes="rb-label", markup=False)
        if self.value and is_hex_id(self.value):
            for line in big_lines(self.value, self.per_line):
                yield Digits(line, classes="rb-big")
        elif self.value:
            yield Static(self.value, classes="rb-plain", markup=False)
        detail = Static(detail_text(self.label, self.value, False), classes="rb-detail", markup=False)
        detail.display = bool(detail_text(self.label, self.value, False))
        yield detail

    def show_spelling(self, spelled: bool) -> None:
        text = detail_text(self.label, self.value, spelled, self.parts)
        detail = self.query_one(".rb-detail", Static)
        detail.update(text)
        detail.display = bool(text)


class ReadBackScreen(Screen[None]):
    BINDINGS = [
        Binding("n", "spell", "NATO spelling", id="rb-spell",
                tooltip="Show or hide the spelling of each character (alpha, bravo, ...)."),
        Binding("c", "copy", "Copy ID", id="rb-copy",
                tooltip="Copy the highlighted ID to your clipboard over OSC 52."),
        Binding("p", "plain", "Show plain", id="rb-plain",
                tooltip="Show the highlighted ID alone, to select it with the mouse."),
        Binding("escape,f3,q", "close", "Close", id="rb-close"),
    ]

    def __init__(self, under) -> None:
        super().__init__()
        from screens.base import preset_breakpoints
        preset_breakpoints(self)
        self.under = under
        self.spelled = False

    def compose(self) -> ComposeResult:
        stage = getattr(self.under, "STAGE", "")
        where = guide_data.stage_text(self.app.guide, stage)[0] if stage else "the wizard"
        yield Static(f"Read back · {where}", classes="modal-title", markup=False)
        per_line = groups_per_line(self.app.size.width)
        with VerticalScroll(id="readback"):
            items = readback_items(self.app, self.under)
            parts = readback.setup_parts(self.app.config)
            if not items:
                yield Static("No IDs entered yet: they are typed at stage 3 (IDs) and 4 (mail).",
                             classes="rb-detail")
            for label, value in items:
                yield ReadBackItem(label, value, per_line, parts.get(label))
            yield Static("Read the groups, then the check letter: the listener types them with "
                         "spaces or dashes and the check letter; the field then confirms it.",
                         classes="field-help")
        yield KeyBar()

    def on_mount(self) -> None:
        found = self.query(ReadBackItem)
        if found:
            found.first().focus()

    def current(self) -> ReadBackItem | None:
        return self.focused if isinstance(self.focused, ReadBackItem) else None

    def action_spell(self) -> None:
        self.spelled = not self.spelled
        for item in self.query(ReadBackItem):
            item.show_spelling(self.spelled)

    def action_copy(self) -> None:
        item = self.current()
        if item is not None and item.value:
            copy_text(self.app, item.value, item.label)

    def action_plain(self) -> None:
        item = self.current()
        if item is not None and item.value:
            show_plain(self.app, item.value, item.label)

    def action_close(self) -> None:
        self.dismiss(None)
