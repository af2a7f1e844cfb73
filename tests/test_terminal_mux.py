"""Copy over SSH through real terminal multiplexers: the clipboard sequence the
wizard writes reaches tmux's clipboard (set-clipboard on) directly, and through a
GNU screen running inside tmux, where a plain OSC 52 is swallowed by screen.

These run the real programs; they are skipped where tmux or screen is not
installed (the wizard's own tests do not depend on them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WRITER = """
import select, sys
from pathlib import Path
from screens.clipboard import clipboard_sequence
sys.stdout.write(clipboard_sequence(Path(sys.argv[1]).read_text()))
sys.stdout.flush()
select.select([sys.stdin], [], [], 30)   # stay while the test reads tmux's buffer, not for ever
"""

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
needs_screen = pytest.mark.skipif(shutil.which("screen") is None, reason="GNU screen is not installed")


@pytest.fixture
def tmux(tmp_path):
    socket = f"mw-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "STY")}
    env["HOME"] = str(tmp_path)      # no ~/.screenrc or ~/.tmux.conf of the machine

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", socket, "-f", os.devnull, *args], env=env,
                              capture_output=True, text=True, check=check, timeout=10)

    yield run
    run("kill-server", check=False)


def wait_for_buffer(tmux, expected: str, timeout: float = 10.0) -> str:
    """tmux's newest paste buffer once it holds expected (or what it holds at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        got = tmux("show-buffer", check=False).stdout
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.05)   # polling for the multiplexer, not timing the wizard


def start(tmux, tmp_path, command: list[str], text: str) -> None:
    """Run the writer (as the wizard writes its copy) in a new tmux session, inside command."""
    script, data = tmp_path / "writer.py", tmp_path / "text"
    script.write_text(WRITER)
    data.write_text(text)
    line = " ".join([*command, sys.executable, str(script), str(data)])
    tmux("start-server", ";", "set-option", "-g", "set-clipboard", "on", ";",
         "new-session", "-d", "-x", "100", "-y", "30", "-c", str(ROOT), f"env PYTHONPATH={ROOT} {line}")


@needs_tmux
def test_copy_inside_tmux_reaches_its_clipboard(tmux, tmp_path):
    text = "manifest-" + uuid.uuid4().hex
    start(tmux, tmp_path, [], text)
    assert wait_for_buffer(tmux, text) == text


@needs_tmux
@needs_screen
def test_copy_inside_gnu_screen_inside_tmux_reaches_tmux(tmux, tmp_path):
    text = ("{\"resourceAppId\": \"00000002-0000-0ff1-ce00-000000000000\"} " * 12) + uuid.uuid4().hex
    session = f"mw-{uuid.uuid4().hex[:8]}"
    start(tmux, tmp_path, ["screen", "-S", session, "-q"], text)
    try:
        assert wait_for_buffer(tmux, text) == text   # long: sent in several pieces through screen
    finally:   # a screen whose tmux pane goes away detaches and lives on: end it
        subprocess.run(["screen", "-S", session, "-X", "quit"], capture_output=True, timeout=10)
