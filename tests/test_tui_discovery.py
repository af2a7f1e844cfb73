"""Tenant discovery on the IDs stage: a domain typed in the tenant field becomes
its GUID and cloud, or a clear 'not found'."""

from __future__ import annotations

from textual.widgets import Input

from screens.app import make_app
from tests.test_tui import SIZE, quiet, screen_text
from wizard.sandbox import sample


async def find(sandbox, tmp_path, typed: str):
    cfg = sandbox.config()
    cfg.microsoft.tenant_id = ""
    cfg.microsoft.cloud = "usgov"          # discovery corrects the cloud too
    app = quiet(make_app(tmp_path / "mw.toml", demo=sandbox, initial=cfg, stage="ids"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        box = app.screen.query_one("#f-microsoft-tenant_id", Input)
        box.value = typed
        box.focus()
        await pilot.press("f6")
        await app.workers.wait_for_complete()
        await pilot.pause()
        return box.value, app.config.microsoft.cloud, screen_text(app), list(app.messages)


async def test_domain_becomes_the_tenant_guid_and_cloud(sandbox, tmp_path):
    value, cloud, text, notes = await find(sandbox, tmp_path, sample.DOMAIN)
    assert value == sample.TENANT_ID
    assert cloud == "global"
    assert any(sample.TENANT_ID in n and "Global" in n for n in notes), notes


async def test_unknown_domain_says_so_and_keeps_the_field(sandbox, tmp_path):
    value, cloud, text, notes = await find(sandbox, tmp_path, "fabrikam-unknown.com")
    assert value == "fabrikam-unknown.com"
    assert cloud == "usgov"
    assert any("fabrikam-unknown.com" in n for n in notes), notes
