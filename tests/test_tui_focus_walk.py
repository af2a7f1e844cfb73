"""Every screen and dialog of the wizard, walked with Tab at 80x24 and 60x20: each
widget that takes the focus must be on screen when it has it, so what is typed
never lands in a field the user cannot see. It walks the real focus chain (not a
list of known fields), so a new screen or a new field is covered without a change
here; a screen that cannot scroll, or a dialog taller than the terminal, fails."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from screens.app import make_app
from screens.widgets.fields import CheckedField
from wizard.config.schema import Config, IncomingAccount, UserOverride
from wizard.sandbox import sample as s

from test_tui import screen_text

SIZES = [(80, 24), (60, 20)]
FLOWS = ["client_secret", "password", "certificate", "device_code"]


def on_screen(app, widget) -> bool:
    """The widget is entirely inside what its scrolling parents show, and on the
    terminal; a widget taller than that area must show its top line (the place
    where typing and reading start)."""
    geometry = app.screen.find_widget(widget)
    region, clip = geometry.region, geometry.clip.intersection(app.screen.region)
    if clip.contains_region(region):
        return True
    return region.height > clip.height and clip.contains(region.x, region.y) \
        and clip.contains(region.right - 1, region.y)


async def settle(pilot) -> None:
    for _ in range(3):   # focus scrolling happens after the next refresh (or two, for a field)
        await pilot.pause()


async def walk(pilot, where: str) -> list:
    """Tab through the whole focus chain of the screen on top; every stop must be
    visible, with its field's label and message around it."""
    app = pilot.app
    await settle(pilot)
    screen = app.screen
    chain = [w for w in screen.focus_chain]
    assert chain, f"nothing can take the focus on {where}"
    if app.focused is None:
        await pilot.press("tab")
    seen = []
    for _ in range(len(chain) + 2):
        await settle(pilot)
        assert app.screen is screen, f"Tab left {where} for {app.screen!r}"
        focused = app.focused
        assert focused is not None, f"focus lost on {where}"
        if focused in seen:
            break
        seen.append(focused)
        assert on_screen(app, focused), \
            f"{focused!r} on {where} has the focus but is off screen:\n{screen_text(app)}"
        box = next((a for a in focused.ancestors if isinstance(a, CheckedField)), None)
        if box is not None and isinstance(focused, Input):
            label = box.query_one(".field-label")
            assert on_screen(app, label), \
                f"the label of {box.label} on {where} is off screen while typing:\n{screen_text(app)}"
        await pilot.press("tab")
    assert set(seen) == set(chain), f"Tab did not reach every widget on {where}"
    return seen


def base_config(flow="client_secret", system="monitor_g5") -> Config:
    cfg = Config()
    cfg.system = system
    cfg.auth.flow = flow
    cfg.microsoft.client_id, cfg.microsoft.tenant_id = s.SECRET_APP_ID, s.TENANT_ID
    cfg.outgoing.sender = s.SENDER
    cfg.incoming.accounts = [IncomingAccount(address=s.INCOMING[0], types=["CRM"]),
                             IncomingAccount(address=s.INCOMING[1] if len(s.INCOMING) > 1 else s.SENDER)]
    cfg.users = [UserOverride(name="WEBSHOP", flow="password", username="webshop@contoso.com",
                              password="pw-of-webshop"),
                 UserOverride(name="SALES", flow="client_secret")]
    return cfg


def sized(size):
    return pytest.mark.parametrize("size", size if isinstance(size, list) else SIZES,
                                   ids=lambda v: f"{v[0]}x{v[1]}")


ALL_STAGES = ("target", "registration", "ids", "mail", "test", "save")
CASES = [   # system, flow, the stages whose fields depend on them
    ("monitor_g5", "client_secret", ALL_STAGES),
    ("monitor_g5", "password", ("registration", "ids", "mail", "test")),
    ("monitor_g5", "certificate", ("registration", "ids")),
    ("monitor_g5", "device_code", ("registration", "ids")),
    ("efecte_esm", "password", ("target", "ids", "mail")),
    ("generic", "client_secret", ("target", "mail")),
]


@sized(SIZES)
@pytest.mark.parametrize("system,flow,stages", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
async def test_tab_walk_every_stage(sandbox, tmp_path, size, system, flow, stages):
    app = make_app(tmp_path / "mw.toml", demo=sandbox, initial=base_config(flow, system), stage=stages[0])
    app.keep_secrets = False
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        for name in stages:
            if name != stages[0]:
                app.goto(name)
            await settle(pilot)
            if name == "test":
                await app.workers.wait_for_complete()
            await walk(pilot, f"stage {name} ({system}, {flow}) at {size}")


@sized(SIZES)
async def test_tab_walk_every_dialog(sandbox, tmp_path, size):
    """F7 per-user settings, F1 help, F3 read-back, F2 scenarios, F5 help me choose,
    the quit question, the settings sheet, the runbook and the plain views."""
    app = make_app(tmp_path / "mw.toml", demo=sandbox, initial=base_config("password"))
    app.keep_secrets = False
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("f5")                         # help me choose
        await walk(pilot, f"help me choose at {size}")
        await pilot.press("escape")
        app.goto("mail")
        await settle(pilot)
        await pilot.press("f7")                          # per-user settings
        await walk(pilot, f"per-user settings at {size}")
        await pilot.press("f5")                          # a third user: more to scroll
        await walk(pilot, f"per-user settings, three users, at {size}")
        assert app.focused.id == "f-users-2-name"          # the walk ends where it started
        await pilot.press("f6")                          # remove it again (asks first)
        await walk(pilot, f"remove user question at {size}")
        await pilot.press("y")
        await settle(pilot)
        assert len(app.config.users) == 2
        await pilot.press("escape")
        await settle(pilot)
        assert getattr(app.screen, "STAGE", "") == "mail", screen_text(app)
        for key in ("f1", "f3"):                         # help, read-back
            await pilot.press(key)
            await walk(pilot, f"{key} at {size}")
            await pilot.press("escape")
        app.mark_dirty()
        await pilot.press("ctrl+q")                      # the quit question
        await walk(pilot, f"quit dialog at {size}")
        await pilot.press("n")
        for action in ("settings_sheet", "runbook"):
            getattr(app, f"action_{action}")()
            await walk(pilot, f"{action} at {size}")
            await pilot.press("p")                       # its plain view
            await walk(pilot, f"{action} plain at {size}")
            await pilot.press("escape")
            await settle(pilot)
            await pilot.press("escape")
        app.goto("ids")
        await settle(pilot)
        await pilot.press("f2")                          # demo scenarios
        await walk(pilot, f"scenario picker at {size}")
        await pilot.press("escape")


@sized(SIZES)
async def test_tab_walk_resume_dialogs(tmp_path, size):
    """The start of a wizard with a draft left: continue? then the secret asked again."""
    path = tmp_path / "mw.toml"
    first = make_app(path, initial=base_config("password"), stage="ids")
    async with first.run_test(size=size) as pilot:
        first.keep_secrets = False
        first.config.auth.username, first.config.auth.password = s.SERVICE_USER, s.SERVICE_PASSWORD
        first.mark_dirty()
        first.keeper.save_now()
    second = make_app(path)
    async with second.run_test(size=size) as pilot:
        await walk(pilot, f"resume dialog at {size}")
        await pilot.press("enter")
        await settle(pilot)
        await walk(pilot, f"secret prompt at {size}")
