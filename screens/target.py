"""Stage 1: which system, which sign-in flow; limitations shown before choosing."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.lazy import Lazy
from textual.widgets import Static

from wizard.config.schema import ALL_FLOWS, FLOWS, SYSTEMS

from screens import guide_data
from screens.guide_data import OFFERED_FLOWS, WIZARD_FLOWS
from screens.base import StageScreen

# The radio buttons, the protocol panel and the recommender are imported where
# used: they are mounted after the first paint (see Choices).

FALLBACK_FLOWS = {
    "client_secret": {
        "summary": "The app signs in as itself with a secret (app-only).",
        "pros": ["no user account or password to look after", "works with MFA enforced on users"],
        "limitations": ["the secret expires (at most 24 months): renew it in time",
                        "reaches every mailbox unless the tenant scopes it (not covered by the guide)"],
    },
    "password": {
        "summary": "The app signs in as a service account with its user name and password (delegated).",
        "pros": ["only the service account's own mailboxes are reachable"],
        "limitations": ["no MFA / 2FA on that account: sign-in fails when MFA is required",
                        "often blocked by Conditional Access or security defaults",
                        "Microsoft discourages this flow"],
    },
}
# The config fields chosen on this stage, by their widget (see wizard.check.model.TARGET_FIELDS).
CHOICE_IDS = {"system": "#system", "auth.flow": "#flow", "outgoing.protocol": "#protocol",
              "incoming.protocol": "#protocol", "microsoft.exchange": "#on-prem"}
COMMON_LIMITS = [
    "Only one authentication method can be active at a time.",
    "The guides register a single-tenant app (this organisation's directory only).",
    "Security scoping (which mailboxes the app may reach) is not covered by the guides: "
    "your IT department decides it.",
]


def _flow_info(guide, flow: str) -> dict:
    info = guide_data.flows(guide).get(flow)
    base = dict(FALLBACK_FLOWS[flow], label=FLOWS[flow], cons=[])
    if info is None:
        return base
    for key in ("label", "summary", "pros", "cons", "limitations"):
        value = info.get(key) if isinstance(info, dict) else getattr(info, key, None)
        if value:
            base[key] = value
    return base




def comparison(guide) -> Text:
    text = Text()
    for flow in WIZARD_FLOWS:
        info = _flow_info(guide, flow)
        text.append(info["label"] + "\n", style="bold")
        text.append("  " + info["summary"] + "\n")
        for mark, key in (("+", "pros"), ("−", "cons"), ("!", "limitations")):
            for item in info[key]:
                text.append(f"  {mark} {item}\n")
    if guide is None:
        text.append("Both methods\n", style="bold")
        for lim in COMMON_LIMITS:
            text.append(f"  ! {lim}\n")
    text.append("(+ advantage, − drawback, ! limitation)", style="italic")
    return text


class Choices(Vertical):
    """The stage's choices (system, sign-in method, protocol), mounted lazily:
    built from the config when they are mounted, after the first paint."""

    def compose(self) -> ComposeResult:
        from textual.widgets import RadioSet

        from screens.widgets.protocols import ProtocolPanel, flow_label
        from screens.widgets.fields import Choice, Hanging, InnerScroll
        cfg = self.app.config
        yield Static("System to connect", classes="field-label")
        with RadioSet(id="system"):
            for key, label in SYSTEMS.items():
                yield Choice(label, value=key == cfg.system, id=f"system-{key}")
        yield Static("Sign-in method (authentication flow)", classes="field-label")
        with RadioSet(id="flow"):
            for key in OFFERED_FLOWS:
                yield Choice(flow_label(key), value=key == cfg.auth.flow, id=f"flow-{key}")
        yield Static("", id="fit-note", classes="field-msg", markup=False)
        # each method's limits, right under the choice (a box of its own: arrows scroll it)
        with InnerScroll(id="flow-compare-box", classes="panel", can_focus=True) as box:
            box.border_title = "The two methods of the guides compared"
            yield Hanging(comparison(self.app.guide), id="flow-compare")
        yield ProtocolPanel(id="protocols")

    def on_mount(self) -> None:
        self.screen.choices_mounted()


class TargetScreen(StageScreen):
    STAGE = "target"
    BINDINGS = [Binding("f5", "help_choose", "Help me choose", id="help-choose",
                        tooltip="A few questions: the recommended sign-in method and protocol, and why.")]

    STEPS_FIRST = False   # the choices right below the intro; the steps after them

    def compose_body(self) -> ComposeResult:
        # The choices come first, in the first screen at 80x24 (below three screens of
        # guide steps and comparison they were not found); mounted right after the
        # first frame, which then paints sooner. Each method's limits are in a box
        # right under the sign-in choice; the guide's steps follow the choices.
        # The EWS retirement status is shown in the protocol panel, for EWS only.
        yield Lazy(Choices(id="choices"))

    FIRST_FOCUS = "#body"   # start at the top: read the comparison before choosing

    def choices_mounted(self) -> None:
        # A RadioSet highlights its first button when mounted; move the highlight
        # to the chosen one, so arrows and space start from what is chosen.
        from textual.widgets import RadioSet
        for radio_set in self.query("#system, #flow").results(RadioSet):   # the panel's: in its on_mount
            for _ in range(max(radio_set.pressed_index, 0)):
                radio_set.action_next_button()
        self.update_note()
        if self.initial_focus in CHOICE_IDS:   # `g` from the test stage: the choice to change
            self.call_after_refresh(self.focus_field, self.initial_focus)

    def focus_field(self, key: str | None) -> bool:
        """The choices are config fields too (system, flow, protocols, on-premises)."""
        if key not in CHOICE_IDS:
            return super().focus_field(key)
        found = self.query(CHOICE_IDS[key])
        if not found:      # not mounted yet: choices_mounted focuses it
            return False
        self.show_focused(found.first())
        return True

    async def on_radio_set_changed(self, event) -> None:
        from screens.widgets.protocols import ProtocolPanel, system_changed
        key = (event.pressed.id or "").split("-", 1)[1]
        if event.radio_set.id == "system" and key != self.cfg.system:
            self.cfg.system = key
            self.app.mark_dirty()
            await system_changed(self)   # preselects the system's protocol and flow
            return
        elif event.radio_set.id == "flow" and key != self.cfg.auth.flow:
            self.cfg.auth.flow = key
            self.app.mark_dirty()
        elif event.radio_set.id == "cloud" and key != self.cfg.microsoft.cloud:
            from screens.widgets.protocols import set_cloud
            set_cloud(self.app, key)
        self.update_note()
        for panel in self.query(ProtocolPanel):   # mounted after the first frame
            panel.refresh_advice()

    def action_help_choose(self) -> None:
        from screens.widgets.protocols import open_recommender
        open_recommender(self)

    def update_note(self) -> None:
        found = self.query("#fit-note")
        if not found:   # the choices are not mounted yet
            return
        note = found.first(Static)
        text = ""
        if self.cfg.auth.flow not in OFFERED_FLOWS:
            text = (f"! Warning: the file uses the {ALL_FLOWS.get(self.cfg.auth.flow, self.cfg.auth.flow)} flow, "
                    "which this wizard does not set up. Choose one of the methods above to "
                    "continue, or keep the file and test it with `mailwizard check`.")
            note.update(text)
            note.set_class(True, "-warning")
            note.display = True
            return
        from wizard.guide.recommend import SYSTEM_FLOWS
        system = guide_data.systems(self.guide).get(self.cfg.system)
        allowed = list(SYSTEM_FLOWS.get(self.cfg.system) or getattr(system, "flows", None) or FLOWS)
        if self.cfg.auth.flow not in allowed:
            text = (f"! Warning: {SYSTEMS[self.cfg.system]} supports only: "
                    + ", ".join(ALL_FLOWS.get(a, a) for a in allowed) + ".")
        elif system is not None and getattr(system, "description", ""):
            text = system.description
        note.update(text)
        note.set_class(text.startswith("!"), "-warning")
        note.display = bool(text)

    def commit(self):
        return None

    def action_next(self) -> None:
        if self.cfg.auth.flow not in OFFERED_FLOWS:
            for radio_set in self.query("#flow"):
                radio_set.focus()
            self.notify("Choose a sign-in method first.", severity="error")
            return
        super().action_next()
