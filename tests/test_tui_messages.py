"""Messages (Textual's toasts) never cover what the user works on: the sample values
just filled in, the GUID to select after a copy, the field a check refused, the quit
question. The message is on screen, and nothing that takes the focus (or the
dialog) is under it."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from screens.app import make_app
from screens.dialogs.confirm import ConfirmDialog
from screens.dialogs.readback import ReadBackItem
from wizard.config.schema import Config, UserOverride
from wizard.sandbox import sample as s

from test_tui import screen_text
from test_tui_focus_walk import SIZES, on_screen, settle


def message_regions(app):
    """Where messages are drawn over other widgets (Textual's toasts)."""
    from textual.widgets._toast import Toast
    return [toast.region for toast in app.screen.query(Toast) if toast.region.area]


def assert_uncovered(app, *widgets) -> None:
    for widget in widgets:
        assert on_screen(app, widget), f"{widget!r} is off screen:\n{screen_text(app)}"
        for region in message_regions(app):
            assert not region.overlaps(widget.region), \
                f"a message covers {widget!r}:\n{screen_text(app)}"


def flat(app) -> str:
    return " ".join(screen_text(app).split())


sized = pytest.mark.parametrize("size", SIZES, ids=lambda v: f"{v[0]}x{v[1]}")


@sized
async def test_sample_values_message_leaves_the_client_id_free(sandbox, tmp_path, size):
    app = make_app(tmp_path / "mw.toml", demo=sandbox, stage="ids")
    app.keep_secrets = False
    async with app.run_test(size=size, notifications=True) as pilot:   # toasts drawn, as in a terminal
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("enter")                  # the first scenario: a working client secret
        await settle(pilot)
        assert "Sample values filled in" in flat(app)
        field = app.screen.query_one("#f-microsoft-client_id", Input)
        assert app.focused is field and field.value == s.SECRET_APP_ID
        assert_uncovered(app, field, app.screen.query_one("#f-microsoft-client_id-box .field-label"))


@sized
async def test_copy_message_leaves_the_guid_to_select_free(tmp_path, size):
    cfg = Config()
    cfg.microsoft.client_id, cfg.microsoft.tenant_id = s.SECRET_APP_ID, s.TENANT_ID
    app = make_app(tmp_path / "mw.toml", initial=cfg, stage="ids")
    async with app.run_test(size=size, notifications=True) as pilot:   # toasts drawn, as in a terminal
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert "Copied" in flat(app)
        assert_uncovered(app, app.focused)
        assert isinstance(app.focused, ReadBackItem)
        for widget in app.focused.query("*"):
            assert_uncovered(app, widget)


@sized
async def test_refused_user_field_message_leaves_the_field_free(tmp_path, size):
    cfg = Config()
    cfg.users = [UserOverride(name="WEBSHOP", flow="password", username="webshop@contoso.com",
                              password="x"), UserOverride(name="", flow="client_secret")]
    app = make_app(tmp_path / "mw.toml", initial=cfg, stage="mail")
    async with app.run_test(size=size, notifications=True) as pilot:   # toasts drawn, as in a terminal
        await settle(pilot)
        await pilot.press("f7")
        await settle(pilot)
        await pilot.press("escape")                 # the second user has no name: refused
        await settle(pilot)
        field = app.screen.query_one("#f-users-1-name", Input)
        assert app.focused is field
        assert "Give the user's name" in flat(app)
        assert_uncovered(app, field, app.screen.query_one("#f-users-1-name-box .field-msg"))


@sized
async def test_ctrl_c_on_the_quit_question_leaves_the_question_free(tmp_path, size):
    app = make_app(tmp_path / "mw.toml", stage="ids")
    async with app.run_test(size=size, notifications=True) as pilot:   # toasts drawn, as in a terminal
        await settle(pilot)
        app.mark_dirty()
        await pilot.press("ctrl+c")                 # out of habit: it says how to quit
        await settle(pilot)
        assert "press ctrl+q to quit" in flat(app).lower()
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("ctrl+c")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)       # ctrl+c neither quits nor closes it
        dialog = app.screen.query_one("#dialog")
        assert_uncovered(app, dialog, *app.screen.query("Button"))
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmDialog)


async def test_a_refusal_message_goes_when_the_field_is_typed_again(tmp_path):
    cfg = Config()
    cfg.users = [UserOverride(name="", flow="client_secret")]
    app = make_app(tmp_path / "mw.toml", initial=cfg, stage="mail")
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        await pilot.press("f7")
        await settle(pilot)
        await pilot.press("escape")                 # refused: no name
        await settle(pilot)
        assert "not accepted" in flat(app)
        await pilot.press(*"SHOP")
        await settle(pilot)
        assert "not accepted" not in flat(app)
        await pilot.press("escape")
        await settle(pilot)
        assert app.config.users[0].name == "SHOP" and getattr(app.screen, "STAGE", "") == "mail"
