"""`check --format nagios` with options it cannot read: UNKNOWN (exit 3) and
the reason with its fix on stdout's first line, the only line Nagios shows."""

from __future__ import annotations

import pytest

from cli_helpers import run




@pytest.mark.parametrize("bad,words", [
    (["--warning-days", "x"], ["--warning-days", "'x'", "e.g. --warning-days 30"]),
    (["--critical-days"], ["--critical-days", "expected one argument", "e.g. --critical-days 7"]),
    (["--format", "nagios", "--warning-days=-"], ["--warning-days", "e.g. --warning-days 30"]),
    (["--no-such-flag"], ["--no-such-flag", "leave it out"]),
    (["--config"], ["--config", "e.g. --config /"]),
    (["--profile", "two words"], ["--profile", "'two words'", "letters, digits"]),
], ids=["not-a-number", "no-value", "dash", "unknown-flag", "no-config-path", "bad-profile-name"])
def test_bad_option_is_unknown_with_the_reason_on_stdout(capsys, bad, words):
    rc, out, err = run(capsys, "check", "--format", "nagios", *bad)
    assert rc == 3
    first = out.splitlines()[0] if out else ""
    assert first.startswith("MAILWIZARD UNKNOWN - "), (out, err)
    for word in words:
        assert word in first, first
    assert "|" not in first          # no perfdata separator inside the text


def test_other_formats_keep_argparse_usage_on_stderr_and_exit_2(capsys):
    rc, out, err = run(capsys, "check", "--warning-days", "x")
    assert rc == 2 and out == "" and "invalid int value" in err
