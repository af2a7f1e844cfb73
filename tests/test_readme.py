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
    # the README's test command, then the same suite on the other Python versions the machine has
    assert ci_lines == [test, "bash .ci/other-pythons"]
