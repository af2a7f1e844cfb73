"""Stage 4: server, port, mailboxes; incoming accounts for Monitor ERP G5."""

from __future__ import annotations

import re

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Button, Input, Static

from wizard.config import fields as f
from wizard.config.schema import IncomingAccount

from screens import guide_data
from screens.widgets import servers
from screens.base import StageScreen
from screens.widgets.fields import CheckedField, field_dom_id

ACCOUNT_KEY = re.compile(r"^incoming\.accounts\[(\d+)\]\.(\w+)$")
ESM_MAILBOX = "incoming.esm_mailbox"     # Efecte ESM: the mailbox it reads, stored as [[incoming.accounts]]


def _free_text(raw: str) -> f.Checked:
    text, notes = f.clean(raw)
    return f.Checked(text, None, notes)


def _optional(check):
    return lambda raw: f.Checked("", None) if not raw.strip() else check(raw)


class AccountsBox(Vertical):
    """The incoming accounts as rows of fields, rebuilt on add/remove."""

    def compose(self) -> ComposeResult:
        cfg = self.app.config
        guide = self.app.guide
        labels = {name: guide_data.field_text(guide, f"account_{name}") for name in
                  ("address", "types", "available_to")}
        hints = "\n".join(f"{label}: {h}" for label, h in labels.values() if h)
        if hints:
            yield Static(hints, classes="field-help", markup=False)
        if not cfg.incoming.accounts:
            yield Static("No incoming accounts yet: press F5 (or the button below) to add one.",
                         classes="field-help")
        for n, acc in enumerate(cfg.incoming.accounts):
            key = f"incoming.accounts[{n}]"
            with Vertical(classes="account", id=f"account-{n}") as row:
                row.border_title = f"Incoming account {n + 1}"
                yield CheckedField(f"{key}.address", labels["address"][0],
                                   lambda raw: f.check_email(raw, "Account e-mail address"), acc.address, keep_draft=False,
                                   placeholder="e.g. orders@contoso.com")
                if cfg.auth.flow == "password":
                    yield CheckedField(f"{key}.username", "User name (empty: the service account)",
                                       _optional(f.check_username), acc.username,
                                       keep_draft=False)
                    yield CheckedField(f"{key}.password", "Password (empty: the service account's)",
                                       lambda raw: f.Checked(raw, None), acc.password, password=True,
                                       keep_draft=False)
                yield CheckedField(f"{key}.types", labels["types"][0] + " (comma-separated)",
                                   _free_text, ", ".join(acc.types), keep_draft=False)
                yield CheckedField(f"{key}.available_to", labels["available_to"][0], _free_text,
                                   acc.available_to or "all", keep_draft=False)
                yield Button(f"Remove account {n + 1}", id=f"remove-{n}", classes="remove")
        yield Button("Add account", id="add-account")


class MailScreen(StageScreen):
    STAGE = "mail"
    BINDINGS = [
        Binding("f5", "add_account", "Add account", id="add-account"),
        Binding("f6", "remove_account", "Remove account", id="remove-account"),
        Binding("f7", "users", "Per-user settings", id="users",
                tooltip="Monitor G5 22.6 (guide 003): users with their own e-mail sign-in, e.g. WEBSHOP."),
        Binding("f8", "relay", "Local relay", id="relay",
                tooltip="Point the system's SMTP / IMAP at mailwizard's local relay (mailwizard relay)."),
    ]

    @property
    def incoming(self) -> bool:
        return self.cfg.system == "monitor_g5"

    def compose_body(self) -> ComposeResult:
        o = self.cfg.outgoing
        yield Static("Outgoing e-mail", classes="section")
        yield Static(servers.protocol_line(self.cfg), id="protocol-line", classes="field-help", markup=False)
        yield from self.relay_offer()
        yield from servers.outgoing_fields(self)
        yield self.field("outgoing.sender", "sender", lambda r: f.check_email(r, "Sender mailbox"),
                         o.sender, placeholder="e.g. erp@contoso.com")
        yield self.field("outgoing.test_recipient", "test_recipient",
                         lambda r: f.check_email(r, "Test recipient"), o.test_recipient,
                         optional=True, placeholder="e.g. you@contoso.com (optional)")
        yield from servers.incoming_fields(self)
        yield from self.esm_mailbox_field()
        if self.incoming:
            yield Static(f"Per-user e-mail settings (guide 003, e.g. WEBSHOP): {len(self.cfg.users)} "
                         "user(s). Press F7 to add or change them.", id="users-line", classes="field-help")
            yield Button("Per-user settings (F7)", id="users-button")
            yield Static("Incoming e-mail", classes="section")
            yield self.field("incoming.poll_minutes", "poll_minutes", f.check_poll_minutes,
                             self.cfg.incoming.poll_minutes)
            yield AccountsBox(id="accounts")

    def relay_offer(self) -> ComposeResult:
        """The local relay, where it fits (``wizard.guide.relay_settings.offer``) or once set up."""
        from screens.widgets.protocols import relay_line
        why = relay_line(self.app)
        if why:
            yield Static(why, id="relay-offer", classes="field-help", markup=False)
            yield Button("Use the local relay (F8)", id="use-relay")

    def action_relay(self) -> None:
        """The relay dialog; when it added a client (and maybe left EWS) the stage is rebuilt."""
        from screens.dialogs.relay import RelayScreen
        from screens.widgets.protocols import apply_protocol, relay_line
        if not relay_line(self.app):
            return
        self.commit()
        app = self.app
        answers = getattr(getattr(app, "flow_advice", None), "answers", None)
        app.push_screen(RelayScreen(answers, lambda choice: apply_protocol(app, choice)),
                        lambda added: app.goto("mail") if added else None)

    def esm_mailbox_field(self) -> ComposeResult:
        """Efecte ESM reads its mail by IMAP from one mailbox (guide 004): which one
        (empty: the service account's own)."""
        from wizard.config.mailboxes import reads_own_mailbox, service_mailbox
        if not reads_own_mailbox(self.cfg):
            return
        accounts = self.cfg.incoming.accounts
        own = service_mailbox(self.cfg)
        yield CheckedField(ESM_MAILBOX, "Mailbox ESM reads (incoming mail)",
                           _optional(lambda raw: f.check_email(raw, "Mailbox ESM reads")),
                           accounts[0].address if accounts else "", keep_draft=False,
                           placeholder=f"empty: {own}" if own else "empty: the service account's own",
                           help="The O365 mailbox ESM fetches its mail from (mail.store, IMAP); empty: the "
                                "service account's own. The test signs in to it and opens its inbox.")

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("add_account", "remove_account", "users"):
            return self.incoming
        if action == "relay":
            from screens.widgets.protocols import relay_line
            return bool(relay_line(self.app))
        return True

    def action_users(self) -> None:
        self.commit()
        self.open_users()

    def open_users(self, focus: str | None = None) -> None:
        from screens.dialogs.users import UsersScreen

        def closed(_=None) -> None:
            n = len(self.cfg.users)
            for line in self.query("#users-line").results(Static):
                line.update(f"Per-user e-mail settings (guide 003, e.g. WEBSHOP): {n} user(s). "
                            "Press F7 to add or change them.")

        self.app.push_screen(UsersScreen(focus), closed)

    def focus_field(self, key: str | None) -> bool:
        """A per-user field (``users[n].username``, from a failed ``user:NAME`` test
        step) is in the F7 dialog: open it on that user's field."""
        from screens.dialogs.users import USER_KEY
        m = USER_KEY.match(key or "")
        if m is None:
            return super().focus_field(key)
        if int(m.group(1)) >= len(self.cfg.users):
            return False
        for button in self.query("#users-button"):   # focused under the dialog: where F7 is
            self.show_focused(button)
        if self.initial_focus == key:
            self.initial_focus = None                # open the dialog once, not again on a rebuild
        self.call_after_refresh(self.open_users, key)
        return True

    def store(self, key: str, value) -> None:
        if key == ESM_MAILBOX:
            from wizard.config.mailboxes import service_mailbox
            address = str(value or "").strip() or service_mailbox(self.cfg)
            accounts = self.cfg.incoming.accounts
            if accounts:
                accounts[0].address = address
            elif address:
                accounts.append(IncomingAccount(address=address))
            return
        m = ACCOUNT_KEY.match(key)
        if not m:
            return super().store(key, value)
        n, name = int(m.group(1)), m.group(2)
        accounts = self.cfg.incoming.accounts
        if n < len(accounts):
            if name == "types":
                value = [t.strip() for t in str(value).split(",") if t.strip()]
            setattr(accounts[n], name, value)

    def on_input_changed(self, event: Input.Changed) -> None:
        # Account values are kept as typed (even when not valid yet) so that
        # adding or removing a row never loses them; Next checks them.
        box = next((a for a in event.input.ancestors if isinstance(a, CheckedField)), None)
        if box is not None and not box.keep_draft:
            value = event.value if box.password else f.clean(event.value)[0]
            self.store(box.key, value)

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "users-button":
            self.action_users()
        elif event.button.id == "use-relay":
            self.action_relay()
        elif event.button.id == "add-account":
            await self.action_add_account()
        elif (event.button.id or "").startswith("remove-"):
            await self.remove_row(int(event.button.id.split("-")[1]))

    async def action_add_account(self) -> None:
        self.cfg.incoming.accounts.append(IncomingAccount())
        self.app.mark_dirty()
        await self._rebuild(len(self.cfg.incoming.accounts) - 1)

    async def action_remove_account(self) -> None:
        row = next((a for a in (self.focused.ancestors_with_self if self.focused else [])
                    if a.has_class("account")), None)
        if row is None:
            self.notify("Move the focus into an account first (Tab), then press F6.", severity="warning")
            return
        await self.remove_row(int(row.id.split("-")[1]))

    async def remove_row(self, n: int) -> None:
        del self.cfg.incoming.accounts[n]
        self.app.mark_dirty()
        await self._rebuild(min(n, len(self.cfg.incoming.accounts) - 1))

    async def _rebuild(self, focus_row: int) -> None:
        await self.query_one(AccountsBox).recompose()
        target = (f"#f-incoming-accounts-{focus_row}-address" if focus_row >= 0 else "#add-account")
        self.query_one(target).focus()   # Textual scrolls it into view once laid out


__all__ = ["MailScreen", "field_dom_id"]
