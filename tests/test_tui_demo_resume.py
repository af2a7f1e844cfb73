"""The demo after "quit and come back": a resumed draft or a reloaded demo.toml
works against the sandbox running now, not the earlier run's (whose port and CA
file are gone), and no message names that earlier run's files."""

from __future__ import annotations

import socket

from screens.app import DemoInfo, make_app
from wizard.config import files
from wizard.sandbox import sample as s

from test_tui import paste, quiet, screen_text, stage
from test_tui_fit import settle


def gone_sandbox(tmp_path) -> dict:
    """An earlier run's sandbox: its port is closed and its folder removed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {"host": "127.0.0.1", "port": port, "base_url": f"https://127.0.0.1:{port}",
            "ca_path": str(tmp_path / "mailwizard-sandbox-gone" / "ca.pem")}


async def run_test_stage(pilot) -> str:
    await pilot.press("ctrl+n")
    await settle(pilot)
    assert stage(pilot.app) == "test", screen_text(pilot.app)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return screen_text(pilot.app)


async def test_resumed_demo_tests_against_the_sandbox_running_now(sandbox, tmp_path):
    path = tmp_path / "demo.toml"
    first = quiet(make_app(path, demo=gone_sandbox(tmp_path), stage="ids"))
    async with first.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")                        # sample values: working client secret
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+n")                    # stage 4 shows (and keeps) server and port
        await settle(pilot)
        assert stage(first) == "mail"
        assert "outgoing.port" in first.drafts
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()

    second = make_app(path, demo=sandbox)
    async with second.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "Continue where you stopped?" in screen_text(second)
        await pilot.press("y")
        await settle(pilot)
        assert "Type again: Client secret" in screen_text(second)
        await paste(pilot, s.SECRET_VALUE)
        await pilot.press("enter")
        await settle(pilot)
        assert stage(second) == "mail"
        text = await run_test_stage(pilot)
        assert second.last_report is not None and second.last_report.ok, text
        assert "refused" not in text
        cfg = second.config
        assert (cfg.outgoing.port, cfg.endpoints.ca_bundle) == (sandbox.port, sandbox.ca_path)


async def test_reloaded_demo_toml_says_nothing_about_the_earlier_sandbox(sandbox, tmp_path):
    path = tmp_path / "demo.toml"
    cfg = sandbox.config()
    DemoInfo.of(gone_sandbox(tmp_path)).apply(cfg)     # as saved by an earlier demo
    files.save(cfg, path)
    assert any(p.field == "endpoints.ca_bundle" for p in files.load_lenient(path)[1])

    app = make_app(path, demo=sandbox, stage="mail")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not any("need attention" in m for m in app.messages), app.messages
        assert "does not exist" not in screen_text(app)
        text = await run_test_stage(pilot)
        assert app.last_report is not None and app.last_report.ok, text


async def test_reloaded_demo_toml_still_reports_its_own_problems(sandbox, tmp_path):
    path = tmp_path / "demo.toml"
    cfg = sandbox.config()
    DemoInfo.of(gone_sandbox(tmp_path)).apply(cfg)
    cfg.outgoing.sender = "not an address"
    files.save(cfg, path)

    app = make_app(path, demo=sandbox, stage="mail")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        said = [m for m in app.messages if "need attention" in m]
        assert len(said) == 1 and "1 value(s)" in said[0] and "[outgoing.sender]" in said[0], said
