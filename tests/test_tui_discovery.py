"""Tenant discovery on the IDs stage: a domain typed in the tenant field becomes
its GUID and cloud, or a clear 'not found'."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from screens.app import make_app
from tests.test_tui import SIZE, quiet, screen_text
from wizard.sandbox import sample


async def find(sandbox, tmp_path, typed: str, *, authority: str | None = None, size=SIZE):
    cfg = sandbox.config()
    cfg.microsoft.tenant_id = ""
    cfg.microsoft.cloud = "usgov"          # discovery corrects the cloud too
    if authority:                          # not the demo (it asks the sandbox): this identity platform
        cfg.endpoints.authority, sandbox = authority, None
    app = quiet(make_app(tmp_path / "mw.toml", demo=sandbox, initial=cfg, stage="ids"))
    async with app.run_test(size=size) as pilot:
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
    assert any(n.startswith("Tenant not found:") and "is unknown" in n for n in notes), notes


@pytest.mark.parametrize("size", [(60, 20), (80, 24)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_unreachable_identity_platform_says_so_with_the_fix(sandbox, tmp_path, size):
    from interop_servers import closed_port
    dead = f"https://127.0.0.1:{closed_port()}"          # nothing listens: as without a network
    value, cloud, text, notes = await find(sandbox, tmp_path, "contoso.com", authority=dead, size=size)
    assert value == "contoso.com" and cloud == "usgov"
    note = notes[-1]
    assert note.startswith("Identity platform not reached:") and "refused" in note, notes
    assert "not found" not in note.lower() and "ConnectionError" not in note
    assert "HTTPS_PROXY" in note
    flat = " ".join(text.split())
    assert "(e.g. http://proxy.example.com:8080)." in flat and "…" not in flat   # whole, not cut off
