"""`mailwizard sandbox --write-config PATH --system S --flow F --protocol P` writes a
working config of every shape, to try `check` by hand (issue 14, "Also")."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wizard.config import files as config_io
from wizard.cli.main import main
from wizard.sandbox import sample

ROOT = Path(__file__).resolve().parents[1]


def _wait_for_line(proc, text: str, seconds: float = 30.0) -> str:
    """Lines of the sandbox's stdout until one holds ``text`` (bounded)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not sel.select(timeout=deadline - time.monotonic()):
            break
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no {text!r} from the sandbox: {''.join(seen)}{proc.stderr.read() if proc.poll() else ''}")


@pytest.mark.parametrize("system, flow, protocol, incoming", [
    ("efecte_esm", "password", "smtp+imap", [sample.SERVICE_USER]),
    ("efecte_esm", "client_secret", None, [sample.SENDER]),          # ESM: smtp+imap unless told
    ("monitor_g5", "password", "graph", sample.INCOMING),
    ("generic", "certificate", "ews", sample.INCOMING),
])
def test_sandbox_writes_a_working_config_of_each_shape(tmp_path, capsys, monkeypatch, system, flow, protocol,
                                                       incoming):
    path = tmp_path / "sandbox.toml"
    argv = [sys.executable, "-m", "wizard", "sandbox", "--write-config", str(path), "--system", system,
            "--flow", flow] + (["--protocol", protocol] if protocol else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = _wait_for_line(proc, "wrote ")
        assert f"({system}, {flow}, {protocol or 'smtp+imap'})" in line
        cfg = config_io.load(path)
        assert (cfg.system, cfg.auth.flow) == (system, flow)
        assert [a.address for a in cfg.incoming.accounts] == incoming
        monkeypatch.setenv("MAILWIZARD_TIMEOUT", "5,10")
        rc = main(["check", "--json", "--config", str(path)])
        data = json.loads(capsys.readouterr().out)
        assert rc == 0 and data["ok"], data
        mailboxes = {s["id"]: s for s in data["steps"] if s["id"].startswith("mailbox:")}
        assert set(mailboxes) == {f"mailbox:{a}" for a in incoming}
        if cfg.incoming.protocol == "imap":
            assert all("over IMAP" in s["summary"] for s in mailboxes.values())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_sandbox_refuses_an_unknown_shape(capsys):
    with pytest.raises(SystemExit) as e:
        main(["sandbox", "--write-config", "/tmp/x.toml", "--flow", "kerberos"])
    assert e.value.code == 2 and "--flow" in capsys.readouterr().err
