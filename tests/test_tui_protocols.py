"""The wizard's protocol choice, recommender, per-user settings and the flows beyond
the guides, driven by keys at 80x24."""

from __future__ import annotations

import stat

import pytest

from textual.widgets import Input

from screens.app import make_app
from wizard.config.files import standard_toml
from test_tui import SIZE, assert_focus_visible, paste, screen_text, stage, tab_to

tomllib = standard_toml()   # tomli before Python 3.11


def quiet(app):
    """Answer the drafts' secrets question up front (tested in test_tui)."""
    app.keep_secrets = False
    return app


async def until(pilot, condition, frames: int = 100) -> None:
    """Let the app run frame by frame until ``condition()`` holds (a bound, not a pace: on a
    loaded machine the panel mounts some frames later)."""
    for _ in range(frames):
        if condition():
            return
        await pilot.pause()
    assert condition()


def shown(app, selector: str) -> str:
    """The text of a widget if it is displayed, else ''."""
    found = app.screen.query(selector)
    return str(found.first().render()) if found and found.first().display else ""


async def choose(pilot, radio_set: str, downs: int) -> None:
    await tab_to(pilot, radio_set)
    await pilot.press(*["down"] * downs, "space")
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()    # a new system's defaults are applied by a worker
    await pilot.pause()


async def test_efecte_preselects_smtp_imap_and_password(tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml"))
    async with app.run_test(size=SIZE) as pilot:
        await choose(pilot, "system", 1)                        # Efecte ESM
        cfg = app.config
        assert cfg.system == "efecte_esm" and cfg.auth.flow == "password"
        assert (cfg.outgoing.protocol, cfg.incoming.protocol) == ("smtp", "imap")
        assert app.screen.query_one("#proto-smtp_imap").value
        assert app.focused.id == "system"
        assert_focus_visible(app)
        assert "Guide 004" in str(app.screen.query_one("#steps Static").render())
        assert not shown(app, "#ews-status") and not shown(app, "#password-advice")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert stage(app) == "registration"
        perms = shown(app, "#permissions")
        assert "SMTP.Send" in perms and "IMAP.AccessAsUser.All" in perms and "add by hand" in perms
        assert "Guide 004" in str(app.screen.query_one("#steps Static").render())
        app.goto("mail")
        await pilot.pause()
        values = {i.id: i.value for i in app.screen.query(Input)}
        assert values["f-outgoing-server"] == "smtp.office365.com" and values["f-outgoing-port"] == "587"
        assert values["f-incoming-server"] == "outlook.office365.com" and values["f-incoming-port"] == "993"
        assert "STARTTLS" in " ".join(str(w.render()) for w in app.screen.query(".field-help"))


async def test_ews_shows_retirement_and_on_premises_removes_it(tmp_path):
    app = make_app(tmp_path / "mw.toml")                       # Monitor G5: EWS preselected
    async with app.run_test(size=SIZE) as pilot:
        assert app.config.outgoing.protocol == "ews"
        assert "EWS retirement" in shown(app, "#ews-status") and "2027" in shown(app, "#ews-status")
        await tab_to(pilot, "on-prem")
        assert_focus_visible(app)
        await pilot.press("space")
        await pilot.pause()
        assert app.config.microsoft.exchange == "on_premises"
        assert not shown(app, "#ews-status")
        await pilot.press("space")
        await pilot.pause()
        assert app.config.microsoft.exchange == "online" and shown(app, "#ews-status")


async def test_recommender_picks_certificate_and_graph_for_app_only_generic(tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml"))
    async with app.run_test(size=SIZE) as pilot:
        await choose(pilot, "system", 2)                        # another system: Graph + client secret
        assert (app.config.outgoing.protocol, app.config.auth.flow) == ("graph", "client_secret")
        await pilot.press("f5")
        await pilot.pause()
        assert "Help me choose" in screen_text(app)
        assert "Certificate" in shown(app, "#rec-result") and "Microsoft Graph" in shown(app, "#rec-result")
        await pilot.press("u")
        await pilot.pause()
        await pilot.pause()
        assert stage(app) == "target"
        assert (app.config.auth.flow, app.config.outgoing.protocol) == ("certificate", "graph")
        assert app.screen.query_one("#flow-certificate").value
        assert app.focused.id == "flow"
        assert_focus_visible(app)
        app.goto("mail")
        await pilot.pause()
        assert "graph.microsoft.com" in shown(app, "#graph-note")
        assert not app.screen.query("#f-outgoing-server")


async def test_password_against_advice_is_warned(tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml"))
    async with app.run_test(size=SIZE) as pilot:
        assert not shown(app, "#password-advice")
        await choose(pilot, "flow", 1)                          # user name & password on Monitor G5
        assert app.config.auth.flow == "password"
        warning = shown(app, "#password-advice")
        assert "against the advice" in warning and "MFA" in warning
        await pilot.press("up", "space")
        await pilot.pause()
        assert app.config.auth.flow == "client_secret" and not shown(app, "#password-advice")


async def test_user_override_added_in_the_tui_is_saved(sandbox, tmp_path):
    path = tmp_path / "mw.toml"
    app = quiet(make_app(path, demo=sandbox, initial=sandbox.config(), stage="mail"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f7")
        await pilot.pause()
        await pilot.press("f5")
        await pilot.pause()
        assert app.focused.id == "f-users-0-name"
        await paste(pilot, "WEBSHOP")
        await pilot.press("tab", "tab")                         # past the e-mail method
        await paste(pilot, "webshop@contoso.com")
        await pilot.press("escape")                             # refused: the password is missing
        await pilot.pause()
        assert app.focused.id == "f-users-0-password"
        await paste(pilot, "Webshop-Passw0rd!")
        assert "Webshop-Passw0rd!" not in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert stage(app) == "mail" and "1 user(s)" in shown(app, "#users-line")
        app.tested_ok = True                                    # the test stage is covered elsewhere
        app.goto("save")
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
    data = tomllib.loads(path.read_text())
    assert data["users"] == [{"name": "WEBSHOP", "flow": "password", "username": "webshop@contoso.com",
                              "password": "Webshop-Passw0rd!"}]


async def test_certificate_created_from_the_ids_stage(tmp_path):
    from wizard.config.schema import Config
    cfg = Config()
    cfg.auth.flow = "certificate"
    app = quiet(make_app(tmp_path / "cfg" / "mw.toml", initial=cfg, stage="ids"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f8")
        await pilot.pause()
        auth = app.config.auth
        key = tmp_path / "cfg" / "mailwizard-key.pem"
        assert auth.certificate == str(key) and len(auth.thumbprint) == 40 and auth.certificate_expires
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and (tmp_path / "cfg" / "mailwizard.cer").exists()
        assert "Upload" in shown(app, "#cert-result") and "Certificates & secrets" in shown(app, "#cert-result")
        assert app.screen.query_one("#f-auth-thumbprint", Input).value == auth.thumbprint


async def test_device_code_shows_url_and_code_and_cancels(sandbox, tmp_path):
    from wizard.sandbox.device import device_code_config
    app = quiet(make_app(tmp_path / "mw.toml", demo=sandbox, initial=device_code_config(sandbox), stage="ids"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f9", "f9")                           # start, and cancel before the first wait
        await app.workers.wait_for_complete()
        await pilot.pause()
        code = sandbox.device.last
        box = shown(app, "#device-code")
        assert "/devicelogin" in box and " ".join(code[:3]) in box
        assert "Cancelled" in shown(app, "#device-status")


async def test_help_me_choose_as_the_first_key_before_the_protocol_panel_is_mounted(tmp_path):
    """The protocol panel is mounted right after the target stage's first frame; F5 typed
    ahead must not depend on it, and the panel then shows the choice made."""
    from screens.widgets.protocols import PROTOCOL_KEYS, protocol_choice
    from screens.widgets.protocols import ProtocolPanel
    app = quiet(make_app(tmp_path / "mw.toml", stage="registration"))
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_screen(app.make_screen("target"))
        # Usually the panel is not mounted yet here (it comes after the first frame); a loaded
        # machine may have painted that frame already: F5 must work either way.
        app.screen.action_help_choose()
        await until(pilot, lambda: "Help me choose" in screen_text(app))
        await pilot.press("u")
        await until(pilot, lambda: stage(app) == "target" and app.screen.query(ProtocolPanel)
                    and app.screen.query("#help-choose"))
        chosen = PROTOCOL_KEYS[protocol_choice(app.config)]
        assert app.screen.query_one(f"#proto-{chosen}").value
        assert app.screen.query_one(f"#flow-{app.config.auth.flow}").value
        assert app.screen.query_one("#help-choose")


@pytest.mark.parametrize("size", [(60, 20), (80, 24)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_cloud_is_chosen_on_stage_1_and_moves_the_endpoints(tmp_path, size):
    from wizard.config.clouds import resolve
    app = quiet(make_app(tmp_path / "mw.toml"))               # global, EWS
    async with app.run_test(size=size) as pilot:
        await choose(pilot, "cloud", 1)                         # the second: US Government GCC High
        assert_focus_visible(app)
        assert "Microsoft cloud" in screen_text(app) and "US Government GCC High" in screen_text(app)
        cfg = app.config
        assert cfg.microsoft.cloud == "usgov"
        ends = resolve(cfg)
        assert ends.authority == "https://login.microsoftonline.us" and ends.graph_url == "https://graph.microsoft.us"
        assert cfg.outgoing.server == "outlook.office365.us"    # EWS moved with the cloud
        await choose(pilot, "protocol", 2)                      # SMTP + IMAP: this cloud's servers
        assert (cfg.outgoing.server, cfg.incoming.server) == ("smtp.office365.us", "outlook.office365.us")
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("ctrl+b")                             # back: the choice is shown again
        await until(pilot, lambda: bool(app.screen.query("#cloud-usgov")))
        assert app.screen.query_one("#cloud-usgov").value and not app.screen.query_one("#cloud-global").value
