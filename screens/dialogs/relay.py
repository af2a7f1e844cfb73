"""The local relay (``mailwizard relay``) from the wizard: the ``[relay]`` section, a client
(made by ``wizard.relay.clients.add_client``: its password is shown here once, only the hash is
kept) and what to type into the business system's SMTP and IMAP (or POP3) settings.

Opened from the target stage's "Use the local relay" (where ``wizard.guide.relay_settings.offer``
says it fits). Dismisses with True when a client was added. Keys: F5 add, F6 copy the
password, F7 the settings plain, Escape back."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Input, RadioSet, Static

from wizard.config.relay import DEFAULT_IMAP_LISTEN, DEFAULT_LISTEN, DEFAULT_POP3_LISTEN, Relay
from wizard.guide import relay_settings as rs

from screens.widgets.fields import Choice, Tick
from screens.widgets.keybar import KeyBar

CLIENT_NAMES = {"monitor_g5": "monitor", "efecte_esm": "esm"}
INTRO = ("The relay runs on this server (`mailwizard relay`, e.g. as a systemd service: `mailwizard export "
         "systemd`). The system logs in to it with a relay user name and password; the relay delivers "
         "with this config's sign-in.")


class RelayScreen(Screen):
    BINDINGS = [
        Binding("f5", "add", "Add client", id="relay-add"),
        Binding("f6", "copy", "Copy password", id="relay-copy"),
        Binding("f7", "plain", "Show plain", id="relay-plain",
                tooltip="The settings alone, without borders, to select with the mouse."),
        Binding("escape", "close", "Back", priority=True, id="relay-back"),
    ]
    DEFAULT_CSS = """
    RelayScreen #relay-body { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    RelayScreen RadioSet { border: none; padding: 0; height: auto; }
    RelayScreen #relay-settings { border: round $accent; padding: 0 1; height: auto; }
    RelayScreen #relay-password { border: thick $warning; padding: 0 1; height: auto; }
    RelayScreen #relay-why { border-left: blank; }
    RelayScreen #relay-why:focus { border-left: thick $accent; }
    RelayScreen #relay-password:focus { border: double $accent; background: $boost; }
    """

    def __init__(self, answers=None, apply_upstream=None) -> None:
        """``apply_upstream(choice)``: sets the config's protocols (and servers) to a
        ``relay_settings.UPSTREAMS`` choice when the config is on EWS."""
        super().__init__()
        self.answers = answers
        self.apply_upstream = apply_upstream
        self.password = ""        # the last client's, shown once: only this screen holds it
        self.client = None

    @property
    def cfg(self):
        return self.app.config

    def compose(self) -> ComposeResult:
        cfg = self.cfg
        relay = cfg.relay or Relay()
        yield Static("mailwizard · Use the local relay", id="stage-title")
        with VerticalScroll(id="relay-body"):
            why = rs.offer(cfg, self.answers)
            intro = Static((why + "\n" if why else "") + INTRO, id="relay-why", classes="intro", markup=False)
            intro.can_focus = True   # focused first: read it (arrows scroll), Tab goes on to the fields
            yield intro
            if cfg.outgoing.protocol not in ("graph", "smtp"):
                yield Static("The relay could deliver over EWS, but only until Exchange Online switches EWS off; "
                             "mailwizard will use:",
                             classes="field-label")
                default = "smtp+imap" if cfg.system in ("monitor_g5", "efecte_esm") else "graph"
                with RadioSet(id="relay-upstream"):
                    for key, label in rs.UPSTREAMS.items():
                        yield Choice(label, value=key == default, id=f"up-{key.replace('+', '_')}")
            yield Static("Client name (the user name the system logs in with)", classes="field-label")
            yield Input(CLIENT_NAMES.get(cfg.system, "erp"), id="relay-name")
            yield Static("Sender it may use (the config's sender)", classes="field-label")
            yield Input(cfg.outgoing.sender, id="relay-sender", placeholder="e.g. erp@contoso.com")
            yield Static("The relay listens on (SMTP, host:port)", classes="field-label")
            yield Input(relay.listen or DEFAULT_LISTEN, id="relay-listen")
            yield Tick(f"Reads mail over POP3 ({relay.pop3_listen or DEFAULT_POP3_LISTEN}), not IMAP",
                       value=bool(relay.pop3_listen), id="relay-pop3")
            yield Static("", id="relay-error", classes="field-msg -warning", markup=False)
            yield Button("Add the client (F5)", variant="primary", id="relay-add")
            password = Static("", id="relay-password", markup=False)
            password.can_focus = True
            yield password
            yield Static("", id="relay-settings", markup=False)
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#relay-error").display = False
        self.query_one("#relay-password").display = False
        existing = self.cfg.relay.clients if self.cfg.relay is not None else []
        box = self.query_one("#relay-settings", Static)
        box.display = bool(existing)
        if existing:   # the password was shown once, when the client was added
            box.border_title = f"Type this into the system (client {existing[-1].name})"
            box.update(rs.as_text(rs.settings(self.cfg, existing[-1], rs.NOT_STORED)))
        self.query_one("#relay-why").focus()

    def on_descendant_focus(self, event) -> None:
        # the whole widget in view (a RadioSet scrolled its highlighted button only)
        self.call_after_refresh(self.query_one("#relay-body").scroll_to_widget, event.widget, animate=False)

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("copy", "plain"):
            return bool(self.password)
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "relay-add":
            self.action_add()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_next()

    def error(self, text: str, focus: str | None = None) -> None:
        """Say what is wrong right under the field it names (``focus``), focus that field
        and scroll the message into view: where the user looks after F5."""
        box = self.query_one("#relay-error", Static)
        box.update(f"! {text}" if text else "")
        box.display = bool(text)
        if focus:
            field = self.query_one(focus)
            self.query_one("#relay-body").move_child(box, after=field)
            field.focus()
            self.call_after_refresh(self.query_one("#relay-body").scroll_to_widget, box, animate=False,
                                    immediate=True)   # before the focus's own scroll, which then keeps it

    def upstream(self) -> str | None:
        found = self.query("#relay-upstream")
        if not found:
            return None
        pressed = found.first(RadioSet).pressed_button
        return (pressed.id or "up-graph").removeprefix("up-").replace("_", "+") if pressed else "graph"

    def action_add(self) -> None:
        from wizard.config.relay import split_listen, validate
        from wizard.relay.clients import ClientError, add_client
        cfg = self.cfg
        name = self.query_one("#relay-name", Input).value.strip()
        sender = self.query_one("#relay-sender", Input).value.strip()
        listen = self.query_one("#relay-listen", Input).value.strip()
        try:
            split_listen(listen)
        except ValueError as exc:
            return self.error(f"Listen address: {exc}", "#relay-listen")
        pop3 = self.query_one("#relay-pop3", Tick).value
        choice = self.upstream()
        if pop3 and (choice or cfg.incoming.protocol) not in ("imap", "smtp+imap"):
            return self.error("POP3: the relay reads the mailbox over IMAP, so POP3 needs the SMTP + IMAP upstream"
                              + (" (chosen above)" if choice else f" (this config reads over {cfg.incoming.protocol})")
                              + "; or untick POP3.", "#relay-upstream" if choice else "#relay-pop3")
        before = (cfg.relay, cfg.outgoing.protocol, cfg.incoming.protocol, cfg.outgoing.sender)
        relay = cfg.relay if cfg.relay is not None else Relay()
        old_listen, old_imap, old_pop3 = relay.listen, relay.imap_listen, relay.pop3_listen
        cfg.relay = relay
        try:
            password = add_client(cfg, name, [sender])
        except ClientError as exc:
            cfg.relay = before[0]
            return self.error(f"{'Client name' if exc.field == 'name' else 'Sender'}: {exc.detail}",
                              "#relay-name" if exc.field == "name" else "#relay-sender")
        relay.listen = listen
        if choice is not None and self.apply_upstream is not None:
            self.apply_upstream(choice)
        if cfg.incoming.protocol == "imap":
            relay.imap_listen = relay.imap_listen or DEFAULT_IMAP_LISTEN
        else:
            relay.imap_listen = ""
        relay.pop3_listen = (relay.pop3_listen or DEFAULT_POP3_LISTEN) if pop3 and relay.imap_listen else ""
        problems: list = []
        validate(relay, lambda field, message, *_: problems.append(f"{field}: {message}"), lambda *_: None)
        if problems:
            relay.clients.pop()
            relay.listen, relay.imap_listen, relay.pop3_listen = old_listen, old_imap, old_pop3
            cfg.relay = before[0]
            return self.error(problems[0], "#relay-listen")
        if not cfg.outgoing.sender:
            cfg.outgoing.sender = sender
        self.app.mark_dirty()
        self.password, self.client = password, relay.clients[-1]
        self.error("")
        self.query_one("#relay-name", Input).value = ""
        shown = self.query_one("#relay-password", Static)
        shown.update(f"Password for {name} (shown once, only here; F6 copies it): {password}\n"
                     "It is not stored: note it now. Saved with the config on the last stage (Save).")
        shown.display = True
        box = self.query_one("#relay-settings", Static)
        box.border_title = f"Type this into the system (client {name})"
        box.update(self.settings_text())
        box.display = True
        self.refresh_bindings()
        shown.focus()
        shown.scroll_visible()

    def settings_text(self) -> str:
        return rs.as_text(rs.settings(self.cfg, self.client, self.password))

    def action_copy(self) -> None:
        from screens.clipboard import copy_text
        copy_text(self.app, self.password, "relay password", plain_key="F7")

    def action_plain(self) -> None:
        from screens.clipboard import PlainTextScreen
        self.app.push_screen(PlainTextScreen(self.settings_text()))

    def action_close(self) -> None:
        added = self.client is not None
        self.password = ""
        self.dismiss(added)
