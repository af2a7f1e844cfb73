"""Show plain (p): the text comes out exactly as it is, so a long value (the ESM
authorize endpoint, the scopes) or a runbook command is copied whole and runnable."""

from __future__ import annotations

import contextlib
import io

import pytest

from screens import clipboard
from screens.app import make_app
from screens.clipboard import PlainTextScreen, TextViewScreen
from wizard.config.schema import Config
from wizard.sandbox import sample as s

from test_tui import screen_text
from test_tui_focus_walk import SIZES, settle


def esm_config() -> Config:
    cfg = Config()
    cfg.system, cfg.auth.flow = "efecte_esm", "password"
    cfg.microsoft.client_id, cfg.microsoft.tenant_id = s.PASSWORD_APP_ID, s.TENANT_ID
    cfg.auth.username, cfg.auth.password = s.SERVICE_USER, s.SERVICE_PASSWORD
    cfg.outgoing.protocol, cfg.outgoing.server, cfg.outgoing.port = "smtp", "smtp.office365.com", 587
    cfg.incoming.protocol = "imap"
    cfg.outgoing.sender = s.SENDER
    return cfg


LONG = ("mail.oauth.authorize.endpoint", "mail.oauth.scopes", "Get-CASMailbox")


async def open_plain(pilot, action: str) -> str:
    app = pilot.app
    getattr(app, f"action_{action}")()
    await settle(pilot)
    assert isinstance(app.screen, TextViewScreen)
    text = app.screen.text
    assert any(len(line) > 80 and any(k in line for k in LONG) for line in text.splitlines()), \
        "the example needs lines longer than the terminal"
    await pilot.press("p")
    await settle(pilot)
    return text


@pytest.mark.parametrize("action", ["runbook", "settings_sheet"])
async def test_plain_in_a_terminal_prints_every_line_whole(tmp_path, monkeypatch, action):
    """In a terminal the wizard steps aside and prints the text itself: the terminal
    wraps long lines softly and copies each back as one line."""
    out, keys = io.StringIO(), io.StringIO("\n")
    monkeypatch.setattr(clipboard, "can_suspend", lambda app: True)
    monkeypatch.setattr(clipboard, "terminal_streams", lambda: (out, keys))
    app = make_app(tmp_path / "mw.toml", initial=esm_config(), stage="mail")
    monkeypatch.setattr(type(app), "suspend", lambda self: contextlib.nullcontext())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = await open_plain(pilot, action)
        printed = out.getvalue().splitlines()
        for line in text.splitlines():
            assert line in printed, f"broken or missing: {line!r}"
        assert printed[:len(text.splitlines())] == text.splitlines()   # nothing added inside
        assert "Press Enter to go back" in out.getvalue()
        assert keys.read() == ""                                    # it waited for Enter
        assert isinstance(app.screen, TextViewScreen)               # and went back
        assert s.SERVICE_PASSWORD not in out.getvalue()


@pytest.mark.parametrize("size", SIZES, ids=lambda v: f"{v[0]}x{v[1]}")
async def test_plain_view_inside_the_wizard_never_wraps_a_line(tmp_path, size):
    """Where the wizard cannot step aside, its own plain view draws each line on one
    row (wider ones scroll sideways): a wrapped row would be copied as two lines."""
    app = make_app(tmp_path / "mw.toml", initial=esm_config(), stage="mail")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        text = await open_plain(pilot, "runbook")
        assert isinstance(app.screen, PlainTextScreen)
        lines = text.splitlines()
        plain = app.screen.query_one("#plain-text")
        assert plain.virtual_region.height == len(text.split("\n"))      # one row a line
        box = app.screen.query_one("#plain")
        area = box.scrollable_content_region
        rows = screen_text(app).splitlines()[area.y:area.bottom]
        assert len(rows) == area.height > 5
        for row, line in zip(rows, lines):
            assert row[area.x:area.right].rstrip() == line[:area.width].rstrip(), (row, line)
        assert app.focused is box and box.max_scroll_x > 0
        await pilot.press("end", "right", "right")                 # the rest of a long line
        await settle(pilot)
        assert box.scroll_x > 0
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, TextViewScreen)
