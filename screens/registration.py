"""Stage 2: the portal steps, the permissions and the manifest JSON to paste."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from screens.base import StageScreen
from screens.clipboard import copy_text, show_plain
from screens.widgets.fields import Hanging, InnerScroll


def _protocols(protocol: str, incoming: str | None) -> tuple[str, str]:
    from wizard.guide.recommend import choice_of, split
    return (protocol, incoming) if incoming else split(choice_of(protocol, protocol))


def manifest_text(flow: str, protocol: str, incoming: str | None = None) -> str:
    """The manifest snippet for the flow over the outgoing and incoming protocols,
    or the permissions to add by hand where no verified IDs exist."""
    from wizard.guide.recommend import manifest
    try:
        snippet, by_hand = manifest(flow, *_protocols(protocol, incoming))
    except ValueError as exc:
        return f"(No manifest snippet: {exc})"
    if snippet is not None:
        return snippet
    return ("(No manifest snippet: these permissions have no verified IDs. Add them on API permissions > "
            "Add a permission, then Grant admin consent:)\n" + "\n".join(f"• {p.path}" for p in by_hand))


def permissions_text(flow: str, protocol: str, incoming: str | None = None) -> str:
    from wizard.guide.recommend import permissions
    try:
        perms = permissions(flow, *_protocols(protocol, incoming))
    except ValueError:
        return ""
    return "\n".join(f"• {p.path}" + ("  (add by hand)" if p.id is None else "") for p in perms)


class RegistrationScreen(StageScreen):
    STAGE = "registration"
    BINDINGS = [
        Binding("c", "copy", "Copy manifest", id="copy-manifest",
                tooltip="Copy the manifest JSON to the clipboard (OSC 52)."),
        Binding("p", "plain", "Show plain", id="plain-manifest",
                tooltip="Show the manifest JSON alone, to select it with the mouse."),
        Binding("w", "register", "Let the wizard do it", id="register-app",
                tooltip="A tenant admin signs in once (device code) and the wizard does these portal steps "
                        "through Microsoft Graph, writes the IDs and the secret into the config and tests it."),
    ]
    FIRST_FOCUS = "#steps"

    @property
    def protocol(self) -> str:
        return self.cfg.outgoing.protocol or "ews"

    def compose_body(self) -> ComposeResult:
        from screens.widgets.credentials import registration_note
        yield Static("w: let the wizard do these steps (a tenant admin signs in once; works over SSH).",
                     id="register-hint", classes="field-label", markup=False)
        note = registration_note(self.cfg.auth.flow)
        if note:
            yield Static(note, id="beyond-guides", classes="panel", markup=False)
        perms = permissions_text(self.cfg.auth.flow, self.protocol, self.cfg.incoming.protocol)
        if perms:
            box = Hanging(perms, id="permissions", classes="panel")
            box.border_title = "Permissions to add"
            yield box
        yield Static("Manifest JSON (c copies it, p shows it plain; arrows scroll):",
                     classes="field-label")
        with InnerScroll(id="manifest", can_focus=True):
            yield Static(manifest_text(self.cfg.auth.flow, self.protocol, self.cfg.incoming.protocol), markup=False,
                         id="manifest-text")

    def action_register(self) -> None:
        from screens.dialogs.register import RegisterDialog
        from wizard.config.schema import copy_config
        cfg = copy_config(self.app.config)
        demo = getattr(self.app, "demo", None)
        if demo is not None:
            cfg.endpoints.graph_url = demo.base_url     # the sandbox's Graph, as its identity platform
        self.app.push_screen(RegisterDialog(cfg, self.app.config_path), self.registered)

    def registered(self, outcome: dict | None) -> None:
        if outcome and outcome.get("ok"):
            self.app.notify(f"App {outcome['client_id']} registered, tested and saved: stage 3 has its IDs.")

    def action_copy(self) -> None:
        copy_text(self.app, manifest_text(self.cfg.auth.flow, self.protocol, self.cfg.incoming.protocol), "manifest JSON")

    def action_plain(self) -> None:
        show_plain(self.app, manifest_text(self.cfg.auth.flow, self.protocol, self.cfg.incoming.protocol),
                   "the manifest JSON")

    def commit(self):
        return None
