"""The README's two set-up commands are the ones CI and users run."""

from pathlib import Path
import re

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    install, test = _readme_commands()
    assert "mailwizard demo" in install
    assert "pytest" in test
    ci_lines = [l for l in (ROOT / ".ci" / "run").read_text().splitlines() if l and not l.startswith(("#", "set ", "cd "))]
    # the README's test command, and the same suite on the other Python versions the machine has
    # (started before it, in the background; its report printed after it)
    assert test in ci_lines
    at = ci_lines.index(test)
    assert "bash .ci/other-pythons" in ci_lines[at - 1] and ci_lines[at - 1].endswith("&")
    assert ci_lines[at + 1:] == ['wait && cat "$others" && exit "$(cat "$others.rc")"']
