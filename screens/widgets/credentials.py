"""The ids stage's sign-in values for the flows beyond the guides:
- certificate: the key file (PEM) and the thumbprint; F8 creates a key pair and a
  self-signed certificate (``wizard.identity.certificates``) and says where to upload the .cer;
- device code: the account, and F9 signs in now (``wizard.identity.device_code``) in a
  worker: the address and the code large, a QR code when available, a countdown."""

from __future__ import annotations

import threading
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, Input, Static

from wizard.config import fields as f
from wizard.config.schema import copy_config



def check_certificate(raw: str) -> f.Checked:
    from wizard.identity.certificates import certificate_info
    path, notes = f.clean(raw)
    if not path:
        return f.Checked("", "Give the PEM file with the private key, or press F8 to create one.")
    p = Path(path).expanduser()
    if not p.is_file():
        return f.Checked(path, f"File {p} does not exist (F8 creates a key and certificate).")
    try:
        info = certificate_info(p)
    except (OSError, ValueError, AttributeError):
        return f.Checked(path, "No certificate found in this file: give the PEM that mailwizard (or "
                               "`mailwizard cert create`) wrote, with the key and the certificate.")
    return f.Checked(path, None, notes + [f"certificate found, thumbprint {info.thumbprint}, "
                                          f"valid until {info.expires.isoformat()}"])


def check_thumbprint(raw: str) -> f.Checked:
    from wizard.identity.certificates import normalise_thumbprint
    value = normalise_thumbprint(f.clean(raw)[0])
    if len(value) != 40 or any(c not in "0123456789ABCDEF" for c in value):
        return f.Checked(value, "The SHA-1 thumbprint is 40 hexadecimal characters, as the portal's "
                                "Certificates tab shows it.")
    return f.Checked(value, None)


def free_paths(folder: Path) -> tuple[Path, Path]:
    for n in range(1, 100):
        tail = "" if n == 1 else f"-{n}"
        key, cer = folder / f"mailwizard-key{tail}.pem", folder / f"mailwizard{tail}.cer"
        if not key.exists() and not cer.exists():
            return key, cer
    raise FileExistsError(f"too many mailwizard key files in {folder}")


class CertificatePanel(Vertical):
    """Key file + thumbprint fields, validity, and what F8 created."""

    def compose(self) -> ComposeResult:
        screen, auth = self.screen, self.app.config.auth
        yield screen.field("auth.certificate", "certificate", check_certificate, auth.certificate,
                           label="Certificate key file (PEM, private key + certificate)",
                           placeholder="e.g. /etc/mailwizard/mailwizard-key.pem")
        yield screen.field("auth.thumbprint", "thumbprint", check_thumbprint, auth.thumbprint,
                           label="Thumbprint (Certificates & secrets > Certificates)",
                           placeholder="40 hexadecimal characters")
        yield Static("Validity in days for F8 (1-3650)", classes="field-label")
        yield Input("730", id="cert-days", restrict=r"[0-9]*", max_length=4)
        yield Button("Create key and certificate (F8)", id="cert-create")
        yield Static("F8 creates a key (mode 0600) and a self-signed certificate next to the config file.",
                     id="cert-result", classes="field-help", markup=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cert-create":
            event.stop()
            self.create()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "f-auth-certificate":
            return
        checked = check_certificate(event.value)
        if checked.ok:
            from wizard.identity.certificates import certificate_info
            info = certificate_info(Path(checked.value).expanduser())
            self.app.config.auth.certificate_expires = info.expires
            thumb = self.query_one("#f-auth-thumbprint", Input)
            if not thumb.value.strip():
                thumb.value = info.thumbprint

    def create(self) -> None:
        from wizard.identity.certificates import PORTAL_PATH, create_certificate
        raw = self.query_one("#cert-days", Input).value
        if not raw.isdigit() or not 1 <= int(raw) <= 3650:
            self.app.notify("Validity: a number of days from 1 to 3650.", severity="error")
            self.query_one("#cert-days").focus()
            return
        folder = self.app.config_path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            key, cer = free_paths(folder)
            info = create_certificate("mailwizard", days=int(raw), key_path=key, cert_path=cer)
        except (OSError, ValueError) as exc:
            self.app.notify(f"Could not create the certificate: {exc}", severity="error", markup=False)
            return
        auth = self.app.config.auth
        auth.certificate, auth.thumbprint, auth.certificate_expires = str(key), info.thumbprint, info.expires
        self.query_one("#f-auth-certificate", Input).value = str(key)
        self.query_one("#f-auth-thumbprint", Input).value = info.thumbprint
        self.app.mark_dirty()
        result = self.query_one("#cert-result", Static)
        result.update(f"✔ Created {key} (private key, mode 0600: keep it here) and {cer}, valid until "
                      f"{info.expires.isoformat()}.\nUpload {cer} in the portal: {PORTAL_PATH}.")
        result.set_class(True, "-pass")
        self.app.notify(f"Upload {cer.name} to the app registration.", title="Certificate created",
                        markup=False)


class DeviceCodePanel(Vertical):
    """F9 signs in with the device code flow; F9 again (or leaving) cancels."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cancel = threading.Event()
        self.running = False
        self.flow = None       # the code shown (drawn again to the panel's width on a resize)

    def compose(self) -> ComposeResult:
        auth = self.app.config.auth
        yield self.screen.field("auth.username", "username",
                                lambda raw: f.Checked("", None) if not raw.strip() else f.check_username(raw),
                                auth.username, label="Account that signs in (optional)",
                                placeholder="e.g. svc-erp@contoso.com")
        yield Static("Press F9 to sign in now: open the address on any device, type the code, sign in "
                     "(MFA works). The sign-in is kept for the system (refresh token, file only you can read).",
                     id="device-help", classes="field-help", markup=False)
        yield Button("Sign in now (F9)", id="device-start")
        yield Static("", id="device-code", classes="panel", markup=False)
        yield Static("", id="device-status", classes="field-msg", markup=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "device-start":
            event.stop()
            self.screen.commit()      # the IDs as typed now
            self.toggle()

    def on_mount(self) -> None:
        self.query_one("#device-code").display = False

    def on_unmount(self) -> None:
        self.cancel.set()

    def toggle(self) -> None:
        if self.running:
            self.cancel.set()
            return
        self.cancel = threading.Event()
        self.running = True
        self.query_one("#device-start", Button).label = "Cancel the sign-in (F9)"
        self.status("Asking the identity platform for a code…")
        self.sign_in(copy_config(self.app.config), self.cancel)   # the worker never sees later edits

    def status(self, text: str, cls: str = "") -> None:
        if not self.is_attached:      # the screen was left while the worker ran
            return
        box = self.query_one("#device-status", Static)
        box.update(text)
        for name in ("-warning", "-error", "-pass"):
            box.set_class(name == cls, name)

    def show_code(self, flow) -> None:
        if not self.is_attached:
            return
        self.flow = flow
        box = self.query_one("#device-code", Static)
        self.draw_code()
        box.display = True
        box.border_title = "Device sign-in"
        self.call_after_refresh(box.scroll_visible, animate=False)

    def draw_code(self) -> None:
        """The framed instructions as wide as the box's inside (the frame never wraps)."""
        from wizard.identity import device_code
        box = self.query_one("#device-code", Static)
        width = self.content_size.width - box.styles.gutter.width
        box.update(device_code.display(self.flow, width=max(width, 20)))

    def on_resize(self) -> None:
        if self.flow is not None and self.query_one("#device-code").display:
            self.draw_code()

    def tick(self, seconds: int) -> None:
        self.status(f"Waiting for the sign-in: the code expires in {seconds // 60}:{seconds % 60:02d}. "
                    "F9 cancels.")

    def finished(self, upn: str | None, error: str | None) -> None:
        self.running = False
        if not self.is_attached:
            return
        self.query_one("#device-start", Button).label = "Sign in now (F9)"
        if error:
            self.status(f"✘ {error}", "-error")
            return
        if upn and not self.app.config.auth.username:
            self.query_one("#f-auth-username", Input).value = upn
        self.status(f"✔ Signed in{' as ' + upn if upn else ''}. The sign-in is saved for the system.", "-pass")
        self.query_one("#device-code").display = False

    @work(thread=True, exclusive=True, group="device-code", exit_on_error=False, description="Device sign-in")
    def sign_in(self, cfg, cancel: threading.Event) -> None:
        from wizard.identity import device_code
        from wizard.identity.signin import AuthError
        call = self.app.call_from_thread
        try:
            flow = device_code.start(cfg)
            call(self.show_code, flow)
            result = device_code.wait(cfg, flow, cancel=cancel,
                                      on_tick=lambda s: None if cancel.is_set() else call(self.tick, s))
        except AuthError as exc:
            d = exc.diagnosis
            if not cancel.is_set() or d.code != "device.cancelled":
                call(self.finished, None, f"{d.cause} {d.fix or ''}".strip())
            else:
                call(self.finished, None, "Cancelled: press F9 to sign in again.")
            return
        claims = result.claims or {}
        call(self.finished, claims.get("upn") or claims.get("preferred_username"), None)


def registration_note(flow: str) -> str:
    """What to do in the portal for a flow beyond the guides ('' for the guides' flows)."""
    if flow == "certificate":
        from wizard.identity.certificates import PORTAL_PATH
        return ("Certificate flow (beyond the guides): register the app as the client secret steps say, "
                "but skip the client secret. In stage 3 press F8 to create a key and a certificate, then "
                f"upload the .cer: {PORTAL_PATH}. Same application permissions and admin consent.")
    if flow == "device_code":
        return ("Device code flow (beyond the guides): register the app as the user name & password steps "
                "say: Authentication > Allow public client flows = Yes, the delegated permissions below and "
                "admin consent. In stage 3 press F9 to sign in once (MFA works).")
    return ""


def compose_for(screen) -> ComposeResult:
    """The sign-in values of the certificate or device code flow."""
    if screen.cfg.auth.flow == "certificate":
        yield CertificatePanel(id="cert-panel")
    else:
        yield DeviceCodePanel(id="device-panel")
