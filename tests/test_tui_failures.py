"""The test screen against the sandbox for each failure the guides meet: the
user sees the code, the cause, the fix and the guide step, never the secret,
and `g` goes back to the screen that holds the field."""

from __future__ import annotations

import pytest

from screens.app import make_app
from tests.test_conntest import CASES
from tests.test_tui import SIZE, quiet, screen_text, stage
from wizard.sandbox import sample

SECRET_ID_CASE = ("secret id pasted", "client_secret", {"client_secret": sample.SECRET_ID}, "config",
                  "secret.id_pasted", "ids")


@pytest.mark.parametrize("flow,overrides,failed,code,screen", [c[1:] for c in [SECRET_ID_CASE, *CASES]],
                         ids=[c[0] for c in [SECRET_ID_CASE, *CASES]])
async def test_test_screen_explains_the_failure(sandbox, tmp_path, flow, overrides, failed, code, screen):
    cfg = sandbox.config(flow=flow, **overrides)
    secrets = [v for v in (cfg.auth.client_secret, cfg.auth.password) if v]
    app = quiet(make_app(tmp_path / "mw.toml", demo=sandbox, initial=cfg, stage="test"))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        failed_step = next(st for st in app.screen.steps if st.status == "fail")
        assert (failed_step.id, failed_step.code) == (failed, code)
        text = screen_text(app)
        for _ in range(30):                      # the failure is scrolled into view
            if f"Code: {code}" in text and "Fix:" in text:
                break
            await pilot.press("down")
            await pilot.pause()
            text = screen_text(app)
        assert f"Code: {code}" in text and "Fix:" in text, (text, app.messages)
        assert failed_step.summary.split()[0] in text
        for secret in secrets:
            assert secret not in text
        if failed == "config" or code.startswith("AADSTS") or code == "claims.roles":
            assert not [r for r in sandbox.requests if r.path.lower().startswith("/ews/")]
        await pilot.press("g")
        await pilot.pause()
        await pilot.pause()
        assert stage(app) == screen
