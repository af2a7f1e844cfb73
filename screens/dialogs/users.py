"""Per-user e-mail settings (Monitor G5 22.6, guide 003): ``[[users]]`` entries such
as the WEBSHOP user sending with its own Exchange user name and password.
Reached from the mail stage with F7; Escape (or ctrl+n) checks the rows and goes back."""

from __future__ import annotations

import re

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Input, RadioSet, Static

from wizard.config import fields as f
from wizard.config.schema import UserOverride

from screens.widgets.keybar import KeyBar
from screens.widgets.fields import CheckedField, Choice

USER_KEY = re.compile(r"^users\[(\d+)\]\.(\w+)$")
USER_FLOWS = {"password": "Own user name & password (Exchange)",
              "client_secret": "The system's sign-in (no own password)"}
INTRO = ("Users whose e-mail goes out with their own sign-in instead of the system's (Monitor G5 22.6, "
         "guide 003: Per-user settings > E-mail method, User name (Exchange), Password (Exchange)). "
         "Example: the WEBSHOP user, when the web shop sends 'According to user settings'.")


def _name(raw: str) -> f.Checked:
    text, notes = f.clean(raw)
    if not text:
        return f.Checked("", "Give the user's name in the business system, e.g. WEBSHOP.")
    return f.Checked(text, None, notes)


def _sender(raw: str) -> f.Checked:
    return f.Checked("", None) if not raw.strip() else f.check_email(raw, "User's sender address")


class UsersScreen(Screen):
    BINDINGS = [
        Binding("f5", "add", "Add user", id="user-add"),
        Binding("f6", "remove", "Remove user", id="user-remove"),
        Binding("escape,ctrl+n,ctrl+p", "done", "Done", priority=True, id="users-done",
                tooltip="Check the rows and go back to the mail stage."),
    ]
    DEFAULT_CSS = """
    UsersScreen #users-body { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    UsersScreen #user-rows { height: auto; }   /* a Vertical is 1fr: it clipped the rows to the screen */
    UsersScreen RadioSet { border: none; padding: 0; }
    """

    def __init__(self, focus: str | None = None) -> None:
        super().__init__()
        self.initial_focus = focus      # e.g. "users[1].username": the field a failed test step names

    @property
    def users(self) -> list[UserOverride]:
        return self.app.config.users

    def compose(self) -> ComposeResult:
        yield Static("mailwizard · Per-user e-mail settings (guide 003)", id="stage-title")
        with VerticalScroll(id="users-body"):
            yield Static(INTRO, classes="intro", markup=False)
            yield Vertical(id="user-rows")
        yield KeyBar()   # wraps: every key shown at 60 columns too

    async def on_mount(self) -> None:
        await self.rebuild(0 if self.users else -1)
        if self.initial_focus:
            self.focus_field(self.initial_focus)

    def focus_field(self, key: str) -> bool:
        """Focus a user's field by its config key (``users[n].name`` ... ``.flow``); a
        user name or password hidden by the user's method focuses that method."""
        m = USER_KEY.match(key or "")
        if m is None or int(m.group(1)) >= len(self.users):
            return False
        n, name = int(m.group(1)), m.group(2)
        found = self.query(f"#f-users-{n}-{name}")
        if name == "flow" or not found or not found.first().parent.display:
            found = self.query(f"#user-{n}-flow")
        if not found:
            return False
        found.first().focus()
        return True

    async def rebuild(self, focus_row: int) -> None:
        rows = self.query_one("#user-rows", Vertical)
        await rows.remove_children()
        await rows.mount_all(list(self.make_rows()))
        for n, user in enumerate(self.users):
            self.show_password_fields(n, user.flow == "password")
        target = f"#f-users-{focus_row}-name" if focus_row >= 0 else "#add-user"
        self.query_one(target).focus()

    def make_rows(self):
        if not self.users:
            yield Static("No per-user settings yet: press F5 (or the button below) to add one.",
                         classes="field-help")
        for n, user in enumerate(self.users):
            key = f"users[{n}]"
            fields = [
                CheckedField(f"{key}.name", "Name in the system", _name, user.name, keep_draft=False,
                             placeholder="e.g. WEBSHOP"),
                Static("E-mail method", classes="field-label"),
                RadioSet(*(Choice(label, value=flow == user.flow, id=f"user-{n}-flow-{flow}")
                           for flow, label in USER_FLOWS.items()), id=f"user-{n}-flow"),
                CheckedField(f"{key}.username", "User name (Exchange)", f.check_username, user.username,
                             keep_draft=False, placeholder="e.g. webshop@contoso.com"),
                CheckedField(f"{key}.password", "Password (Exchange)", f.check_password, user.password,
                             password=True, keep_draft=False),
                CheckedField(f"{key}.sender", "Sender address (optional)", _sender, user.sender,
                             keep_draft=False, placeholder="empty: the user name"),
                Button(f"Remove user {n + 1}", id=f"remove-user-{n}", classes="remove"),
            ]
            row = Vertical(*fields, classes="account", id=f"user-{n}")
            row.border_title = f"User {n + 1}"
            yield row
        yield Button("Add user (F5)", id="add-user")

    def show_password_fields(self, n: int, show: bool) -> None:
        for name in ("username", "password"):
            found = self.query(f"#f-users-{n}-{name}-box")
            if found:
                found.first().display = show

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        n = int(event.radio_set.id.split("-")[1])
        flow = event.pressed.id.rsplit("-flow-", 1)[1]
        if n < len(self.users) and self.users[n].flow != flow:
            self.users[n].flow = flow
            self.app.mark_dirty()
        self.show_password_fields(n, flow == "password")

    def on_input_changed(self, event: Input.Changed) -> None:
        box = next((a for a in event.input.ancestors if isinstance(a, CheckedField)), None)
        m = USER_KEY.match(box.key) if box is not None else None
        if m is None:
            return
        n, name = int(m.group(1)), m.group(2)
        value = event.value if name == "password" else f.clean(event.value)[0]
        if n < len(self.users) and getattr(self.users[n], name) != value:
            setattr(self.users[n], name, value)
            self.app.mark_dirty()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.focus_next()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add-user":
            await self.action_add()
        elif (event.button.id or "").startswith("remove-user-"):
            self.confirm_remove(int(event.button.id.rsplit("-", 1)[1]))

    async def action_add(self) -> None:
        self.users.append(UserOverride(flow="password"))
        self.app.mark_dirty()
        await self.rebuild(len(self.users) - 1)

    async def action_remove(self) -> None:
        row = next((a for a in (self.focused.ancestors_with_self if self.focused else [])
                    if (a.id or "").startswith("user-") and a.has_class("account")), None)
        if row is None:
            self.notify("Move the focus into a user first (Tab), then press F6.", severity="warning")
            return
        self.confirm_remove(int(row.id.split("-")[1]))

    def confirm_remove(self, n: int) -> None:
        """Removing a user drops its settings (and its password): ask first, default No."""
        from screens.dialogs.confirm import ConfirmDialog
        if n >= len(self.users):
            return
        name = self.users[n].name or "(no name yet)"

        async def answer(yes: bool | None) -> None:
            if yes and n < len(self.users):
                await self.remove_row(n)

        self.app.push_screen(ConfirmDialog(
            f"Remove user {n + 1}?",
            f"User {n + 1} ({name}) and its e-mail settings are removed from the per-user "
            "settings; the business system then sends this user's mail with the system's sign-in.",
            yes="Remove", no="Keep"), answer)

    async def remove_row(self, n: int) -> None:
        del self.users[n]
        self.app.mark_dirty()
        await self.rebuild(min(n, len(self.users) - 1))

    def action_done(self) -> None:
        """Check every shown field; store the clean values, or stay on the first bad one."""
        bad = None
        for box in self.query(CheckedField):
            if not box.display:
                continue
            checked = box.checked()
            box.show(checked)
            m = USER_KEY.match(box.key)
            if checked.ok and m and int(m.group(1)) < len(self.users):
                setattr(self.users[int(m.group(1))], m.group(2), checked.value)
            elif not checked.ok and bad is None:
                bad = box
        if bad is not None:
            bad.input.focus()
            from screens.base import refused
            refused(self, bad)
            return
        self.dismiss(len(self.users))
