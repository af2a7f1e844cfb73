"""The shared base of the six stage screens: header, intro, guide steps, Back/Next/Quit."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Input, Static

from screens import guide_data
from screens.widgets.keybar import KeyBar
from screens.widgets.fields import CheckedField, StepList, field_dom_id


def preset_breakpoints(screen: Screen) -> Screen:
    """Give a new screen the size classes (-narrow/-wide, -short/-tall) that
    Textual's first Resize of it would set, from the app's current size, before
    it is mounted: the Resize then changes nothing, instead of restyling every
    widget of the freshly built screen a second time (20-40 ms for a stage).
    A later resize still updates them as usual."""
    try:
        app = screen.app
        width, height = app.size
    except Exception:   # built outside a running app (some tests): Textual sets them on Resize
        return screen
    classes: dict[str, bool] = {}
    for dimension, own, default in ((width, screen.HORIZONTAL_BREAKPOINTS, app.HORIZONTAL_BREAKPOINTS),
                                    (height, screen.VERTICAL_BREAKPOINTS, app.VERTICAL_BREAKPOINTS)):
        points = (default if own is None else own) or []
        for _, name in points:
            classes[name] = False
        for threshold, name in sorted(points, reverse=True):
            if dimension >= threshold:
                classes[name] = True
                break
    screen.update_classes(classes, update=False)
    return screen


def refused(screen, bad: CheckedField) -> None:
    """Say that Next (or Done) stopped at a field. The reason is under the field
    itself: the message says only where, on one line, so it takes little room."""
    screen.notify("not accepted; the reason is under the field.", title=bad.label,
                  severity="error", markup=False)


class StageScreen(Screen):
    """One stage of the wizard. Subclasses set STAGE and implement compose_body;
    commit() stores the values in app.config and returns the first bad field
    (or None) so Next can refuse."""

    STAGE = ""
    SHOW_STEPS = True
    STEPS_FIRST = True                  # False: the guide steps come after the stage's own content
    initial_focus: str | None = None   # config key of the field to focus on entry
    AUTO_FOCUS = None                   # focus is set in on_mount, without centring
    FIRST_FOCUS = "Input"               # what gets focus on entry (selector)
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", priority=True, id="next",
                tooltip="Go to the next stage (values are checked first)."),
        Binding("ctrl+p,ctrl+b", "back", "Back", priority=True, id="back",
                tooltip="Go back one stage; your values are kept."),
        Binding("ctrl+q", "app.quit", "Quit", priority=True, id="quit",
                tooltip="Leave the wizard (asks first when values are not saved)."),
        # Tab moves on as soon as it arrives, not after the field has taken the
        # keys before it: keys typed in one burst (a password manager's auto-type
        # "value, Tab, value") then land in the fields they were typed for.
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True, id="next-field"),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True,
                id="previous-field"),
    ]

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        preset_breakpoints(self)

    @property
    def number(self) -> int:
        return guide_data.STAGES.index(self.STAGE) + 1

    @property
    def cfg(self):
        return self.app.config

    @property
    def guide(self):
        return self.app.guide

    def compose(self) -> ComposeResult:
        title, intro = guide_data.stage_text(self.guide, self.STAGE)
        choice = guide_data.choice_line(self.guide, self.cfg.system, self.cfg.auth.flow)
        yield Static(f"Stage {self.number}/6 · {title}", id="stage-title", markup=False)
        demo = f"Demo tenant (sandbox on {self.app.demo.host})" if self.app.demo is not None else ""
        if self.number > 1:
            line = Text(choice)
            if demo:
                line.append(" · ")
                line.append("Demo", style="bold reverse")
            yield Static(line, id="stage-choice")
        elif demo:
            yield Static(demo, id="demo-banner")
        with VerticalScroll(id="body"):
            yield Static(intro, classes="intro", markup=False)
            steps = guide_data.steps(self.guide, self.STAGE, self.cfg.auth.flow, self.cfg.system)
            refs = guide_data.step_refs(steps)
            if refs:
                yield Static(f"In the guide: {refs}", id="guide-ref", markup=False)
            if self.SHOW_STEPS and self.STEPS_FIRST:
                yield StepList(steps, id="steps")
            yield from self.compose_body()
            if self.SHOW_STEPS and not self.STEPS_FIRST:
                yield StepList(steps, id="steps")
        yield KeyBar()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        # Focus at once: keys typed right after Next (a paste, a fast typist) go
        # to the first field instead of being lost before the first refresh.
        self.focus_first()

    def focus_first(self) -> None:
        """Focus the initial widget, scrolling only as far as needed to show it
        (Textual's own focus scrolling centres the widget and hides the intro)."""
        if self.initial_focus and self.focus_field(self.initial_focus):
            return
        found = self.query(self.FIRST_FOCUS)
        if found:
            self.show_focused(found.first())

    def show_focused(self, widget) -> None:
        self.set_focus(widget, scroll_visible=False)
        if widget.id != "body":
            self.call_after_refresh(self.query_one("#body").scroll_to_widget, widget, animate=False)

    # -- fields -----------------------------------------------------------
    def field(self, key: str, name: str, check, value, **kwargs) -> CheckedField:
        """A CheckedField for config key; the raw text typed earlier wins."""
        label, help_ = guide_data.field_text(self.guide, name)
        raw = self.app.drafts.get(key)
        if raw is None:
            raw = "" if value is None else str(value)
        return CheckedField(key, kwargs.pop("label", label), check, raw, help=help_, **kwargs)

    def on_input_changed(self, event: Input.Changed) -> None:
        box = next((a for a in event.input.ancestors if isinstance(a, CheckedField)), None)
        if box is None:
            return
        if event.value != box.initial:   # Inputs also report their initial value on mount
            self.app.mark_dirty()
        if box.keep_draft:
            self.app.drafts[box.key] = event.value
            checked = box.checked()
            if checked.ok:
                self.store(box.key, checked.value)

    def on_input_blurred(self, event: Input.Blurred) -> None:
        """Leaving a filled secret field: ask once whether drafts may keep secrets."""
        box = next((a for a in event.input.ancestors if isinstance(a, CheckedField)), None)
        if box is None:
            return
        from screens.dialogs.resume import secret_slot
        self.app.keeper.save_now()
        if event.value and (box.password or secret_slot(self.cfg, box.key)):
            self.app.keeper.ask_consent()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter moves to the next field; on the last one it means Next."""
        inputs = [w for w in self.query(Input) if w.display]
        if inputs and event.input is inputs[-1]:
            self.action_next()
        else:
            self.focus_next()

    def store(self, key: str, value) -> None:
        """Write a checked value into app.config (dotted key)."""
        section, _, name = key.partition(".")
        target = getattr(self.cfg, section) if name else self.cfg
        setattr(target, name or section, value)

    def commit(self) -> CheckedField | None:
        """Store every field; return the first one whose value is refused."""
        bad = None
        for box in self.query(CheckedField):
            if not box.display or (box.parent is not None and not box.parent.display):
                continue
            checked = box.checked()
            box.show(checked)
            if checked.ok:
                self.store(box.key, checked.value)
            elif bad is None:
                bad = box
        return bad

    def focus_field(self, key: str | None) -> bool:
        if not key:
            return False
        found = self.query("#" + field_dom_id(key))
        if not found:
            return False
        self.show_focused(found.first())
        return True

    # -- navigation -------------------------------------------------------
    def refuse(self, bad: CheckedField) -> None:
        """Focus a refused field and say why."""
        bad.input.focus()
        refused(self, bad)

    def action_next(self) -> None:
        bad = self.commit()
        if bad is not None:
            self.refuse(bad)
            return
        self.app.next_stage()

    def action_back(self) -> None:
        self.commit()
        self.app.prev_stage()
