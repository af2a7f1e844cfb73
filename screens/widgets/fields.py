"""Small reusable widgets: a labelled, checked input field and a guide step list."""

from __future__ import annotations

import re
from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.validation import ValidationResult, Validator
from textual.widgets import Checkbox, Input, RadioButton, Static

from wizard.config.fields import Checked

Check = Callable[[str], Checked]


def field_dom_id(key: str) -> str:
    """'microsoft.client_id' -> 'f-microsoft-client_id' (a valid widget id)."""
    return "f-" + key.replace(".", "-").replace("[", "-").replace("]", "")


class CheckValidator(Validator):
    """Wraps a wizard.config.fields check so the Input gets -valid/-invalid styling."""

    def __init__(self, check: Check) -> None:
        super().__init__()
        self.check = check

    def validate(self, value: str) -> ValidationResult:
        checked = self.check(value)
        return self.failure(checked.error) if checked.error else self.success()


class CheckedField(Vertical):
    """A label, an Input, short help and a message line (error, warning, notes).

    ``key`` is the dotted config key the value belongs to. The field never shows
    the value itself in its messages (the wizard.config.fields messages do not either).
    """

    def __init__(self, key: str, label: str, check: Check, value: str = "", *,
                 help: str = "", password: bool = False, placeholder: str = "",
                 optional: bool = False, keep_draft: bool = True) -> None:
        super().__init__(classes="field", id=field_dom_id(key) + "-box")
        self.key = key
        self.label = label
        self.check_fn = check
        self.initial = value
        self.help = help
        self.password = password
        self.placeholder = placeholder
        self.optional = optional
        self.keep_draft = keep_draft   # False: the screen stores the raw value itself

    def compose(self) -> ComposeResult:
        yield Static(self.label, classes="field-label", markup=False)
        yield Input(
            self.initial,
            placeholder=self.placeholder,
            password=self.password,
            id=field_dom_id(self.key),
            validators=[CheckValidator(self._check)],
            validate_on=["changed", "submitted"],
        )
        msg = Static("", classes="field-msg")
        msg.display = False
        yield msg
        if self.help:
            yield Static(self.help, classes="field-help", markup=False)

    def on_mount(self) -> None:
        if self.initial:
            self.show(self.checked())

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def raw(self) -> str:
        return self.input.value

    def _check(self, raw: str) -> Checked:
        if self.optional and not raw.strip():
            return Checked("", None)
        return self.check_fn(raw)

    def checked(self) -> Checked:
        return self._check(self.raw)

    def show(self, checked: Checked) -> None:
        """Put the error (or warning and clean-up notes) under the field."""
        msg = self.query_one(".field-msg", Static)
        text = Text()
        if checked.error:
            text.append("✘ Error: ", style="bold")
            text.append(checked.error)
        else:
            if checked.warning:
                text.append("! Warning: ", style="bold")
                text.append(checked.warning)
            if checked.notes:
                if text:
                    text.append("\n")
                # "kept as <value>" (GUID fields only) gets a line of its own
                notes = [n for n in checked.notes if not n.startswith("kept as ")]
                kept = [n for n in checked.notes if n.startswith("kept as ")]
                text.append("✔ OK: " + "; ".join(notes or kept))
                if notes and kept:
                    text.append("\n  " + kept[0])
        msg.update(text)
        msg.set_class(bool(checked.error), "-error")
        msg.set_class(not checked.error and bool(checked.warning), "-warning")
        msg.display = bool(text)
        if text and self.input.has_focus:
            # keep the message in view while typing at the bottom of the screen
            self.call_after_refresh(self.scroll_visible, animate=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show(self.checked())

    def on_descendant_focus(self, event) -> None:
        # the label and the help belong with the input: bring the whole field into view
        self.call_after_refresh(self.scroll_visible, animate=False)


BULLET = re.compile(r"^(\s*)([•+−!*-]\s+|\d+[.)]\s+)?")


def _rows(plain: str, first: int, rest: int) -> list[tuple[int, int]]:
    """Greedy word wrap: (start, end) of each row; a word longer than a row is folded."""
    rows, start, width, size = [], 0, max(first, 1), len(plain)
    while size - start > width:
        cut = plain.rfind(" ", start, start + width + 1)
        if cut <= start:
            cut, nxt = start + width, start + width
        else:
            nxt = cut
        rows.append((start, cut))
        start = nxt
        while start < size and plain[start] == " ":
            start += 1
        width = max(rest, 1)
    rows.append((start, size))
    return rows


def hang_wrap(text: Text, width: int, hang: int = 0) -> Text:
    """Wrap text at width; a wrapped line continues under its text, not under its
    bullet ('• ', '+ ', '1. ') or, for a line without one, ``hang`` columns in."""
    out = Text(no_wrap=True, overflow="ignore", end="")
    for n, line in enumerate(text.split("\n", allow_blank=True)):
        if n:
            out.append("\n")
        found = BULLET.match(line.plain)
        indent = len(found.group(0)) if found.group(2) else len(found.group(1)) + hang
        if indent > width // 3:
            indent = 0
        for m, (start, end) in enumerate(_rows(line.plain, width, width - indent)):
            if m:
                out.append("\n" + " " * indent)
            out.append_text(line[start:end])
    return out


class HangingText:
    """A Rich renderable: text wrapped with hanging indents at the width it gets
    (``str()`` is the text itself, unwrapped)."""

    def __init__(self, text: Text | str, hang: int = 0) -> None:
        self.text = Text(text) if isinstance(text, str) else text
        self.hang = hang

    def __str__(self) -> str:
        return self.text.plain

    def __rich_console__(self, console, options):
        yield hang_wrap(self.text, options.max_width, self.hang)

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement
        longest = max((len(line) for line in self.text.plain.split("\n")), default=0)
        return Measurement(min(longest, 10), longest)


class Hanging(Static):
    """A Static drawn with hanging indents (see hang_wrap); ``str(render())`` is its text."""

    def __init__(self, text: Text | str = "", *, hang: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hanging = HangingText(text, hang)

    def update(self, content: Text | str = "", *, layout: bool = True) -> None:
        self.hanging = HangingText(content, self.hanging.hang)
        self.refresh(layout=layout)

    def render(self):
        return self.hanging


class InnerScroll(VerticalScroll):
    """A scrolling box inside the stage's scrolling body (guide steps, manifest JSON,
    preview). Arrows and PageUp/PageDown scroll the box while it is on screen and
    has more to show that way; at its top or bottom, or once the page has moved it
    out of view, the same key moves the body (the page) instead of stopping dead."""

    def _in_view(self) -> bool:
        try:
            geometry = self.screen.find_widget(self)
        except Exception:   # not laid out yet
            return False
        return geometry.clip.contains_region(geometry.region)

    def _can_move(self, down: bool) -> bool:
        if not self.allow_vertical_scroll or not self._in_view():
            return False
        target = self.scroll_target_y
        return target < self.max_scroll_y if down else target > 0

    def _chain(self, down: bool) -> None:
        from textual.actions import SkipAction
        if not self._can_move(down):
            raise SkipAction()   # the binding of the scrolling body below takes the key

    def action_scroll_down(self) -> None:
        self._chain(True)
        super().action_scroll_down()

    def action_scroll_up(self) -> None:
        self._chain(False)
        super().action_scroll_up()

    def action_page_down(self) -> None:
        self._chain(True)
        super().action_page_down()

    def action_page_up(self) -> None:
        self._chain(False)
        super().action_page_up()


class StepList(InnerScroll):
    """The guide's numbered steps for one stage, each with its reference.
    Its height is capped so the first field stays in view; it scrolls itself."""

    def __init__(self, steps, *, title: str = "Steps in the guide", **kwargs) -> None:
        super().__init__(classes="steps", **kwargs)
        self.items = list(steps)
        self.border_title = f"{title} ({len(self.items)})" if self.items else title

    def compose(self) -> ComposeResult:
        yield Hanging(self.render_steps(self.items), hang=2)

    @staticmethod
    def render_steps(steps) -> Text:
        text = Text()
        if not steps:
            text.append("The guides have no steps for this stage with this system and method.",
                        style="italic")
            return text
        for n, step in enumerate(steps):
            if n:
                text.append("\n")
            ref = getattr(step, "ref", "") or ""
            if ref:
                text.append(ref + ": ", style="bold")
            text.append(getattr(step, "text", str(step)))
        return text


class Choice(RadioButton):
    """A radio button whose mark is visible without colour: ● chosen, blank not."""

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 (Textual's name)
        return "●" if self.value else " "


class Tick(Checkbox):
    """A checkbox whose mark is visible without colour: X ticked, blank not."""

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 (Textual's name)
        return "X" if self.value else " "
