"""Command palette (^o) entries for the wizard's main actions; also the way in
when the terminal takes the F-keys."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider


def wizard_commands(app) -> list[tuple[str, object, str]]:
    """(name, callback, help) of the palette entries, in the order shown."""
    items = [
        ("Next", app.action_next_stage, "Go to the next stage (values are checked first)."),
        ("Back", app.action_prev_stage, "Go back one stage; your values are kept."),
        ("Run test", app.action_run_test, "Run the connection test against the tenant."),
        ("Save", app.action_save_config, "Go to the last stage and save the configuration."),
        ("Read back", app.action_read_back, "Show this screen's IDs large, for reading aloud."),
        ("Copy manifest", app.action_copy_manifest, "Copy the app manifest JSON (OSC 52)."),
        ("Settings sheet", app.action_settings_sheet, "The values to enter in the system, to read or copy."),
        ("Admin runbook", app.action_runbook, "The portal steps for the admin, to read or copy."),
        ("Toggle theme", app.action_toggle_theme, "Switch between the light and the dark theme."),
        ("Help", app.action_help, "Keys and where you are (F1)."),
        ("Quit", app.action_quit, "Leave the wizard (asks first when values are not saved)."),
    ]
    return [item for item in items if app.command_available(item[0])]


class WizardCommands(Provider):
    async def discover(self) -> Hits:
        for name, callback, help_text in wizard_commands(self.app):
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in wizard_commands(self.app):
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
