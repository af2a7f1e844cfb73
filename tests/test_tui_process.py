"""The wizard as a user's terminal runs it: a process under an 80x24
pseudo-terminal, typed into, killed with SIGKILL mid-wizard (a dropped SSH
session gives no chance to save either), started again: it offers to continue
and every value typed is back. The keys are written as fast as a password
manager's auto-type writes them, right after the stage appears: none is lost and
each lands in the field it was typed for."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

from wizard.config import drafts
from wizard.sandbox import sample as s

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from _pty import PtyProgram  # noqa: E402  (the benchmarks' pseudo-terminal harness)


def wizard(config: Path) -> PtyProgram:
    return PtyProgram([sys.executable, "-m", "wizard", "wizard", "--config", str(config)],
                      env=dict(os.environ), cwd=str(ROOT))


def wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)   # polling the draft file, not timing the wizard
    return True


def test_killed_wizard_resumes_with_every_value_typed(tmp_path):
    config = tmp_path / "mw.toml"
    first = wizard(config)
    try:
        first.wait_for("Steps in the guide")
        first.press("ctrl+n")
        first.wait_for("Stage 2/6")
        first.press("ctrl+n")
        first.wait_for("Stage 3/6")
        first.press(s.SECRET_APP_ID)             # typed into the first field, the client ID
        first.press("tab")
        first.press(s.TENANT_ID)
        first.press("tab")                       # leaving a field writes the draft at once
        assert wait_until(lambda: (d := drafts.load_draft(config)) is not None
                          and d.cfg.microsoft.tenant_id == s.TENANT_ID), \
            (drafts.draft_path(config).read_text() if drafts.draft_path(config).exists() else "no draft")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
    finally:
        first.stop()
    assert not config.exists()

    second = wizard(config)
    try:
        second.wait_for("Continue where you stopped?")
        mark = second.mark()
        second.press("enter")                    # Continue is the default
        second.wait_for("Stage 3/6", since=mark)
        second.wait_for(s.SECRET_APP_ID, since=mark)
        second.press("tab")                      # the next field, scrolled into view
        second.wait_for(s.TENANT_ID, since=mark)
    finally:
        second.stop()


def _to_ids_stage_and_type(prog, text: str) -> None:
    prog.wait_for("Steps in the guide")
    prog.press("ctrl+n")
    prog.wait_for("Stage 2/6")
    prog.press("ctrl+n")
    prog.wait_for("Stage 3/6")
    mark = prog.mark()
    prog.press(text)
    prog.wait_for(text, since=mark)              # on the screen: the wizard has it


def test_a_terminal_that_goes_away_ends_the_wizard_with_the_values_kept(tmp_path):
    """No SIGHUP (the wizard was started without a controlling terminal, as a
    supervisor or setsid does): the terminal just stops being one. The wizard must
    notice, keep the draft and end, not spin on a dead terminal."""
    config = tmp_path / "mw.toml"
    prog = wizard(config)
    try:
        _to_ids_stage_and_type(prog, s.SECRET_APP_ID)
        os.close(prog.master)                    # the terminal is gone
        prog.master = os.open(os.devnull, os.O_RDONLY)   # for stop() to close
        assert prog.proc.wait(timeout=15) == 129
    finally:
        prog.stop()
    draft = drafts.load_draft(config)
    assert draft is not None and draft.raw.get("microsoft.client_id") == s.SECRET_APP_ID


def test_hangup_keeps_what_was_typed_a_moment_before(tmp_path):
    """An SSH session that drops: the kernel sends SIGHUP at once, inside the
    draft's typing pause. What was on the screen must be in the draft."""
    config = tmp_path / "mw.toml"
    pid, master = pty.fork()                     # the pty becomes the controlling terminal
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "wizard", "wizard", "--config", str(config)])

    class Child:
        @staticmethod
        def poll():
            return None

    class Forked(PtyProgram):                    # the harness's reading, on the forked child
        def __init__(self) -> None:
            self.master, self.plain, self._raw, self.proc = master, b"", b"", Child()

    prog = Forked()
    try:
        _to_ids_stage_and_type(prog, s.SECRET_APP_ID)
        os.close(master)                         # the session drops: SIGHUP
        deadline = time.monotonic() + 15
        while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
            select.select([], [], [], 0.05)
        assert done[0] == pid, "the wizard did not end after SIGHUP"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    draft = drafts.load_draft(config)
    assert draft is not None and draft.raw.get("microsoft.client_id") == s.SECRET_APP_ID
