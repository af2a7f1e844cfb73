"""Stage 3: Application (client) ID, Directory (tenant) ID and the sign-in values."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from wizard import fields as f

from .base import StageScreen


class IdsScreen(StageScreen):
    STAGE = "ids"
    BINDINGS = [
        Binding("f2", "fill", "Fill sample", id="demo-fill",
                tooltip="Demo only: fill the sample values of a scenario."),
        Binding("ctrl+t", "reveal", "Show/hide", id="reveal-secret",
                tooltip="Show or hide the secret or password in the focused field."),
    ]
    SECRET_FIELDS = ("f-auth-client_secret", "f-auth-password")

    def compose_body(self) -> ComposeResult:
        c = self.cfg
        yield self.field("microsoft.client_id", "client_id", f.check_client_id, c.microsoft.client_id,
                         placeholder="00000000-0000-0000-0000-000000000000")
        yield self.field("microsoft.tenant_id", "tenant_id", f.check_tenant_id, c.microsoft.tenant_id,
                         placeholder="a GUID, or a domain such as contoso.com")
        if c.auth.flow == "password":
            yield self.field("auth.username", "username", f.check_username, c.auth.username,
                             placeholder="e.g. svc-erp@contoso.com")
            yield self.field("auth.password", "password", f.check_password, c.auth.password,
                             password=True)
        else:
            yield self.field("auth.client_secret", "client_secret", f.check_client_secret,
                             c.auth.client_secret, password=self.app.demo is not None,
                             placeholder="the Value column, about 40 characters")
            expires = c.auth.secret_expires.isoformat() if c.auth.secret_expires else ""
            yield self.field("auth.secret_expires", "secret_expires", f.check_secret_expiry, expires,
                             placeholder="YYYY-MM-DD")
        if self.app.demo is not None:
            yield Static("Demo: press F2 to fill the sample values of a scenario.", classes="field-help")

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "fill":
            return self.app.demo is not None
        if action == "reveal":   # the demo never shows its secrets
            return self.app.demo is None
        return True

    def action_reveal(self) -> None:
        field = self.focused
        if not isinstance(field, Input) or field.id not in self.SECRET_FIELDS:
            self.notify("Move to the client secret or password field first.", severity="warning")
            return
        field.password = not field.password

    def action_fill(self) -> None:
        from .demo import ScenarioPicker, apply, scenarios

        async def chosen(scenario_id: str | None) -> None:
            if not scenario_id:
                return
            apply(self.app, next(sc for sc in scenarios() if sc.id == scenario_id))
            await self.recompose()
            self.query(Input).first().focus()
            self.notify("Sample values filled in. Press ctrl+n to continue.", title="Demo")

        self.app.push_screen(ScenarioPicker(), chosen)
