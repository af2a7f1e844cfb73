"""Demo mode: sample values for the sandbox tenant, by scenario.

The values go straight into the Inputs and app.config; the picker shows only the
scenario names, never a secret or password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from wizard.sandbox import sample as s


@dataclass
class Scenario:
    id: str
    label: str
    flow: str
    values: dict = field(default_factory=dict)   # config key -> raw text, as typed


def _wrong(secret: str) -> str:
    """A secret of the right shape that the sandbox does not know."""
    return secret[:6] + secret[6:][::-1]


def scenarios(today: date | None = None) -> list[Scenario]:
    today = today or date.today()
    ok_secret = {"microsoft.client_id": s.SECRET_APP_ID, "microsoft.tenant_id": s.TENANT_ID,
                 "auth.client_secret": s.SECRET_VALUE,
                 "auth.secret_expires": (today + timedelta(days=540)).isoformat()}
    ok_password = {"microsoft.client_id": s.PASSWORD_APP_ID, "microsoft.tenant_id": s.TENANT_ID,
                   "auth.username": s.SERVICE_USER, "auth.password": s.SERVICE_PASSWORD}
    return [
        Scenario("secret_ok", "Working client secret", "client_secret", ok_secret),
        Scenario("password_ok", "Working user name & password", "password", ok_password),
        Scenario("secret_id", "Failure: Secret ID pasted instead of the Value", "client_secret",
                 {**ok_secret, "auth.client_secret": s.SECRET_ID}),
        Scenario("wrong_secret", "Failure: wrong client secret", "client_secret",
                 {**ok_secret, "auth.client_secret": _wrong(s.SECRET_VALUE)}),
        Scenario("expired_secret", "Failure: expired client secret", "client_secret",
                 {**ok_secret, "auth.client_secret": s.EXPIRED_SECRET_VALUE, "auth.secret_expires": ""}),
        Scenario("no_consent", "Failure: admin consent missing", "client_secret",
                 {**ok_secret, "microsoft.client_id": s.NO_CONSENT_APP_ID,
                  "auth.client_secret": s.NO_CONSENT_SECRET_VALUE}),
        Scenario("mfa_user", "Failure: service account with MFA", "password",
                 {**ok_password, "auth.username": s.MFA_USER, "auth.password": s.MFA_PASSWORD}),
        Scenario("no_mailbox", "Failure: sender without a mailbox", "client_secret",
                 {**ok_secret, "outgoing.sender": s.NO_MAILBOX}),
    ]


def apply(app, scenario: Scenario) -> None:
    """Put a scenario's values into the app: config (checked) and the raw drafts."""
    from wizard.config import fields as f
    checks = {"microsoft.client_id": f.check_client_id, "microsoft.tenant_id": f.check_tenant_id,
              "auth.client_secret": f.check_client_secret, "auth.secret_expires": f.check_secret_expiry,
              "auth.username": f.check_username, "auth.password": f.check_password,
              "outgoing.sender": f.check_email, "outgoing.test_recipient": f.check_email}
    cfg = app.config
    cfg.auth.flow = scenario.flow
    values = {"outgoing.sender": s.SENDER, "outgoing.test_recipient": s.RECIPIENT, **scenario.values}
    for key, raw in values.items():
        app.drafts[key] = raw
        checked = checks[key](raw)
        section, name = key.split(".")
        setattr(getattr(cfg, section), name, checked.value if checked.ok else raw)
    app.mark_dirty()


class ScenarioPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="scenario-cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Fill sample values for a scenario", id="dialog-title")
            yield Static("The values are typed into the fields for you; secrets stay hidden.",
                         id="dialog-text")
            yield OptionList(*[Option(sc.label, id=sc.id) for sc in scenarios()], id="scenarios")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
