"""F9 (device code sign-in) at 60x20: the framed instructions fit the panel and
are drawn again to its new width when the terminal is resized."""

from __future__ import annotations

from rich.cells import cell_len

from screens.app import make_app
from wizard.sandbox.device import device_code_config

from test_tui_protocols import quiet, shown, until


def frame_fits(box) -> list[str]:
    """The shown lines; each is within the box and the frame closes on every line."""
    lines = str(box.render()).splitlines()
    assert all(cell_len(line) <= box.content_size.width for line in lines), \
        f"wider than {box.content_size.width}:\n" + "\n".join(lines)
    end = next(n for n, line in enumerate(lines) if n and line.startswith("+"))
    assert all(line[0] in "+|" and line[-1] in "+|" for line in lines[:end + 1]), "\n".join(lines)
    return lines


async def test_device_code_instructions_fit_60_columns_and_follow_a_resize(sandbox, tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml", demo=sandbox, initial=device_code_config(sandbox), stage="ids"))
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("f9")
        await until(pilot, lambda: shown(app, "#device-code"))
        await pilot.pause()
        box = app.screen.query_one("#device-code")
        narrow = frame_fits(box)
        text = " ".join(" ".join(line.strip("|") for line in narrow).split())
        assert "open this page:" in text and "the account the system should use" in text
        assert f"{sandbox.base_url}/devicelogin" in text
        await pilot.resize_terminal(100, 30)
        await until(pilot, lambda: len(str(box.render()).splitlines()[0]) > len(narrow[0]))
        wide = frame_fits(box)
        assert "The code, large:" in wide
        await pilot.press("f9")                     # cancel the sign-in
        await app.workers.wait_for_complete()
