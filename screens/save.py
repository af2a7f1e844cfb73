"""Stage 6: preview the TOML (secrets masked), write it (0600, backup kept), say what next."""

from __future__ import annotations

import stat

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Button, Static

from wizard.config import files as config_io
from wizard.config.schema import masked

from screens.base import StageScreen
from screens.dialogs.confirm import ConfirmDialog


class SaveScreen(StageScreen):
    STAGE = "save"
    STEPS_FIRST = False
    BINDINGS = [
        Binding("s", "save", "Save", id="save", tooltip="Write the configuration file (mode 0600)."),
        Binding("t", "app.settings_sheet", "Settings sheet", id="settings-sheet",
                tooltip="The values to enter in the system's settings, to read or copy (c)."),
        Binding("r", "app.runbook", "Runbook", id="runbook",
                tooltip="The admin's portal steps with these values, to read or copy (c)."),
    ]
    FIRST_FOCUS = "#save-button"

    def existing_text(self) -> str | None:
        try:
            return self.app.config_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def compose_body(self) -> ComposeResult:
        path = self.app.config_path
        yield Static(f"File: {path}" + (" (exists: it is updated, comments kept, "
                     "the old one kept as .bak)" if path.exists() else " (new)"), id="save-path",
                     markup=False)
        if not self.app.tested_ok:
            yield Static("! Warning: the connection test has not passed for these values. "
                         "You can save anyway (you are asked first).", classes="panel -warning")
        yield Button("Save (s)", variant="primary", id="save-button")
        yield Static("", id="save-result", classes="panel", markup=False)
        from screens.widgets.fields import InnerScroll
        with InnerScroll(id="preview", can_focus=True) as box:
            box.border_title = "What will be written (secrets masked here only)"
            yield Static(config_io.render(masked(self.cfg), self.existing_text()), markup=False,
                         id="preview-text")

    def on_mount(self) -> None:
        self.query_one("#save-result").display = False

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("app.settings_sheet", "app.runbook", "settings_sheet", "runbook"):
            from screens.app import exports_module
            return exports_module() is not None
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save-button":
            self.action_save()

    def action_next(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        if self.app.tested_ok:
            self.write()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.write()

        self.app.push_screen(ConfirmDialog(
            "Save without a passing test?",
            "The connection test has not passed for these values. The system may not be able "
            "to send or fetch mail with them. Save anyway?", yes="Save", no="Cancel"), answer)

    def write(self, overwrite: bool = False) -> None:
        path = self.app.config_path
        had_file = path.exists()
        try:
            written = config_io.save(self.cfg, path, tested=bool(self.app.tested_ok),
                                     expect=config_io.ANY if overwrite else config_io.SEEN)
        except config_io.ConfigChanged:
            def answer(yes: bool | None) -> None:
                if yes:
                    self.write(overwrite=True)

            self.app.push_screen(ConfirmDialog(
                "The file changed meanwhile",
                f"{path} was saved by someone else (another mailwizard, or by hand) after this "
                "wizard read it. Replace it with these values? Its current text is kept as .bak.",
                yes="Replace", no="Cancel", default=False), answer)
            return
        except OSError as exc:
            self.notify(f"Could not write {path}: {exc.strerror or exc}. Free some space or check the "
                        "folder's permissions, or start mailwizard with --config PATH.",
                        title="Not saved", severity="error", timeout=15, markup=False)
            return
        self.app.dirty = False
        self.app.saved_path = written
        self.app.keeper.discard()   # saved: nothing left to resume
        mode = stat.S_IMODE(written.stat().st_mode)
        lines = [f"✔ Saved to {written} (mode {mode:04o}: only you can read it)."]
        if had_file:
            lines.append(f"The previous file was kept as {config_io.backup_path(written).name}.")
        if self.app.tested_ok:
            lines.append(f"As it passed the test, it is also kept as {config_io.good_path(written).name}.")
        config_arg = f" --config {written}" if written != config_io.resolve_path(None) else ""
        lines += ["", "What next:",
                  f"  mailwizard check{config_arg}   runs the connection test again (for scripts, too)",
                  f"  mailwizard show{config_arg}    shows the settings, secrets masked",
                  "Enter the same values in the system's settings as the guide shows:",
                  "t shows the settings sheet and r the admin runbook, each to copy with c.",
                  "Press ctrl+q to leave."]
        if self.app.demo is not None:
            lines += ["", "Demo: this file points at the sandbox tenant, which stops when the wizard exits;",
                      "`mailwizard sandbox --write-config FILE` serves one to try `check` against."]
        result = self.query_one("#save-result", Static)
        result.update("\n".join(lines))
        result.display = True
        result.set_class(True, "-pass")
        self.call_after_refresh(result.scroll_visible)
        self.notify(f"Saved to {written}", title="Saved", markup=False)
