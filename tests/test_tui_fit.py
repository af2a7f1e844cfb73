"""The wizard on small terminals and support calls: every screen fits 60x20 and
80x24, NO_COLOR paints no colour, a killed wizard resumes, read-back, help,
command palette and themes.

Layout is checked on the rendered screen (widget regions against the visible
area, and the screen's text), not with SVG snapshots: those change with every
guide text edit and would be regenerated rather than read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from textual.widgets import Input

from screens.app import make_app
from screens.dialogs.confirm import ConfirmDialog
from screens.dialogs.help import HelpScreen, binding_rows
from screens.widgets.keybar import KeyBar, pack, screen_keys
from screens.dialogs.readback import ReadBackScreen
from screens.widgets.fields import CheckedField
from wizard.config import drafts
from wizard.guide import readback
from wizard.config.schema import Config, IncomingAccount, to_dict
from wizard.sandbox import sample as s

from test_tui import paste, screen_text, stage

SIZES = [(60, 20), (80, 24)]


def visible(app, widget) -> bool:
    """The widget is entirely inside the area its scrolling parents show."""
    geometry = app.screen.find_widget(widget)
    return (geometry.clip.contains_region(geometry.region)
            and app.screen.region.contains_region(geometry.region))


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.pause()   # focus scrolling happens after the next refresh


# -- every screen fits ---------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_screen_fits(sandbox, tmp_path, size):
    cfg = sandbox.config()
    cfg.incoming.accounts = [IncomingAccount(address=s.INCOMING[0], types=["CRM"])]
    app = make_app(tmp_path / "mw.toml", demo=sandbox, initial=cfg)
    app.keep_secrets = False
    app.animation_level = "none"        # scrolling jumps instead of gliding: same end, sooner
    async with app.run_test(size=size) as pilot:
        for name in ("target", "registration", "ids", "mail", "test", "save"):
            if name != "target":
                app.goto(name)
            await settle(pilot)
            if name == "test":
                await app.workers.wait_for_complete()
                await pilot.pause()
            screen = app.screen
            assert stage(app) == name
            body = screen.query_one("#body")
            assert body.max_scroll_x == 0, f"{name} scrolls sideways at {size}"
            for box in screen.query(CheckedField):
                if not box.display:
                    continue
                box.input.focus()
                await settle(pilot)
                label = box.query_one(".field-label")
                assert visible(app, box.input) and visible(app, label), \
                    f"{box.label} on {name} at {size} is cut off:\n{screen_text(app)}"
                assert box.label in screen_text(app)
            for widget in screen.focus_chain if size == SIZES[0] else ():   # lists, buttons, scroll areas
                if isinstance(widget, Input):
                    continue
                widget.focus()
                await settle(pilot)
                assert visible(app, widget) or widget.size.height > body.size.height, \
                    f"{widget!r} on {name} at {size} is cut off:\n{screen_text(app)}"
            # every key of the screen is in the key bar, whatever the width
            bar = str(screen.query_one(KeyBar).render())
            for key, desc, _ in screen_keys(screen):
                assert f"{key} {desc}" in bar, f"{key} {desc} missing on {name} at {size}"
            assert visible(app, screen.query_one(KeyBar))


def test_key_bar_wraps_without_splitting_a_key():
    items = [("^n", "Next"), ("^p", "Back"), ("F3", "Read back"), ("c", "Copy manifest")]
    lines = pack(items, 20)
    assert lines == [[("^n", "Next"), ("^p", "Back")], [("F3", "Read back")], [("c", "Copy manifest")]]
    assert pack(items, 200) == [items]


# -- NO_COLOR -------------------------------------------------------------------------------

async def test_no_color_paints_without_colour(monkeypatch, tmp_path):
    monkeypatch.setenv("NO_COLOR", "1")
    cfg = Config()
    cfg.microsoft.client_id = s.SECRET_APP_ID
    app = make_app(tmp_path / "mw.toml", initial=cfg, stage="ids")
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("x")                       # an error message under the field
        await settle(pilot)
        coloured = set()
        for strip in app.screen._compositor.render_strips():
            for segment in strip:
                style = segment.style
                if style is None:
                    continue
                for colour in (style.color, style.bgcolor):
                    if colour is not None and not colour.is_default:
                        coloured.add((segment.text, str(colour)))
        assert not coloured, sorted(coloured)[:5]
        assert "✘ Error" in screen_text(app)         # state by symbol and word


# -- resume after a kill ---------------------------------------------------------------------

async def test_resume_after_kill_restores_every_value_and_the_stage(tmp_path):
    path = tmp_path / "mw.toml"
    first = make_app(path)
    async with first.run_test(size=(80, 24)) as pilot:
        first.screen.query_one("#flow").focus()
        await pilot.press("down", "space")            # user name & password
        await pilot.press("ctrl+n")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert stage(first) == "ids"
        await paste(pilot, s.PASSWORD_APP_ID)
        await pilot.press("tab")
        await paste(pilot, "5f8d 2c1a")                # half typed: kept as typed
        await pilot.press("tab")
        await paste(pilot, s.SERVICE_USER)
        await pilot.press("tab")
        await paste(pilot, s.SERVICE_PASSWORD)
        await pilot.press("tab")                       # leaving the password asks once
        await pilot.pause()
        assert isinstance(first.screen, ConfirmDialog)
        await pilot.press("n")                         # secrets stay out of the draft
        await pilot.pause()
        first.screen.query_one("#f-microsoft-tenant_id", Input).value = s.TENANT_ID
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert stage(first) == "mail"
        sender = first.screen.query_one("#f-outgoing-sender", Input)
        sender.focus()
        await settle(pilot)
        assert first.focused is sender
        await paste(pilot, s.SENDER)
        await pilot.press("f5")                        # an incoming account
        await settle(pilot)
        await paste(pilot, s.INCOMING[0])
        await pilot.press("tab")                       # leaving a field writes the draft now
        await pilot.pause()
        assert first.config.outgoing.sender == s.SENDER, screen_text(first)
        before = to_dict(first.config)
        raw_before = dict(first.drafts)
    # the app ended without quitting or saving: like a dropped SSH session
    on_disk = drafts.draft_path(path).read_text()
    assert s.SERVICE_PASSWORD not in on_disk and not path.exists()

    second = make_app(path)
    async with second.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(second)
        assert "Continue where you stopped?" in text and "stage 4/6" in text
        await pilot.press("enter")                     # Continue is the default
        await settle(pilot)
        assert "Type again: Password" in screen_text(second)
        await paste(pilot, s.SERVICE_PASSWORD)
        await pilot.press("enter")
        await settle(pilot)
        assert stage(second) == "mail"
        assert to_dict(second.config) == before
        assert {k: v for k, v in second.drafts.items() if k != "auth.password"} == \
            {k: v for k, v in raw_before.items() if k != "auth.password"}
        assert second.screen.query_one("#f-outgoing-sender", Input).value == s.SENDER
        assert second.screen.query_one("#f-incoming-accounts-0-address", Input).value == s.INCOMING[0]
        second.goto("save")
        await settle(pilot)
        second.screen.write()                          # saving removes the draft
        assert drafts.load_draft(path) is None and path.exists()


# -- read-back --------------------------------------------------------------------------------

async def test_read_back_view_groups_check_letter_spelling_and_copy(tmp_path):
    cfg = Config()
    cfg.microsoft.client_id, cfg.microsoft.tenant_id = s.SECRET_APP_ID, s.TENANT_ID
    app = make_app(tmp_path / "mw.toml", initial=cfg, stage="ids")
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        assert isinstance(app.focused, Input)
        await pilot.press("f3")                        # works while a field has focus
        await settle(pilot)
        assert isinstance(app.screen, ReadBackScreen)
        text = screen_text(app)
        check = readback.check_char(s.SECRET_APP_ID)
        assert "  ".join(readback.groups(s.SECRET_APP_ID)[:4]) in text
        assert f"check {check} ({readback.NATO[check.lower()]})" in text
        assert app.screen.query("Digits")              # the groups drawn large
        await pilot.press("n")
        await pilot.pause()
        first = readback.groups(s.SECRET_APP_ID)[0]
        spelled = ", ".join(w.split(" ", 1)[1] for w in readback.spell(first))
        assert spelled in screen_text(app)
        await pilot.press("c")
        assert app.clipboard == s.SECRET_APP_ID
        await pilot.press("escape")
        await pilot.pause()
        assert stage(app) == "ids"
        # the listener types it back in groups with the check letter
        field = app.screen.query_one("#f-microsoft-client_id", Input)
        field.focus()
        field.value = ""
        await paste(pilot, " ".join(readback.groups(s.SECRET_APP_ID)) + f" {check}")
        text = screen_text(app)
        assert f"read back with check letter {check}: it matches" in text
        assert f"kept as {s.SECRET_APP_ID}" in text
        assert app.config.microsoft.client_id == s.SECRET_APP_ID


@settings(max_examples=60, deadline=None)
@given(st.uuids())
def test_id_fields_accept_any_read_back_form(uuid):
    from screens.ids import accepts_readback
    from wizard.config.fields import check_client_id
    guid = str(uuid)
    check = accepts_readback(check_client_id)
    letter = readback.check_char(guid)
    for typed in (" ".join(readback.groups(guid)), "-".join(readback.groups(guid)).upper(),
                  " ".join(readback.groups(guid)) + f" check {letter.lower()}"):
        assert check(typed).value == guid, typed
    wrong = next(c for c in readback.CHECK_ALPHABET if c != letter)
    assert check(" ".join(readback.groups(guid)) + f" {wrong}").error


# -- help, palette, theme ------------------------------------------------------------------------

async def test_help_lists_every_binding_and_palette_has_the_actions(tmp_path):
    app = make_app(tmp_path / "mw.toml", stage="ids")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        under = app.screen
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        rows = binding_rows(app, under)
        for active in under.active_bindings.values():   # every screen and app binding
            if active.binding.description and active.node in (app, under):
                assert active.binding.description in text, active.binding
        assert all(keys in text for keys, _ in rows)
        assert "In the guide: Guide 00" in text       # the guide's step numbers
        await pilot.press("escape")
        await pilot.pause()
        # '?' types into a field, and opens help elsewhere
        await pilot.press("question_mark")
        assert app.focused.value.endswith("?") and not isinstance(app.screen, HelpScreen)
        app.screen.query_one("#body").focus()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()

        from screens.commands import WizardCommands
        provider = WizardCommands(app.screen)
        names = [hit.display async for hit in provider.discover()]
        for wanted in ("Next", "Back", "Run test", "Save", "Read back", "Copy manifest",
                       "Toggle theme", "Help", "Settings sheet", "Admin runbook"):
            assert wanted in names
        theme = app.theme
        await pilot.press("f4")
        assert app.theme != theme and {app.theme, theme} == {"textual-dark", "textual-light"}
        await pilot.press("ctrl+o")                    # the palette runs an action by name
        await settle(pilot)
        await pilot.press(*"read back")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReadBackScreen)
        await pilot.press("escape")
        await pilot.pause()
        app.action_settings_sheet()                    # copy out: the settings sheet
        await settle(pilot)
        from screens.clipboard import TextViewScreen
        assert isinstance(app.screen, TextViewScreen) and "Settings sheet" in screen_text(app)
        await pilot.press("c")
        assert app.clipboard == app.screen.text and "Server address" in app.clipboard


def test_osc52_inside_gnu_screen_is_wrapped_in_pieces():
    import base64
    from screens.clipboard import in_gnu_screen, osc52
    text = "x" * 200
    plain = osc52(text)
    assert plain == "\x1b]52;c;" + base64.b64encode(text.encode()).decode() + "\a"
    wrapped = osc52(text, gnu_screen=True)
    assert wrapped.startswith("\x1bP\x1b]52;c;") and wrapped.endswith("\x07\x1b\\")
    pieces = wrapped.split("\x1b\\\x1bP")
    assert len(pieces) > 1 and all(len(p) < 100 for p in pieces)
    assert "".join(p.removeprefix("\x1bP\x1b]52;c;").removesuffix("\x07\x1b\\") for p in pieces) == \
        base64.b64encode(text.encode()).decode()
    assert in_gnu_screen({"STY": "1.pts"}) and in_gnu_screen({"STY": "1", "TMUX": "x"})
    assert not in_gnu_screen({"TMUX": "x"}) and not in_gnu_screen({})


def test_guide_step_numbers_are_summarised():
    from types import SimpleNamespace as N
    from screens.guide_data import step_refs
    steps = [N(guide="001", section="Azure", n=n, item=False) for n in (9, 20, 21, 22)]
    steps.append(N(guide="003", section="Users", n=1, item=True))
    assert step_refs(steps) == "Guide 001: Azure steps 9, 20-22; Guide 003: Users item 1"


# -- start in a terminal -----------------------------------------------------------------

async def test_terminal_start_shows_the_whole_first_stage_then_its_choices(tmp_path, monkeypatch):
    """In a terminal the first stage is built after the app's start-up (so its first
    refresh is painted) and its choices, below the fold, follow a frame later: the
    stage must then be complete and work from the keyboard as usual."""
    from screens.app import WizardApp
    monkeypatch.setattr(WizardApp, "is_headless", property(lambda self: False))
    monkeypatch.setattr(WizardApp, "freeze_startup_objects", staticmethod(lambda: None))   # test process
    monkeypatch.setattr(WizardApp, "terminal_present", staticmethod(lambda: True))   # or it ends in 1 s
    app = make_app(tmp_path / "mw.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert stage(app) == "target"
        text = screen_text(app)
        assert "Stage 1/6" in text and "System to connect" in text     # the choices, at once
        assert app.screen.query_one("#system-monitor_g5").value        # the choices are there
        assert app.screen.query_one("#flow-client_secret").value
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert stage(app) == "registration"


def test_garbage_collection_is_back_on_once_the_first_screen_is_painted():
    """The command line starts the wizard with collection off; the first screen's
    hook must switch it back on, or a long session would keep every cycle."""
    import gc
    from screens.app import WizardApp
    thresholds = gc.get_threshold()
    gc.disable()
    try:
        WizardApp.freeze_startup_objects()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0          # start-up's objects are out of the collector's way
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        gc.enable()


# -- the first screen of a stage shows what to do; PageDown never sticks ----------------------

@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_stage_one_shows_its_choices_on_the_first_screen(tmp_path, size):
    """The choices were three screens below the guide text at 80x24."""
    app = make_app(tmp_path / "mw.toml")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert stage(app) == "target"
        body = app.screen.query_one("#body")
        assert body.scroll_y == 0
        assert visible(app, app.screen.query_one("#system")), screen_text(app)
        assert "Sign-in method" in screen_text(app) or size == (60, 20)
        # the limits of each method are right under the sign-in choice
        flow, compare = app.screen.query_one("#flow"), app.screen.query_one("#flow-compare-box")
        assert 0 < compare.region.y - flow.region.bottom <= 4


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_page_down_in_a_guide_box_moves_on_to_the_rest_of_the_page(tmp_path, size):
    """Stage 2 starts in the guide steps box: PageDown scrolled it to its end and then
    did nothing, with the manifest below out of reach."""
    app = make_app(tmp_path / "mw.toml", stage="registration")
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        body = app.screen.query_one("#body")
        steps = app.screen.query_one("#steps")
        assert app.focused is steps and steps.max_scroll_y > 0 and body.max_scroll_y > 0
        for _ in range(20):
            await pilot.press("pagedown")
            await settle(pilot)
            if body.scroll_y >= body.max_scroll_y:
                break
        assert body.scroll_y == body.max_scroll_y, screen_text(app)
        assert visible(app, app.screen.query_one("#manifest"))
        for _ in range(20):
            await pilot.press("pageup")
            await settle(pilot)
        assert body.scroll_y == 0 and "Stage 2/6" in screen_text(app)
        # the arrows too: through the box, then on down the page
        for _ in range(steps.max_scroll_y + 10):
            await pilot.press("down")
        await settle(pilot)
        assert steps.scroll_y == steps.max_scroll_y and body.scroll_y > 0


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_wrapped_steps_and_bullets_hang_under_their_text(tmp_path, size):
    """A wrapped guide step continues indented; a wrapped bullet under its text, not
    under the bullet."""
    cfg = Config()
    cfg.auth.flow = "certificate"               # a note and more permissions: more to wrap
    app = make_app(tmp_path / "mw.toml", initial=cfg, stage="registration")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        async def inside(selector):
            widget = app.screen.query_one(selector)
            widget.scroll_visible(animate=False, immediate=True)
            await settle(pilot)
            assert visible(app, widget)
            rows = screen_text(app).splitlines()
            area = widget.content_region
            return [row[area.x:area.right].rstrip() for row in rows[area.y:area.bottom]]

        steps = [row for row in await inside("#steps") if row]
        assert len(steps) > 2
        assert all(row.startswith("Guide ") or row.startswith("  ") and row[2] != " " for row in steps), steps
        assert any(row.startswith("  ") for row in steps)            # something did wrap
        bullets = [row for row in await inside("#permissions") if row]
        assert bullets[0].startswith("• ")
        assert all(row.startswith("• ") or row.startswith("  ") and row[2] != " " for row in bullets), bullets
