"""Stage 3: Application (client) ID, Directory (tenant) ID and the sign-in values."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from wizard.config import fields as f
from wizard.guide import readback

from screens.widgets import credentials
from screens.base import StageScreen


def accepts_readback(check):
    """A GUID check that also takes a value read back over the phone: groups with
    spaces or dashes and the check letter at the end ('5f8d 2c1a ... 5c6d K').
    What was cleaned is said under the field, with the value as it is kept."""

    def run(raw: str) -> f.Checked:
        checked = check(raw)
        if not checked.ok:
            guid, reason = readback.explain_readback(raw)
            bare = "".join(readback.groups(f.clean(raw)[0].replace("check", " ")))
            looks_read_back = len(bare) == 33 and bare[-1].isalpha() and bare[-1] not in readback.HEX
            if guid is not None:
                checked = check(guid)
                checked.notes = [f"read back with check letter {readback.check_char(guid)}: it matches"]
            elif looks_read_back and reason:
                return f.Checked(raw, reason)
        if checked.ok and checked.notes and isinstance(checked.value, str) and checked.value != raw:
            checked.notes = checked.notes + [f"kept as {checked.value}"]
        return checked

    return run


class IdsScreen(StageScreen):
    STAGE = "ids"
    BINDINGS = [
        Binding("f2", "fill", "Fill sample", id="demo-fill",
                tooltip="Demo only: fill the sample values of a scenario."),
        Binding("f6", "find_tenant", "Find tenant ID", id="find-tenant",
                tooltip="Type a domain (contoso.com) in Directory (tenant) ID and look up its GUID and cloud."),
        Binding("ctrl+t", "reveal", "Show/hide", id="reveal-secret",
                tooltip="Show or hide the secret or password in the focused field."),
        Binding("f8", "create_certificate", "Create certificate", id="cert-create",
                tooltip="Certificate flow: create a key (0600) and a self-signed certificate to upload."),
        Binding("f9", "device_sign_in", "Sign in (device code)", id="device-sign-in",
                tooltip="Device code flow: sign in now on any device; F9 again cancels."),
    ]
    SECRET_FIELDS = ("f-auth-client_secret", "f-auth-password")

    def compose_body(self) -> ComposeResult:
        c = self.cfg
        yield self.field("microsoft.client_id", "client_id", accepts_readback(f.check_client_id),
                         c.microsoft.client_id,
                         placeholder="00000000-0000-0000-0000-000000000000")
        yield self.field("microsoft.tenant_id", "tenant_id", accepts_readback(f.check_tenant_id),
                         c.microsoft.tenant_id,
                         placeholder="a GUID, or a domain such as contoso.com")
        if c.auth.flow in ("certificate", "device_code"):
            yield from credentials.compose_for(self)
        elif c.auth.flow == "password":
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
        if action == "create_certificate":
            return self.cfg.auth.flow == "certificate"
        if action == "device_sign_in":
            return self.cfg.auth.flow == "device_code"
        return True

    TENANT_INPUT = "#f-microsoft-tenant_id"

    def action_find_tenant(self) -> None:
        """Tenant discovery: the domain typed in the tenant field -> its GUID and
        cloud, from the public openid-configuration (no sign-in)."""
        box = self.query_one(self.TENANT_INPUT, Input)
        query = f.clean(box.value)[0]
        if not query:
            self.notify("Type your domain (e.g. contoso.com) in Directory (tenant) ID first.", severity="warning")
            box.focus()
            return
        self.notify(f"Looking up {query}…", title="Find tenant ID", timeout=3)
        self.find_tenant(query)

    @work(thread=True, exclusive=True, group="discover", exit_on_error=False, description="Tenant discovery")
    def find_tenant(self, query: str) -> None:
        from wizard.identity.discovery import DiscoveryError, discover_tenant
        cfg = self.cfg
        try:
            info = discover_tenant(query, authority=cfg.endpoints.authority or None,
                                   ca_bundle=cfg.ca_bundle)
        except DiscoveryError as exc:
            title = ("Identity platform not reached" if exc.code == "network" else
                     "Tenant not found" if exc.unknown_domain else "Tenant lookup failed")
            # the title says what failed: the network's cause (short) or the whole message, and the fix
            text = exc.details.get("cause") if exc.code == "network" else None
            text = text or exc.message
            text = text if not exc.fix or exc.fix in text else f"{text} {exc.fix}"
            self.app.call_from_thread(self.notify, text, title=title, severity="error", timeout=20,
                                      markup=False)
            return
        self.app.call_from_thread(self.tenant_found, query, info)

    def tenant_found(self, query: str, info) -> None:
        from wizard.config.clouds import CLOUDS
        self.query_one(self.TENANT_INPUT, Input).value = info.tenant_id
        cloud = ""
        if info.cloud and info.cloud in CLOUDS:
            from screens.widgets.protocols import set_cloud
            if info.cloud != self.cfg.microsoft.cloud:
                set_cloud(self.app, info.cloud)   # its servers too, as the choice on stage 1
            cloud = f" in the {CLOUDS[info.cloud].label} cloud"
        region = f", region {info.region_scope}" if info.region_scope else ""
        self.notify(f"{query} is tenant {info.tenant_id}{cloud}{region}. The GUID is filled in.",
                    title="Tenant found", timeout=10)

    def action_create_certificate(self) -> None:
        self.query_one(credentials.CertificatePanel).create()

    def action_device_sign_in(self) -> None:
        self.commit()      # the IDs as typed now
        self.query_one(credentials.DeviceCodePanel).toggle()

    def action_reveal(self) -> None:
        field = self.focused
        if not isinstance(field, Input) or field.id not in self.SECRET_FIELDS:
            self.notify("Move to the client secret or password field first.", severity="warning")
            return
        field.password = not field.password

    def action_fill(self) -> None:
        from screens.demo import ScenarioPicker, apply, scenarios

        async def chosen(scenario_id: str | None) -> None:
            if not scenario_id:
                return
            apply(self.app, next(sc for sc in scenarios() if sc.id == scenario_id))
            await self.recompose()
            self.query(Input).first().focus()
            self.notify("Sample values filled in. Press ctrl+n to continue.", title="Demo")

        self.app.push_screen(ScenarioPicker(), chosen)
