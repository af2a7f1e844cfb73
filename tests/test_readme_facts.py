"""What the README promises about running the tests and the export command matches what they do."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_section() -> str:
    return (ROOT / "README.md").read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]


def test_the_readme_states_how_long_the_whole_suite_takes():
    text = " ".join(_setup_section().split())
    sentence = text.split("Install what the tests need", 1)[1].split("```", 1)[0]
    assert "in seconds" not in sentence                 # the suite takes about 6 minutes on two cores
    assert re.search(r"about \d{2,3} s\b|about \w+ minutes?", sentence), sentence


def test_the_readme_export_line_offers_dash_for_standard_output():
    text = (ROOT / "README.md").read_text()
    assert "mailwizard export sheet   [-o FILE|-]" in text and "`-o -` prints" in text
