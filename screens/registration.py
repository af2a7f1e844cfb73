"""Stage 2: the portal steps, the permissions and the manifest JSON to paste."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from .base import StageScreen
from .clipboard import PlainTextScreen, copy_text


def manifest_text(flow: str, protocol: str) -> str:
    try:
        from wizard.manifest import manifest_snippet
    except ImportError:
        return "(The manifest snippet is not available in this build.)"
    try:
        return manifest_snippet(flow, protocol)
    except ValueError as exc:   # no verified IDs for this flow/protocol
        return f"(No manifest snippet: {exc})"


def permissions_text(flow: str, protocol: str) -> str:
    try:
        from wizard.manifest import permissions_for
    except ImportError:
        return ""
    try:
        perms = permissions_for(flow, protocol)
    except ValueError:
        return ""
    return "\n".join(f"• {getattr(p, 'path', p)}" for p in perms)


class RegistrationScreen(StageScreen):
    STAGE = "registration"
    BINDINGS = [
        Binding("c", "copy", "Copy manifest", id="copy-manifest",
                tooltip="Copy the manifest JSON to the clipboard (OSC 52)."),
        Binding("p", "plain", "Show plain", id="plain-manifest",
                tooltip="Show the manifest JSON alone, to select it with the mouse."),
    ]
    FIRST_FOCUS = "#steps"

    @property
    def protocol(self) -> str:
        return self.cfg.outgoing.protocol or "ews"

    def compose_body(self) -> ComposeResult:
        perms = permissions_text(self.cfg.auth.flow, self.protocol)
        if perms:
            box = Static(perms, id="permissions", classes="panel", markup=False)
            box.border_title = "Permissions to add"
            yield box
        yield Static("Manifest JSON (c copies it, p shows it plain; arrows scroll):",
                     classes="field-label")
        with VerticalScroll(id="manifest", can_focus=True):
            yield Static(manifest_text(self.cfg.auth.flow, self.protocol), markup=False,
                         id="manifest-text")

    def action_copy(self) -> None:
        copy_text(self.app, manifest_text(self.cfg.auth.flow, self.protocol), "manifest JSON")

    def action_plain(self) -> None:
        self.app.push_screen(PlainTextScreen(manifest_text(self.cfg.auth.flow, self.protocol)))

    def commit(self):
        return None
