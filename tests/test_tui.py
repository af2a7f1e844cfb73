"""The Textual wizard, driven by keys at 80x24 against the sandbox tenant."""

from __future__ import annotations

import stat
from datetime import date, timedelta

from textual import events
from textual.widgets import Input

from screens.app import make_app
from screens.dialogs.confirm import ConfirmDialog
from wizard.config.files import standard_toml
from wizard.sandbox import sample as s

tomllib = standard_toml()   # tomli before Python 3.11

SIZE = (80, 24)


# -- helpers ---------------------------------------------------------------------

def quiet(app):
    """Answer the drafts' secrets question up front (tested on its own)."""
    app.keep_secrets = False
    return app

def screen_text(app) -> str:
    """What the terminal shows now (all layers, modals included)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def stage(app) -> str:
    return getattr(app.screen, "STAGE", type(app.screen).__name__)


def assert_focus_visible(app) -> None:
    """The focused widget is entirely on screen (80x24), inside the scrolling body."""
    focused = app.focused
    assert focused is not None, f"nothing focused on {stage(app)}"
    geometry = app.screen.find_widget(focused)
    assert geometry.clip.contains_region(geometry.region), \
        f"{focused!r} on {stage(app)} is cut off: {geometry.region} outside {geometry.clip}"
    assert app.screen.region.contains_region(geometry.region)


async def paste(pilot, text: str) -> None:
    """Paste text into the focused Input, as a terminal's bracketed paste does."""
    pilot.app.focused.post_message(events.Paste(text))
    await pilot.pause()
    await pilot.pause()   # the field scrolls its message into view after the next refresh


async def tab_to(pilot, widget_id: str) -> None:
    for _ in range(12):
        if pilot.app.focused is not None and pilot.app.focused.id == widget_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"Tab never reached #{widget_id}")


async def goto_next(pilot, expected: str) -> None:
    await pilot.press("ctrl+n")
    await pilot.pause()
    await pilot.pause()   # the initial focus scrolls into view after the first refresh
    assert stage(pilot.app) == expected, screen_text(pilot.app)
    assert_focus_visible(pilot.app)


async def fill_mail(pilot, *, account: str | None = None) -> None:
    """Mail stage: server and port come from demo mode; type sender and recipient."""
    app = pilot.app
    assert app.focused.id == "f-outgoing-server"
    await pilot.press("tab", "tab")
    await paste(pilot, s.SENDER)
    await pilot.press("tab")
    await paste(pilot, s.RECIPIENT)
    if account:
        await pilot.press("f5")
        await pilot.pause()
        await pilot.pause()
        assert app.focused.id == "f-incoming-accounts-0-address"
        assert_focus_visible(app)
        await paste(pilot, account)
        await pilot.press("tab")
        await paste(pilot, "Monitor-to-Monitor, CRM")


async def run_test_stage(pilot) -> str:
    await goto_next(pilot, "test")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return screen_text(pilot.app)


async def save(pilot, path):
    await goto_next(pilot, "save")
    preview = str(pilot.app.screen.query_one("#preview-text").render())
    assert "********" in preview and "[auth]" in preview
    await pilot.press("s")
    await pilot.pause()
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = screen_text(pilot.app)
    assert "Saved to" in text and "0600" in text
    return tomllib.loads(path.read_text())


# -- (a) and (b): the two flows end to end ---------------------------------------

async def test_client_secret_flow_end_to_end(sandbox, tmp_path):
    path = tmp_path / "mw.toml"
    app = make_app(path, demo=sandbox)
    expires = (date.today() + timedelta(days=300)).isoformat()
    async with app.run_test(size=SIZE) as pilot:
        assert stage(app) == "target" and "Demo tenant (sandbox on 127.0.0.1)" in screen_text(app)
        text = screen_text(app)
        assert "Client secret" in text and "System to connect" in text   # the choices first
        await goto_next(pilot, "registration")
        assert "Copy manifest" in screen_text(app)
        await pilot.press("c")
        assert "requiredResourceAccess" in app.clipboard
        await goto_next(pilot, "ids")
        await paste(pilot, f'  "{s.SECRET_APP_ID}"\n')
        assert "removed surrounding quotes" in screen_text(app)
        await pilot.press("enter")                      # Enter moves to the next field
        await paste(pilot, s.TENANT_ID)
        await pilot.press("tab")
        await paste(pilot, s.SECRET_VALUE)
        await pilot.press("tab")                        # leaving the filled secret field asks once
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and "Keep secrets in the draft" in screen_text(app)
        await pilot.press("enter")                      # the default: leave secrets out
        await pilot.pause()
        assert app.keep_secrets is False and app.focused.id == "f-auth-secret_expires"
        await paste(pilot, expires)
        await goto_next(pilot, "mail")
        await fill_mail(pilot, account=s.INCOMING[0])
        text = await run_test_stage(pilot)
        assert app.last_report is not None and app.last_report.ok, text
        assert all(st.status in ("pass", "warn") for st in app.last_report.steps)
        assert "✔ PASS" in text and "FAIL" not in text.replace("✘ FAIL: 0", "")
        data = await save(pilot, path)
    assert data["system"] == "monitor_g5"
    assert data["microsoft"] == {"cloud": "global", "tenant_id": s.TENANT_ID, "client_id": s.SECRET_APP_ID}
    assert data["auth"]["flow"] == "client_secret"
    assert data["auth"]["client_secret"] == s.SECRET_VALUE      # written in full, masked on screen only
    assert data["auth"]["secret_expires"] == date.fromisoformat(expires)
    assert data["outgoing"]["sender"] == s.SENDER
    assert data["outgoing"]["test_recipient"] == s.RECIPIENT
    assert data["incoming"]["accounts"] == [
        {"address": s.INCOMING[0], "types": ["Monitor-to-Monitor", "CRM"], "available_to": "all"}]
    assert not app.dirty


async def test_password_flow_end_to_end(sandbox, tmp_path):
    path = tmp_path / "mw.toml"
    app = quiet(make_app(path, demo=sandbox))
    async with app.run_test(size=SIZE) as pilot:
        await tab_to(pilot, "flow")
        await pilot.press("down", "space")                  # second choice: user name & password
        await pilot.pause()
        assert app.config.auth.flow == "password"
        assert "MFA" in screen_text(app) or "MFA" in str(app.screen.query_one("#flow-compare").render())
        await goto_next(pilot, "registration")
        await goto_next(pilot, "ids")
        await paste(pilot, s.PASSWORD_APP_ID)
        await pilot.press("tab")
        await paste(pilot, s.DOMAIN)                        # a verified domain works as tenant
        await pilot.press("tab")
        await paste(pilot, s.SERVICE_USER)
        await pilot.press("tab")
        assert app.focused.password
        await paste(pilot, s.SERVICE_PASSWORD)
        assert s.SERVICE_PASSWORD not in screen_text(app)
        await goto_next(pilot, "mail")
        await fill_mail(pilot)
        text = await run_test_stage(pilot)
        assert app.last_report.ok, text
        data = await save(pilot, path)
    assert data["auth"]["flow"] == "password"
    assert data["auth"]["username"] == s.SERVICE_USER
    assert data["auth"]["password"] == s.SERVICE_PASSWORD
    assert data["microsoft"]["tenant_id"] == s.DOMAIN


# -- (c) Secret ID instead of the Value -------------------------------------------

async def test_secret_id_is_explained_and_next_refused(tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml", stage="ids"))
    async with app.run_test(size=SIZE) as pilot:
        await paste(pilot, s.SECRET_APP_ID)
        await pilot.press("tab")
        await paste(pilot, s.TENANT_ID)
        await pilot.press("tab")
        await paste(pilot, s.SECRET_ID)
        await pilot.press("tab")                            # away from the field
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert stage(app) == "ids"
        assert app.focused.id == "f-auth-client_secret"     # Next focused the bad field
        assert_focus_visible(app)
        assert "This is the Secret ID, not the secret Value" in screen_text(app)


# -- (d) a failed test explains itself and leads back ------------------------------

async def test_wrong_secret_shows_fix_and_jumps_back(sandbox, tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml", demo=sandbox, stage="ids"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")                             # demo: choose a scenario
        await pilot.pause()
        picker = app.screen
        option = next(i for i, o in enumerate(picker.query_one("OptionList").options)
                      if o.id == "wrong_secret")
        await pilot.press(*["down"] * option, "enter")
        await pilot.pause()
        secret = app.config.auth.client_secret
        assert secret and secret != s.SECRET_VALUE
        assert app.screen.query_one("#f-auth-client_secret", Input).password   # masked in demo
        assert secret not in screen_text(app)
        await goto_next(pilot, "mail")
        text = await run_test_stage(pilot)
        failed = [st for st in app.last_report.steps if st.status == "fail"]
        assert failed and failed[0].id == "token" and failed[0].screen == "ids"
        assert "✘ FAIL" in text and "Fix:" in text and "Guide:" in text
        assert failed[0].code in text
        svg = app.export_screenshot()
        assert secret not in text and secret not in svg
        await pilot.press("g")
        await pilot.pause()
        assert stage(app) == "ids"
        assert app.focused.id == "f-auth-client_secret"
        assert_focus_visible(app)


# -- (e) values survive Back and Next ---------------------------------------------

async def test_values_survive_back_and_next(tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml", stage="ids"))
    async with app.run_test(size=SIZE) as pilot:
        await paste(pilot, s.SECRET_APP_ID)
        await pilot.press("tab")
        await paste(pilot, "not-a-tenant!")                # kept as typed, even when not valid
        await pilot.press("tab")
        await paste(pilot, s.SECRET_VALUE)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert stage(app) == "registration"
        assert_focus_visible(app)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert stage(app) == "target"
        await tab_to(pilot, "flow")                         # switch to user name & password ...
        await pilot.press("down", "space")
        await goto_next(pilot, "registration")
        await goto_next(pilot, "ids")
        assert app.screen.query_one("#f-microsoft-client_id", Input).value == s.SECRET_APP_ID
        assert app.screen.query_one("#f-microsoft-tenant_id", Input).value == "not-a-tenant!"
        assert not app.screen.query("#f-auth-client_secret")
        await pilot.press("ctrl+p", "ctrl+p")               # ... and back to client secret
        await pilot.pause()
        assert stage(app) == "target"
        await tab_to(pilot, "flow")
        await pilot.press("up", "space")
        await pilot.pause()
        assert app.config.auth.flow == "client_secret"
        await goto_next(pilot, "registration")
        await goto_next(pilot, "ids")
        assert app.screen.query_one("#f-auth-client_secret", Input).value == s.SECRET_VALUE
        assert app.config.microsoft.client_id == s.SECRET_APP_ID
        assert app.config.auth.flow == "client_secret"


async def test_switching_flow_leaves_one_method_in_the_config(tmp_path):
    from wizard.config import files as config_io
    from wizard.config.schema import Config
    path = tmp_path / "mw.toml"
    cfg = Config()
    cfg.microsoft.client_id, cfg.microsoft.tenant_id = s.PASSWORD_APP_ID, s.TENANT_ID
    cfg.auth.client_secret = s.SECRET_VALUE
    app = quiet(make_app(path, initial=cfg, stage="ids"))
    async with app.run_test(size=SIZE) as pilot:
        app.config.auth.flow = "password"                  # as chosen on the target screen
        app.goto("ids")
        await pilot.pause()
        await pilot.press("tab", "tab")
        await paste(pilot, s.SERVICE_USER)
        await pilot.press("tab")
        await paste(pilot, s.SERVICE_PASSWORD)
        await goto_next(pilot, "mail")
        assert app.config.auth.client_secret == ""          # the test and the file see one method
        assert app.drafts["auth.client_secret"] == s.SECRET_VALUE   # kept for switching back
        assert not [p for p in __import__("wizard.config.schema", fromlist=["validate"]).validate(app.config)
                    if p.field.startswith("auth.")]
    assert "client_secret" not in config_io.render(app.config)


# -- (f) quitting with unsaved values asks first -----------------------------------

async def test_quit_with_unsaved_values_asks(tmp_path):
    app = make_app(tmp_path / "mw.toml", stage="ids")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "Quit without saving?" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert stage(app) == "ids" and app.is_running
        await pilot.press("ctrl+q", "y")
        await pilot.pause()
    assert app.return_code == 0
    assert not (tmp_path / "mw.toml").exists()


async def test_quit_without_changes_does_not_ask(tmp_path):
    app = make_app(tmp_path / "mw.toml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
    assert app.return_code == 0


# -- starting from an existing file, and the screens at 80x24 -----------------------

async def test_existing_config_is_the_start_and_every_screen_fits(sandbox, tmp_path):
    from wizard.config import files as config_io
    flow = "password"
    path = tmp_path / "mw.toml"
    config_io.save(sandbox.config(flow=flow), path)
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        assert app.config.auth.flow == flow and not app.dirty
        assert_focus_visible(app)
        for expected in ("registration", "ids", "mail"):
            await goto_next(pilot, expected)
        assert app.screen.query_one("#f-outgoing-sender", Input).value == app.config.outgoing.sender
        await pilot.press("ctrl+p")
        await pilot.pause()
        password = app.screen.query_one("#f-auth-password", Input)
        assert password.value and password.password
        assert not app.dirty


# -- the test stays responsive: Escape cancels it ------------------------------------

async def test_escape_cancels_a_running_test(sandbox, tmp_path):
    sandbox.latency = 0.3            # every sandbox answer takes a while
    try:
        app = make_app(tmp_path / "mw.toml", demo=sandbox, initial=sandbox.config(), stage="test")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.screen.running and "Escape" in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            assert not app.screen.running
            assert "Cancelled" in screen_text(app) and not app.tested_ok
            assert any(st.status == "skip" for st in app.screen.steps)
    finally:
        sandbox.latency = 0.0
