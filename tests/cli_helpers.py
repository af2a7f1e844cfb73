"""Shared by the CLI tests: run `mailwizard ARGS` in-process (``run``, with the ``fast`` fixture for
short network waits), and check that `mailwizard ... --help` stays light (``help_output``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wizard.cli.main import main
from wizard.sandbox import sample

SECRETS = (sample.SECRET_VALUE, sample.SERVICE_PASSWORD)


@pytest.fixture
def fast(monkeypatch):
    """Short connect/read timeouts and waits (dead ports and refused logins answer at once anyway)."""
    monkeypatch.setenv("MAILWIZARD_TIMEOUT", "2,2")
    monkeypatch.setenv("MAILWIZARD_MAX_WAIT", "0.02")


def run(capsys, *argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); never a traceback, never a sample secret in either."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    for secret in SECRETS:
        assert secret not in out + err
    return rc, out, err


def help_output(argv: list[str], heavy) -> str:
    """The stdout of ``wizard.cli.main(argv)`` (a --help) run in a fresh interpreter, which must
    exit 0; its last line is the sorted list of the ``heavy`` modules that got imported."""
    code = (
        "import sys\n"
        "from wizard.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        f"print(sorted(m for m in {tuple(heavy)!r} if m in sys.modules))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
