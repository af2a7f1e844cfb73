"""Shared by the tests that check `mailwizard ... --help` stays light."""

from __future__ import annotations

import subprocess
import sys


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
