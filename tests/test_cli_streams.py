"""Output nobody reads: a closed stdout (`mailwizard check >&-`) and a reader
that went away (`mailwizard check --format nagios | head -c 10`). The command
ends as it would, with its exit code, and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from test_config_lines import BASE

BAD = BASE.replace('sender = "erp@contoso.com"', 'sender = "erp-at-contoso.com"')   # a config error: exit 2
MAILWIZARD = [sys.executable, "-c", "import sys; from wizard.cli.main import main; sys.exit(main())"]


def _quiet(stderr: str) -> None:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert "BrokenPipeError" not in stderr and "AttributeError" not in stderr, stderr


def _to_gone_reader(args: list[str]) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reading end is already closed (as after `head` ended)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(MAILWIZARD + args, stdout=w, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(w)


@pytest.fixture
def bad(tmp_path):
    p = tmp_path / "la.toml"
    p.write_text(BAD)
    return str(p)


def test_closed_stdout_runs_the_command_and_exits_with_its_code(bad):
    done = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *MAILWIZARD, "check", "--config", bad],
                          stderr=subprocess.PIPE, text=True, timeout=60)
    _quiet(done.stderr)
    assert done.returncode == 2                     # a config error, as with stdout open
    assert "[outgoing.sender]" in done.stderr        # the error is still told on stderr


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"], ["check", "--format", "nagios"],
                                  ["check", "--json"]], ids=" ".join)
def test_reader_gone_ends_quietly_with_the_commands_exit_code(bad, args):
    if args[0] == "check" and "--help" not in args:
        args = args + ["--config", bad]
    normal = subprocess.run(MAILWIZARD + args, capture_output=True, text=True, timeout=60)
    assert normal.stdout                             # something to write
    gone = _to_gone_reader(args)
    _quiet(gone.stderr)
    assert gone.returncode == normal.returncode
