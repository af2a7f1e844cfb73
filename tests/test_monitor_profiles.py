"""Monitoring agrees with itself: each profile's systemd check keeps its own metrics
file, and the Nagios perfdata thresholds alert exactly when the plugin's state does.

In process through ``wizard.cli.main`` against the session sandbox (conftest)."""

from __future__ import annotations

import datetime as dt
import shlex
import time
from pathlib import Path

import pytest
from nagiosplugin import Range

from wizard.config import files as config_io
from wizard.monitor.nagios import render
from wizard.monitor.watch import ProfileResult
from wizard.check.model import Report, Step
from wizard.monitor.facts import Facts
from cli_helpers import fast, run  # noqa: F401 (fast: a fixture, used through pytestmark)

pytestmark = pytest.mark.usefixtures("fast")

TODAY = dt.date.today()
STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL"}






def check_command(printed: str) -> list[str]:
    """The words of the check service's ExecStart in `export systemd`'s output."""
    service = printed.split("-check.service\n", 1)[1]
    line = next(l for l in service.splitlines() if l.startswith("ExecStart="))
    return shlex.split(line.split("=", 1)[1])


# -- defect: every profile's timer wrote the same metrics file ---------------------------------

def test_each_profiles_daily_check_keeps_its_own_metrics_file(sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MAILWIZARD_CONFIG")         # the default config where a user has it
    config_io.save(sandbox.config("client_secret", protocol="graph"), config_io.default_path())
    config_io.save(sandbox.config("client_secret", protocol="graph"), config_io.profile_path("prod"))
    rc, default_units, _ = run(capsys, "export", "systemd")
    assert rc == 0
    rc, prod_units, _ = run(capsys, "--profile", "prod", "export", "systemd")
    assert rc == 0
    monkeypatch.setenv("MAILWIZARD_PROFILE", "prod")         # the profile chosen by the environment: the same
    assert run(capsys, "export", "systemd") == (0, prod_units, "")
    monkeypatch.delenv("MAILWIZARD_PROFILE")
    commands = {"default": check_command(default_units), "prod": check_command(prod_units)}
    files = {name: Path(cmd[cmd.index("--textfile") + 1]) for name, cmd in commands.items()}
    # the default config keeps the file existing installs already scrape
    assert str(files["default"]) == "/var/lib/node_exporter/textfile_collector/mailwizard.prom"
    assert files["prod"] != files["default"] and files["prod"].parent == files["default"].parent
    assert files["prod"].name.endswith(".prom") and "prod" in files["prod"].name

    # run both timers' commands in turn (into a folder of ours): both profiles' series stay scrapeable
    collector = tmp_path / "textfile_collector"
    collector.mkdir()
    for name, cmd in commands.items():
        argv = cmd[cmd.index("check"):]
        argv[argv.index("--textfile") + 1] = str(collector / files[name].name)
        assert run(capsys, *argv, "--no-alerts")[0] == 0
    scraped = "".join(p.read_text() for p in sorted(collector.glob("*.prom")))
    assert 'mailwizard_check_ok{profile="default"} 1' in scraped
    assert 'mailwizard_check_ok{profile="prod"} 1' in scraped

    rc, out, _ = run(capsys, "--profile", "prod", "export", "systemd", "--textfile", "/srv/m/prod.prom")
    assert rc == 0 and check_command(out)[-1] == "/srv/m/prod.prom"      # --textfile still wins


# -- defect: perfdata ranges disagreed with the plugin's state ---------------------------------

def result(*, secret_in=None, idle_days=None, token="pass"):
    facts = Facts(secret_expires=TODAY + dt.timedelta(days=secret_in)) if secret_in is not None else Facts()
    steps = [Step("token", "Sign in", token, 1, "ok", "signin.idle" if token == "warn" else None, "")]
    return ProfileResult("mw", "mw.toml", Report(ok=token != "fail", steps=steps), facts, 0.1,
                         idle_days=idle_days)


def perf_of(line: str) -> dict:
    data = line.split(" | ", 1)[1]
    out = {}
    for item in data.split():
        label, _, rest = item.partition("=")
        value, warn, crit = (rest.split(";") + ["", ""])[:3]
        out[label.strip("'")] = (float(value.rstrip("s")), warn, crit)
    return out


def perf_state(value, warn, crit) -> int:
    """What a Nagios/Icinga reading the perfdata thresholds (the plugin range rules) concludes."""
    if crit and not Range(crit).match(value):
        return 2
    if warn and not Range(warn).match(value):
        return 1
    return 0


@pytest.mark.parametrize("warning_days, critical_days", [(30, 7), (14, 3)])
def test_secret_days_thresholds_alert_exactly_when_the_plugin_does(warning_days, critical_days):
    for days in (-1, 0, critical_days - 1, critical_days, critical_days + 1, warning_days - 1, warning_days,
                 warning_days + 1, warning_days + 5):
        text, state = render([result(secret_in=days)], warning_days=warning_days, critical_days=critical_days,
                             today=TODAY)
        value, warn, crit = perf_of(text)["secret_days"]
        assert value == days
        assert STATES[perf_state(value, warn, crit)] == STATES[state], (days, text)


def test_the_plugin_line_with_a_secret_7_days_away_is_critical_in_its_perfdata_too(sandbox, tmp_path, capsys):
    cfg = sandbox.config("client_secret", protocol="graph")
    cfg.auth.secret_expires = TODAY + dt.timedelta(days=7)
    path = str(config_io.save(cfg, tmp_path / "mw.toml"))
    rc, out, _ = run(capsys, "check", "--format", "nagios", "--no-alerts", "--config", path)
    assert rc == 2 and out.startswith("MAILWIZARD CRITICAL - secret expires in 7 days")
    assert perf_state(*perf_of(out)["secret_days"]) == 2


@pytest.mark.parametrize("idle", [10.0, 59.9, 60.0, 61.5, 89.0, 90.0, 120.0])
def test_signin_idle_days_thresholds_agree_with_the_idle_warning(idle):
    from wizard.monitor.watch import warn_idle
    step = Step("token", "Sign in", "pass", 1, "ok", None, "")
    report = Report(ok=True, steps=[step])
    now = time.time()
    days = warn_idle(report, Facts(delegated=True, refresh_last_used=now - idle * 86400), now=now)
    text, state = render([ProfileResult("mw", "mw.toml", report, Facts(), 0.1, idle_days=days)], today=TODAY)
    value, warn, crit = perf_of(text)["signin_idle_days"]
    assert perf_state(value, warn, crit) == state, (idle, text)
