"""The per-user settings (stage 4, F7: the WEBSHOP user of guide 003)."""

from __future__ import annotations

import pytest

from screens.app import make_app
from screens.dialogs.confirm import ConfirmDialog
from wizard.config.schema import Config, UserOverride

from test_tui import screen_text
from test_tui_focus_walk import SIZES, on_screen, settle


def two_users() -> Config:
    cfg = Config()
    cfg.users = [UserOverride(name="WEBSHOP", flow="password", username="webshop@contoso.com",
                              password="pw-of-webshop"),
                 UserOverride(name="SALES", flow="client_secret")]
    return cfg


@pytest.mark.parametrize("size", SIZES, ids=lambda v: f"{v[0]}x{v[1]}")
async def test_f6_and_the_remove_button_ask_before_removing_a_user(tmp_path, size):
    app = make_app(tmp_path / "mw.toml", initial=two_users(), stage="mail")
    app.keep_secrets = False
    async with app.run_test(size=size) as pilot:
        await pilot.press("f7")
        await settle(pilot)
        assert app.focused.id == "f-users-0-name"
        await pilot.press("f6")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert "WEBSHOP" in screen_text(app)
        assert app.focused.id == "no"                      # Enter keeps the user
        await pilot.press("enter")
        await settle(pilot)
        assert [u.name for u in app.config.users] == ["WEBSHOP", "SALES"]
        await pilot.press("f6")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert [u.name for u in app.config.users] == ["SALES"]
        # the button asks too
        button = app.screen.query_one("#remove-user-0")
        button.focus()
        await settle(pilot)
        assert on_screen(app, button)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog) and "SALES" in screen_text(app)
        await pilot.press("escape")                        # Escape never removes
        await settle(pilot)
        assert [u.name for u in app.config.users] == ["SALES"]


@pytest.mark.parametrize("size", SIZES, ids=lambda v: f"{v[0]}x{v[1]}")
async def test_typing_in_the_last_user_field_shows_it_and_its_error(tmp_path, size):
    """At 60x20 the password typed went into a field below the screen's edge."""
    app = make_app(tmp_path / "mw.toml", initial=two_users(), stage="mail")
    async with app.run_test(size=size) as pilot:
        await pilot.press("f7")
        await settle(pilot)
        sender = app.screen.query_one("#f-users-1-sender")
        sender.focus()
        await settle(pilot)
        await pilot.press(*"not-an-address")
        await settle(pilot)
        message = app.screen.query_one("#f-users-1-sender-box .field-msg")
        assert on_screen(app, sender) and on_screen(app, message), screen_text(app)
        assert "not-an-address" in screen_text(app)


@pytest.mark.parametrize("size", SIZES, ids=lambda v: f"{v[0]}x{v[1]}")
async def test_going_to_a_users_field_opens_f7_on_that_user(tmp_path, size):
    """A failed user:NAME step names users[n].<field>: stage 4 opens the F7 dialog there.
    A user name the user's method hides leads to the method (E-mail method)."""
    from screens.dialogs.users import UsersScreen
    app = make_app(tmp_path / "mw.toml", initial=two_users(), stage="ids")
    app.keep_secrets = False
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for key, focused in (("users[1].username", "user-1-flow"), ("users[0].password", "f-users-0-password")):
            app.goto("mail", focus=key)
            await settle(pilot)
            await settle(pilot)
            assert isinstance(app.screen, UsersScreen) and app.focused.id == focused, (key, app.focused)
            for _ in range(100):                       # scrolled into view after a refresh (slow under load)
                if on_screen(app, app.focused):
                    break
                await pilot.pause()
            assert on_screen(app, app.focused), (key, app.focused.region)
            await pilot.press("escape")
            await settle(pilot)
            assert app.screen.STAGE == "mail" and app.focused.id == "users-button"
