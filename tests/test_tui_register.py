"""Stage 2's "Let the wizard do it" at 80x24: an admin's device-code sign-in,
the registration through Graph, the config written and tested, stage 3 filled."""

from __future__ import annotations

from screens.app import make_app
from wizard.config.files import load
from wizard.sandbox import sample
from test_tui import SIZE, screen_text, stage


async def _run(pilot, app):
    await pilot.press("w")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


async def test_let_the_wizard_do_it_registers_tests_and_fills_stage_3(sandbox, tmp_path):
    sandbox.device.auto_approve = (sample.ADMIN_USER, 0.0)
    path = tmp_path / "mw.toml"
    cfg = sample.unregistered_config(sandbox, "monitor_g5", "client_secret", "ews")
    app = make_app(path, demo=sandbox, initial=cfg, stage="registration")
    app.keep_secrets = False
    async with app.run_test(size=SIZE) as pilot:
        assert stage(app) == "registration" and "let the wizard do" in screen_text(app).lower()
        await _run(pilot, app)
        text = screen_text(app)
        assert "Registered and tested" in text, text
        lines = "\n".join(app.screen.lines)
        assert "app: created" in lines and "check: passed" in lines and "Beyond Graph" in lines
        assert app.config.microsoft.client_id and app.config.microsoft.tenant_id == sample.TENANT_ID
        assert app.config.auth.client_secret[3:6] == "8Q~"
        assert app.config.auth.client_secret not in text          # never shown
        await pilot.press("escape")
        await pilot.pause()
        assert stage(app) == "registration"
    saved = load(path, strict=False)
    assert saved.microsoft.client_id == app.config.microsoft.client_id


async def test_let_the_wizard_do_it_shows_a_refusal(sandbox, tmp_path):
    sandbox.device.auto_approve = (sample.SERVICE_USER, 0.0)       # no admin
    path = tmp_path / "mw.toml"
    cfg = sample.unregistered_config(sandbox, "monitor_g5", "client_secret", "ews")
    app = make_app(path, demo=sandbox, initial=cfg, stage="registration")
    app.keep_secrets = False
    async with app.run_test(size=SIZE) as pilot:
        await _run(pilot, app)
        text = screen_text(app)
        assert "AADSTS90094" in text and "Close (Esc)" in text
        assert not app.config.microsoft.client_id
        await pilot.press("escape")
        await pilot.pause()
        assert stage(app) == "registration"


async def test_at_stage_2_of_a_new_config_it_registers_and_leaves_the_test_to_stage_5(sandbox, tmp_path):
    """A first-time user at stage 2 has no mail settings yet: the registration is done and saved,
    and the test waits for stage 5 (it used to run, fail on the empty sender, and tick it)."""
    sandbox.device.auto_approve = (sample.ADMIN_USER, 0.0)
    path = tmp_path / "mw.toml"
    cfg = sample.unregistered_config(sandbox, "monitor_g5", "client_secret", "ews")
    cfg.outgoing.sender = cfg.outgoing.test_recipient = ""
    app = make_app(path, demo=sandbox, initial=cfg, stage="registration")
    app.keep_secrets = False
    async with app.run_test(size=SIZE) as pilot:
        await _run(pilot, app)
        text = screen_text(app)
        lines = "\n".join(app.screen.lines)
        assert "✔ Registered:" in text and "stage 5" in text and "Not finished" not in text, text
        assert "check" not in lines and "secret: added" in lines
        assert app.config.microsoft.client_id and app.config.auth.client_secret


def test_a_failed_step_is_marked_failed_not_ticked(sandbox, tmp_path, capsys):
    """`register` prints each action as it is done: a failed one with a cross."""
    from wizard.cli.main import main
    from wizard.config.files import save
    sandbox.device.auto_approve = (sample.ADMIN_USER, 0.0)
    cfg = sample.unregistered_config(sandbox, "monitor_g5", "client_secret", "ews")
    cfg.outgoing.sender = ""
    path = save(cfg, tmp_path / "mw.toml")
    rc = main(["register", "--config", str(path)])
    progress = capsys.readouterr().err          # one line per action as it is done
    assert rc == 1
    assert "✗ check: failed" in progress and "✓ check: failed" not in progress, progress


async def test_the_admins_sign_in_code_fits_60_columns(sandbox, tmp_path):
    """At 60x20 the dialog and the framed device-code instructions fit the screen (the dialog was 76
    columns wide and drew the frame 72 wide: cut off on the right, the URL and the code among it)."""
    import asyncio

    from textual.widgets import Static
    sandbox.device.auto_approve = (sample.ADMIN_USER, 30.0)       # the code stays on screen meanwhile
    cfg = sample.unregistered_config(sandbox, "monitor_g5", "client_secret", "ews")
    app = make_app(tmp_path / "mw.toml", demo=sandbox, initial=cfg, stage="registration")
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("w")
        for _ in range(200):
            await pilot.pause()
            boxes = app.screen.query("#register-code")
            if boxes and boxes.first().display and str(boxes.first(Static).render()).strip():
                break
            await asyncio.sleep(0.02)
        box = app.screen.query_one("#register-code", Static)
        dialog = app.screen.query_one("#dialog")
        assert dialog.region.right <= 60 and dialog.region.x >= 0
        lines = str(box.render()).splitlines()
        assert lines and max(len(line) for line in lines) <= box.content_size.width, lines
        assert any("microsoft.com/devicelogin" in line or "/devicelogin" in line for line in lines)
        app.screen.cancel.set()
        await pilot.press("escape")
        await app.workers.wait_for_complete()
