"""The protocol choice (EWS, Graph, SMTP + IMAP) on the target stage, with its
guidance, the Microsoft cloud, the EWS retirement status, the on-premises switch and the
password-against-advice warning. The logic is in ``wizard.guide.recommend``."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, Checkbox, RadioSet, Static

from wizard.guide import recommend as rc
from wizard.config.clouds import IMAP_PORT, SMTP_PORT, resolve
from wizard.config.schema import ALL_FLOWS

from screens import guide_data
from screens.guide_data import OFFERED_FLOWS
from screens.widgets.fields import Choice, Hanging, StepList, Tick

BEYOND = {   # the flows the guides do not set up, in one line each
    "certificate": "Certificate: app-only like the client secret, but with a key that never leaves "
                   "this server; no secret to copy or renew every 6-24 months.",
    "device_code": "Device code: delegated like user name & password, but the user signs in once on any "
                   "device (MFA works); no password is stored.",
}
PROTOCOL_KEYS = {"ews": "ews", "graph": "graph", "smtp+imap": "smtp_imap"}   # '+' is not allowed in ids
SERVER_KEYS = ("outgoing.server", "outgoing.port", "incoming.server", "incoming.port")


def protocol_choice(cfg) -> str:
    return rc.choice_of(cfg.outgoing.protocol, cfg.incoming.protocol)


def apply_protocol(app, choice: str) -> None:
    """Set both protocols and the matching servers and ports (the cloud's, or
    the sandbox's in demo mode); typed drafts of those fields are dropped."""
    cfg = app.config
    cfg.outgoing.protocol, cfg.incoming.protocol = rc.split(choice)
    ends = resolve(cfg)
    demo = app.demo
    host = demo.host if demo is not None else None
    if choice == "smtp+imap":
        cfg.outgoing.server = host or ends.smtp_host
        cfg.outgoing.port = (getattr(demo, "smtp_port", 0) or SMTP_PORT) if demo else SMTP_PORT
        cfg.incoming.server = host or ends.imap_host
        cfg.incoming.port = (getattr(demo, "imap_port", 0) or IMAP_PORT) if demo else IMAP_PORT
    else:
        cfg.outgoing.server = host or ends.exchange_host
        cfg.outgoing.port = demo.port if demo is not None else 443
        cfg.incoming.server, cfg.incoming.port = "", 0
        if choice == "graph" and demo is not None:
            cfg.endpoints.graph_url = demo.base_url
    for key in SERVER_KEYS:
        app.drafts.pop(key, None)
    app.mark_dirty()


CLOUD_LABEL = "Microsoft cloud"   # the fixes name it (wizard.diagnosis.aadsts.CLOUD_CHOICE)


def cloud_choice(cfg) -> ComposeResult:
    """Which Microsoft cloud the tenant lives in: it decides the sign-in, Graph and mail servers."""
    from wizard.config.clouds import CLOUDS
    yield Static(CLOUD_LABEL, classes="field-label", id="cloud-label")
    with RadioSet(id="cloud"):
        for key, cloud in CLOUDS.items():
            yield Choice(cloud.label, value=key == cfg.microsoft.cloud, id=f"cloud-{key}")
    yield Static("Global for almost every tenant. Not sure? F6 on stage 3 finds the tenant's cloud "
                 "from its domain.", classes="field-help", markup=False)


def set_cloud(app, cloud: str) -> None:
    """Choose the Microsoft cloud: its identity platform, Graph and the mail servers
    that were the old cloud's (typed drafts of those servers are dropped)."""
    from wizard.config.clouds import switch_cloud
    for key in switch_cloud(app.config, cloud):
        app.drafts.pop(key, None)
    app.mark_dirty()


def advice_flow(app) -> str | None:
    """The flow the recommender advised (when it was used), else None."""
    rec = getattr(app, "flow_advice", None)
    return rec.flow if rec is not None else None


class ProtocolPanel(Vertical):
    """Protocol radio buttons, guidance, EWS status, on-premises and the advice."""

    def compose(self) -> ComposeResult:
        cfg = self.app.config
        yield Static("", id="password-advice", classes="field-msg -warning", markup=False)
        yield Hanging("Beyond the guides (safer; the guides do not set them up):\n"
                      + "\n".join(f"• {text}" for text in BEYOND.values()),
                      id="beyond-note", classes="field-help")
        yield from cloud_choice(cfg)
        yield Static("Mail protocol (outgoing / incoming)", classes="field-label")
        chosen = protocol_choice(cfg)
        with RadioSet(id="protocol"):
            for key, label in rc.CHOICE_LABELS.items():
                yield Choice(label, value=key == chosen, id=f"proto-{PROTOCOL_KEYS[key]}")
        yield Static("\n".join(f"{rc.CHOICE_LABELS[k].split(' (')[0]}: {rc.GUIDANCE[k]}" for k in rc.CHOICES),
                     id="protocol-guide", classes="field-help", markup=False)
        yield Tick("Exchange Server on-premises (keeps EWS)", cfg.microsoft.exchange == "on_premises",
                   id="on-prem")
        yield Static("", id="ews-status", classes="panel -warning", markup=False)
        yield Button("Help me choose (F5)", id="help-choose")
        yield Static("", id="relay-offer", classes="field-help", markup=False)   # the local relay, where it fits
        yield Button("Use the local relay", id="use-relay")

    def on_mount(self) -> None:
        # Mounted after the target screen (lazily): highlight the chosen protocol
        # here, as the screen does for its own radio sets.
        for radio_set in self.query("#cloud, #protocol").results(RadioSet):
            for _ in range(max(radio_set.pressed_index, 0)):
                radio_set.action_next_button()
        self.refresh_advice()

    # -- events ------------------------------------------------------------
    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        if event.radio_set.id != "protocol":
            return
        event.stop()
        key = (event.pressed.id or "").removeprefix("proto-")
        choice = next(c for c, k in PROTOCOL_KEYS.items() if k == key)
        if choice != protocol_choice(self.app.config):
            apply_protocol(self.app, choice)
        self.refresh_advice()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id != "on-prem":
            return
        event.stop()
        kind = "on_premises" if event.value else "online"
        if kind != self.app.config.microsoft.exchange:
            self.app.config.microsoft.exchange = kind
            self.app.mark_dirty()
        self.refresh_advice()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "help-choose":
            event.stop()
            self.open_recommender()
        elif event.button.id == "use-relay":
            event.stop()
            open_relay(self.screen)

    # -- actions -------------------------------------------------------------
    async def system_changed(self) -> None:
        await system_changed(self.screen)

    def open_recommender(self) -> None:
        open_recommender(self.screen)

    def refresh_advice(self) -> None:
        cfg = self.app.config
        choice = protocol_choice(cfg)
        on_prem = self.query_one("#on-prem", Checkbox)
        on_prem.display = choice == "ews"
        status = self.query_one("#ews-status", Static)
        message = rc.retirement_warning(choice, cfg.microsoft.exchange, cfg.system,
                                        client_id=cfg.microsoft.client_id) if choice == "ews" else ""
        if ":\n" in message:   # the PowerShell is in the admin runbook (save stage, r)
            message = message.split(":\n")[0] + ". The admin runbook (save stage, r) has the PowerShell."
        status.update(f"! EWS retirement: {message}" if message else "")
        status.display = bool(message)
        answers = getattr(getattr(self.app, "flow_advice", None), "answers", None) or rc.Answers()
        warning = rc.password_warning(cfg.auth.flow, cfg.system, recommended=advice_flow(self.app),
                                      mfa=answers.mfa, conditional_access=answers.conditional_access)
        advice = self.query_one("#password-advice", Static)
        advice.update(f"! Warning: {warning}" if warning else "")
        advice.display = bool(warning)
        why = relay_line(self.app)
        self.query_one("#relay-offer", Static).update(why)
        for widget in self.query("#relay-offer, #use-relay"):
            widget.display = bool(why)


async def system_changed(screen) -> None:
    """A new system: preselect its protocol and flow (and show its guide steps)."""
    screen.app.flow_advice = None
    await apply_choice(screen, *rc.defaults(screen.app.config.system), focus="#system")


def open_recommender(screen) -> None:
    """"Help me choose" (F5 or the button): its answer is applied to the target screen.
    Works before the panel is mounted too (it is mounted after the first frame)."""
    from screens.dialogs.recommender import RecommenderScreen
    app = screen.app

    async def chosen(rec) -> None:
        if rec is None:
            return
        app.flow_advice = rec
        await apply_choice(screen, rec.protocol, rec.flow, focus="#flow")
        app.notify(rec.text().split("\n")[0], title="Recommendation applied", markup=False)

    app.push_screen(RecommenderScreen(), chosen)


def relay_line(app) -> str:
    """Why the local relay fits this config, or that it is set up ("" when neither)."""
    from wizard.guide.relay_settings import offer
    relay = app.config.relay
    if relay is not None and relay.clients:
        return (f"The local relay is set up for {', '.join(c.name for c in relay.clients)}: open it to see "
                "what the system types in, or to add a client.")
    why = offer(app.config, getattr(getattr(app, "flow_advice", None), "answers", None))
    return f"The local relay: {why}" if why else ""


def open_relay(screen) -> None:
    """"Use the local relay": the relay dialog; a protocol it changed is shown on return."""
    from screens.dialogs.relay import RelayScreen
    app = screen.app

    async def closed(added) -> None:
        # the dialog may have moved the protocols off EWS: mark the new choice in place
        # (rebuilding the panel would drop the focused button and lose the place)
        for panel in screen.query(ProtocolPanel) if added else ():
            chosen = panel.query_one(f"#proto-{PROTOCOL_KEYS[protocol_choice(app.config)]}", Choice)
            if not chosen.value:
                chosen.value = True
            panel.refresh_advice()
        # back in front, the screen is laid out again (at the terminal's size): keep the button in view
        found = screen.query("#use-relay")
        if found:
            screen.call_after_refresh(found.first().scroll_visible, animate=False)

    answers = getattr(getattr(app, "flow_advice", None), "answers", None)
    app.push_screen(RelayScreen(answers, lambda choice: apply_protocol(app, choice)), closed)


async def apply_choice(screen, protocol: str, flow: str, *, focus: str) -> None:
    """Store a protocol and a flow chosen for the user, then rebuild what shows
    them on the target screen: the flow buttons, this panel and the guide steps.
    (Pressing the buttons instead would not work from a RadioSet.Changed handler,
    which runs with RadioButton.Changed suppressed.)"""
    app = screen.app
    if protocol != protocol_choice(app.config):
        apply_protocol(app, protocol)
    if flow != app.config.auth.flow:
        app.config.auth.flow = flow
        app.mark_dirty()
    found = screen.query("#flow")
    if not found:   # the choices are not mounted yet: they are built from the config
        return
    old = found.first(RadioSet)
    parent, index = old.parent, old.parent.children.index(old)
    await old.remove()
    await parent.mount(RadioSet(*(Choice(flow_label(k), value=k == flow, id=f"flow-{k}") for k in OFFERED_FLOWS),
                                id="flow"), before=index)
    for panel in screen.query(ProtocolPanel):   # none yet in the first frame: it composes from the config
        await panel.recompose()
        panel.refresh_advice()                    # a recompose starts its messages empty
    await refresh_steps(screen)
    for radio_set in screen.query("#flow, #cloud, #protocol").results(RadioSet):   # highlight the chosen one
        for _ in range(max(radio_set.pressed_index, 0)):
            radio_set.action_next_button()
    screen.update_note()
    screen.show_focused(screen.query_one(focus))


async def refresh_steps(screen) -> None:
    """Show the guide steps of the screen's stage for the current system and flow."""
    found = screen.query("#steps").results(StepList)
    box = next(iter(found), None)
    if box is None:
        return
    cfg = screen.app.config
    box.items = guide_data.steps(screen.guide, screen.STAGE, cfg.auth.flow, cfg.system)
    box.border_title = f"Steps in the guide ({len(box.items)})" if box.items else "Steps in the guide"
    await box.recompose()


def flow_label(flow: str) -> str:
    return ALL_FLOWS.get(flow, flow) + (" · beyond the guides" if flow in BEYOND else "")
