"""`mailwizard report --config A` carries A's own last check, never another config's
(in process through ``wizard.cli.main`` against the session sandbox)."""

from __future__ import annotations

import json
import os

import pytest

from wizard.config import files as config_io
from wizard.sandbox import sample
from cli_helpers import fast, run  # noqa: F401 (fast: a fixture, used through pytestmark)

pytestmark = pytest.mark.usefixtures("fast")






def last_check(bundle: str) -> str:
    return bundle.split("== last check\n", 1)[1]


def test_the_report_of_a_config_holds_its_own_last_check(sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wrong = sample.SECRET_VALUE[:-1] + "X"
    config_io.save(sandbox.config(client_secret=wrong), tmp_path / "fs.toml")      # fails: wrong secret
    config_io.save(sandbox.config("client_secret", protocol="graph"), tmp_path / "sp3.toml")
    config_io.save(sandbox.config("client_secret", protocol="graph"), tmp_path / "never.toml")

    assert run(capsys, "check", "--json", "--no-alerts", "--config", "fs.toml")[0] == 1
    assert run(capsys, "check", "--json", "--no-alerts", "--config", "sp3.toml")[0] == 0     # checked last

    rc, out, _ = run(capsys, "report", "--config", "fs.toml", "-o", "rep2.txt")
    assert rc == 0
    last = json.loads(last_check((tmp_path / "rep2.txt").read_text()))
    assert os.path.samefile(last["config"], tmp_path / "fs.toml")
    assert last["report"]["ok"] is False and "AADSTS7000215" in json.dumps(last)

    rc, out, _ = run(capsys, "report", "--config", str(tmp_path / "sp3.toml"))     # the same file, another spelling
    last = json.loads(last_check(out))
    assert rc == 0 and os.path.samefile(last["config"], tmp_path / "sp3.toml") and last["report"]["ok"] is True

    rc, out, _ = run(capsys, "report", "--config", "never.toml")
    section = last_check(out)
    assert rc == 0 and "no check of this config" in section and "never.toml" in section
    assert "sp3.toml" not in section and '"report"' not in section
