"""Monitoring through the CLI, as an admin runs it (issue 17): `check --format
prometheus|nagios`, `--textfile`, `--all-profiles`, alert mails through the
config's own mailbox (read back from the sandbox's mailboxes), the delegated
sign-in's idle warning and keep-alive, and `export systemd`.

In process through ``wizard.cli.main`` against the session sandbox; every
state file lands in the test's own XDG dirs (conftest)."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import os
import stat
import time

import pytest
from nagiosplugin import Range
from prometheus_client.parser import text_string_to_metric_families

from wizard.config import files as config_io
from wizard.identity import device_code, usage
from wizard.sandbox import Fault, sample
from cli_helpers import fast, run  # noqa: F401 (fast: a fixture, used through pytestmark)

pytestmark = pytest.mark.usefixtures("fast")

TOKEN = f"/{sample.TENANT_ID}/oauth2/v2.0/token"
SEND = f"/v1.0/users/{sample.SENDER}/sendMail"
TODAY = dt.date.today()
SECRETS = (sample.SECRET_VALUE, sample.SERVICE_PASSWORD)






def write(tmp_path, cfg, name="mw.toml") -> str:
    return str(config_io.save(cfg, tmp_path / name))


def expiring_config(sb, days=10, **alerts):
    cfg = sb.config("client_secret", protocol="graph")
    cfg.auth.secret_expires = TODAY + dt.timedelta(days=days)
    cfg.alerts.to = [sample.RECIPIENT]
    for key, value in alerts.items():
        setattr(cfg.alerts, key, value)
    return cfg


def inbox(sb, address=sample.RECIPIENT):
    return [m for m in sb.tenant.mailbox(address).inbox if m.subject.startswith("[mailwizard]")]


def metrics(text: str) -> dict:
    """{(name, frozenset(labels)): value}, parsed by prometheus_client's own parser."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def perf(line: str) -> dict:
    """{label: (value, warn, crit)} of a Nagios status line's perfdata."""
    head, sep, data = line.partition(" | ")
    assert sep and "|" not in head
    out = {}
    for item in data.split():
        label, _, rest = item.partition("=")
        fields = (rest.split(";") + [""] * 5)[:5]
        value = float(fields[0].rstrip("s"))
        out[label.strip("'")] = (value, fields[1], fields[2])
    return out


# -- the "done when" ------------------------------------------------------------

def test_secret_expiring_in_10_days_gives_metric_nagios_warning_and_one_alert_mail(sandbox, tmp_path, capsys):
    path = write(tmp_path, expiring_config(sandbox))
    expires = calendar.timegm((TODAY + dt.timedelta(days=10)).timetuple())

    rc, out, _ = run(capsys, "check", "--format", "nagios", "--config", path)
    first, *more = out.splitlines()
    assert rc == 1 and first.startswith("MAILWIZARD WARNING - ") and not more
    assert "secret expires in 10 days" in first
    value, warn, crit = perf(first)["secret_days"]
    assert value == 10 and Range(warn).match(value) is False and Range(crit).match(value) is True
    mails = inbox(sandbox)
    assert len(mails) == 1 and "client secret expires in 10 days" in mails[0].subject
    assert "mailwizard rotate" in mails[0].body and sample.SECRET_VALUE not in mails[0].body

    textfile = tmp_path / "mailwizard.prom"
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--textfile", str(textfile), "--config", path)
    assert rc == 0
    m = metrics(out)
    assert m[("mailwizard_secret_expiry_timestamp_seconds", frozenset({("profile", "mw")}))] == expires
    assert m[("mailwizard_check_ok", frozenset({("profile", "mw")}))] == 1
    assert m[("mailwizard_check_step_status", frozenset({("profile", "mw"), ("step", "config"),
                                                          ("status", "warn")}))] == 1
    assert m[("mailwizard_alerts_unsent", frozenset({("profile", "mw")}))] == 0
    assert textfile.read_text() == out and stat.S_IMODE(textfile.stat().st_mode) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    assert len(inbox(sandbox)) == 1                 # the next runs send no second mail
    rc, out, _ = run(capsys, "check", "--config", path)
    assert rc == 0 and "No alert due" in out and len(inbox(sandbox)) == 1
    state = usage.state_path().with_name("alerts.json")
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_a_tighter_threshold_sends_one_more_mail_and_nagios_turns_critical(sandbox, tmp_path, capsys):
    cfg = expiring_config(sandbox, days=20)
    path = write(tmp_path, cfg)
    run(capsys, "check", "--json", "--config", path)
    run(capsys, "check", "--json", "--config", path)
    assert [m.subject.split(": ", 1)[1] for m in inbox(sandbox)] == [
        f"the client secret expires in 20 days ({TODAY + dt.timedelta(days=20)})"]
    cfg.auth.secret_expires = TODAY + dt.timedelta(days=6)      # the 7-day threshold (and none in between)
    write(tmp_path, cfg)
    rc, out, _ = run(capsys, "check", "--json", "--config", path)
    alerts = next(s for s in json.loads(out)["steps"] if s["id"] == "alerts")
    assert alerts["status"] == "pass" and "in 6 days" in alerts["summary"] and len(inbox(sandbox)) == 2
    rc, out, _ = run(capsys, "check", "--format", "nagios", "--config", path)
    assert rc == 2 and out.startswith("MAILWIZARD CRITICAL - ") and len(inbox(sandbox)) == 2


def test_failing_check_and_its_recovery_each_send_one_mail(sandbox, tmp_path, capsys):
    cfg = sandbox.config("client_secret", protocol="graph")
    cfg.alerts.to = [sample.RECIPIENT]
    good = list(cfg.incoming.accounts)
    cfg.incoming.accounts = good + [type(good[0])(address=sample.NO_MAILBOX)]
    path = write(tmp_path, cfg)
    for _ in range(2):
        rc, out, _ = run(capsys, "check", "--json", "--config", path)
        assert rc == 1
    mails = inbox(sandbox)
    assert len(mails) == 1 and "fails" in mails[0].subject and sample.NO_MAILBOX in mails[0].body
    cfg.incoming.accounts = good
    write(tmp_path, cfg)
    for _ in range(2):
        rc, _, _ = run(capsys, "check", "--json", "--config", path)
        assert rc == 0
    mails = inbox(sandbox)
    assert len(mails) == 2 and "works again" in mails[1].subject


def test_an_alert_that_cannot_be_sent_fails_the_run_and_goes_out_later(sandbox, tmp_path, capsys):
    path = write(tmp_path, expiring_config(sandbox))
    sandbox.inject(Fault(SEND, status=403, times=None))
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--config", path)
    assert rc == 1 and not inbox(sandbox)
    rc, text, _ = run(capsys, "check", "--config", path)
    assert rc == 1 and "could not be sent" in text and "tried again on the next run" in text
    m = metrics(out)
    assert m[("mailwizard_alerts_unsent", frozenset({("profile", "mw")}))] == 1
    assert m[("mailwizard_check_ok", frozenset({("profile", "mw")}))] == 0
    rc, out, _ = run(capsys, "check", "--json", "--config", path, "--no-alerts")
    assert rc == 0 and "alerts" not in [s["id"] for s in json.loads(out)["steps"]]
    sandbox.reset()
    rc, out, _ = run(capsys, "check", "--json", "--config", path)
    assert rc == 0 and len(inbox(sandbox)) == 1


# -- all profiles ---------------------------------------------------------------------------

def test_all_profiles_are_checked_and_reported_each(sandbox, tmp_path, capsys):
    folder = config_io.default_path().parent / "profiles"
    config_io.save(sandbox.config("client_secret", protocol="graph"), config_io.default_path())
    config_io.save(expiring_config(sandbox, days=5, to=[]), folder / "test.toml")
    folder.joinpath("broken.toml").write_text("version = 1\n[auth\n")
    rc, out, _ = run(capsys, "check", "--all-profiles", "--json")
    data = json.loads(out)
    assert rc == 1 and set(data) == {"ok", "profiles"} and data["ok"] is False
    by_name = {p["profile"]: p for p in data["profiles"]}
    assert list(by_name) == ["default", "broken", "test"]
    assert by_name["default"]["ok"] and by_name["test"]["ok"] and not by_name["broken"]["ok"]
    assert set(by_name["test"]) == {"profile", "config", "ok", "steps"}
    assert by_name["broken"]["steps"][0]["code"] == "config.invalid"

    rc, out, _ = run(capsys, "check", "--all-profiles", "--format", "prometheus")
    m = metrics(out)
    assert {dict(labels)["profile"] for name, labels in m if name == "mailwizard_check_ok"} == \
        {"default", "broken", "test"}
    assert ("mailwizard_secret_expiry_timestamp_seconds", frozenset({("profile", "test")})) in m

    rc, out, _ = run(capsys, "check", "--all-profiles", "--format", "nagios")
    lines = out.splitlines()
    assert rc == 2 and lines[0].startswith("MAILWIZARD CRITICAL - 2 of 3 profiles not OK")
    assert "'test_secret_days'=5;31:;8:" in lines[0] and len(lines) == 4
    assert lines[3].startswith("test: CRITICAL - secret expires in 5 days")

    rc, out, _ = run(capsys, "check", "--all-profiles")
    assert rc == 1 and "Profiles: 2 of 3 OK; failed: broken" in out


def test_nagios_usage_errors_are_unknown(sandbox, tmp_path, capsys):
    path = write(tmp_path, expiring_config(sandbox))
    rc, out, _ = run(capsys, "check", "--format", "nagios", "--config", path, "--warning-days", "3",
                     "--critical-days", "5")
    assert rc == 3 and out.startswith("MAILWIZARD UNKNOWN - ")
    assert run(capsys, "check", "--format", "nagios", "--no-such-flag")[0] == 3
    assert run(capsys, "check", "--format=nagios", "--config", "")[0] == 3
    assert run(capsys, "check", "--no-such-flag")[0] == 2          # other formats keep exit 2
    rc, _, err = run(capsys, "check", "--config", path, "--textfile", str(tmp_path / "m.txt"))
    assert rc == 2 and ".prom" in err
    rc, _, err = run(capsys, "check", "--config", path, "--textfile", str(tmp_path / "nowhere" / "m.prom"))
    assert rc == 2 and "does not exist" in err


def test_alerts_section_is_checked_and_kept(sandbox, tmp_path, capsys):
    cfg = expiring_config(sandbox, days_before=[14, 3])
    path = write(tmp_path, cfg)
    text = open(path).read()
    assert "[alerts]" in text and "days_before = [14, 3]" in text
    assert config_io.load(path).alerts.thresholds() == [14, 3]
    bad = text.replace('days_before = [14, 3]', 'days_before = [14, -3]').replace(
        f'to = ["{sample.RECIPIENT}"]', 'to = ["ops-at-contoso"]')
    open(path, "w").write(bad)
    rc, out, err = run(capsys, "check", "--config", path)
    assert rc == 2 and "[alerts.to[0]]" in err and "not an e-mail address" in err
    assert "[alerts.days_before[1]]" in err


# -- delegated sign-ins ----------------------------------------------------------------------

def test_idle_delegated_sign_in_warns_and_the_check_uses_it(sandbox, tmp_path, capsys):
    cfg = sandbox.config("password", protocol="graph")
    path = write(tmp_path, cfg)
    usage.record(config_io.load(path), when=time.time() - 65 * 86400)
    rc, out, _ = run(capsys, "check", "--json", "--config", path)
    token = next(s for s in json.loads(out)["steps"] if s["id"] == "token")
    assert rc == 0 and token["status"] == "warn" and token["code"] == "signin.idle"
    assert "65 days" in token["summary"] and "AADSTS700082" in token["summary"]
    assert stat.S_IMODE(usage.state_path().stat().st_mode) == 0o600
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--config", path)
    used = metrics(out)[("mailwizard_refresh_token_last_used_timestamp_seconds", frozenset({("profile", "mw")}))]
    assert rc == 0 and time.time() - used < 120


def _device_login(sb, tmp_path):
    cfg = sb.config("device_code", protocol="graph")
    path = write(tmp_path, cfg)
    cfg = config_io.load(path)
    device_code.login(cfg, show=lambda flow: sb.device.approve(flow.user_code), sleep=lambda s: None)
    return cfg, path


def refresh_grants(sb):
    return [r for r in sb.requests if r.path == TOKEN and b"grant_type=refresh_token" in r.body]


def test_check_and_poll_keep_an_idle_device_code_sign_in_alive(sandbox, tmp_path, capsys):
    cfg, path = _device_login(sandbox, tmp_path)
    rc, _, _ = run(capsys, "check", "--json", "--config", path)
    assert rc == 0 and not refresh_grants(sandbox)        # just signed in: the cached token serves
    for argv in (("check", "--json"), ("poll", "--once", "--peek")):
        usage.record(cfg, when=time.time() - 13 * 3600)
        sandbox.clear()
        rc, _, _ = run(capsys, *argv, "--config", path)
        assert rc == 0 and len(refresh_grants(sandbox)) >= 1, argv
        assert time.time() - usage.last_used(cfg) < 120


@pytest.mark.parametrize("code, said, cause", [
    (700082, "The refresh token has expired due to inactivity.", "90 days"),
    (70043, "The refresh token has expired or is invalid due to sign-in frequency checks by conditional "
            "access.", "sign-in frequency"),
])
def test_a_lapsed_sign_in_is_named_precisely_by_check_and_poll(sandbox, tmp_path, capsys, code, said, cause):
    cfg, path = _device_login(sandbox, tmp_path)
    usage.record(cfg, when=time.time() - 91 * 86400)
    body = json.dumps({"error": "invalid_grant", "error_codes": [code], "error_description": f"AADSTS{code}: {said}"})
    sandbox.inject(Fault(TOKEN, status=400, body=body, times=None))
    rc, out, _ = run(capsys, "check", "--json", "--config", path)
    token = next(s for s in json.loads(out)["steps"] if s["id"] == "token")
    assert rc == 1 and token["code"] == f"AADSTS{code}" and "mailwizard login" in token["fix"]
    assert cause in token["summary"]
    rc, out, _ = run(capsys, "poll", "--once", "--json", "--config", path)
    errors = [json.loads(line)["error"] for line in out.splitlines()]
    assert rc == 1 and errors and all(e["code"] == f"AADSTS{code}" for e in errors)


# -- systemd --------------------------------------------------------------------------------

def test_export_systemd_writes_units_without_secrets(sandbox, tmp_path, capsys):
    path = write(tmp_path, expiring_config(sandbox))
    rc, out, _ = run(capsys, "export", "systemd", "--config", path)
    assert rc == 0 and "# mailwizard-check.timer" in out and "OnCalendar=daily" in out
    units = tmp_path / "units"
    rc, out, _ = run(capsys, "export", "systemd", "--config", path, "-o", str(units), "--textfile",
                     "/srv/metrics/mw.prom")
    assert rc == 0
    names = sorted(p.name for p in units.iterdir())
    assert names == ["mailwizard-check.service", "mailwizard-check.timer", "mailwizard-relay.service"]
    check = (units / "mailwizard-check.service").read_text()
    exec_line = next(line for line in check.splitlines() if line.startswith("ExecStart="))
    exe = exec_line.split("=", 1)[1].split()[0]
    assert os.path.isabs(exe) and os.access(exe, os.X_OK)
    assert exec_line.endswith(f"check --config {path} --textfile /srv/metrics/mw.prom")
    relay = (units / "mailwizard-relay.service").read_text()
    assert f"relay --config {path}" in relay and "WantedBy=multi-user.target" in relay
    assert "ExecReload=/bin/kill -HUP $MAINPID" in relay.splitlines()     # `systemctl reload` is SIGHUP
    for unit in units.iterdir():
        text = unit.read_text()
        assert sample.SECRET_VALUE not in text and "client_secret" not in text
        assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert run(capsys, "export", "systemd", "--config", str(tmp_path / "missing.toml"))[0] == 2
    import shutil
    import subprocess
    if shutil.which("systemd-analyze"):                # systemd's own reading of the units
        done = subprocess.run(["systemd-analyze", "verify", *sorted(str(u) for u in units.iterdir())],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_help_stays_light(tmp_path):
    from cli_helpers import help_output
    out = help_output(["check", "--help"], heavy=("prometheus_client", "msal", "wizard.monitor.metrics"))
    assert "--all-profiles" in out and "3 UNKNOWN" in out
    assert out.splitlines()[-1] == "[]"


def test_a_secret_past_its_date_is_critical_and_keeps_its_metric(sandbox, tmp_path, capsys):
    cfg = expiring_config(sandbox)
    path = write(tmp_path, cfg)
    text = open(path).read().replace(str(cfg.auth.secret_expires), str(TODAY - dt.timedelta(days=2)))
    open(path, "w").write(text)
    rc, out, _ = run(capsys, "check", "--format", "nagios", "--config", path)
    assert rc == 2 and out.startswith("MAILWIZARD CRITICAL - ") and "secret ended on" in out
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--config", path)
    m = metrics(out)
    assert rc == 2 and m[("mailwizard_check_ok", frozenset({("profile", "mw")}))] == 0
    assert ("mailwizard_secret_expiry_timestamp_seconds", frozenset({("profile", "mw")})) in m


def test_all_profiles_run_concurrently_at_most_four_at_a_time(sandbox, capsys, monkeypatch):
    import threading
    from wizard.check import engine
    folder = config_io.default_path().parent / "profiles"
    for n in range(8):
        config_io.save(sandbox.config("client_secret", protocol="graph"), folder / f"p{n}.toml")
    real, lock, barrier = engine.run_check, threading.Lock(), threading.Barrier(4, timeout=10)
    active, peak = [0], [0]

    def counted(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            barrier.wait()          # breaks (and the check fails) unless 4 run at once
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1
    monkeypatch.setattr(engine, "run_check", counted)
    rc, out, _ = run(capsys, "check", "--all-profiles", "--json")
    data = json.loads(out)
    assert rc == 0 and len(data["profiles"]) == 8 and peak[0] == 4


def test_ews_retirement_and_certificate_dates_are_metrics_and_alerts(sandbox, tmp_path, capsys):
    from wizard.guide.steps import load_guide
    from wizard.identity.certificates import certificate_info
    shutdown = load_guide().ews_retirement.shutdown
    cfg = sandbox.config("certificate")                       # EWS on Exchange Online (the default)
    cfg.alerts.to = [sample.RECIPIENT]
    cfg.alerts.days_before = [(shutdown - TODAY).days + 1]    # so the switch-off is due today
    path = write(tmp_path, cfg)
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--config", path)
    m = metrics(out)
    label = frozenset({("profile", "mw")})
    assert m[("mailwizard_ews_retirement_timestamp_seconds", label)] == calendar.timegm(shutdown.timetuple())
    cert_day = cfg.auth.certificate_expires or certificate_info(cfg.auth.certificate).expires
    assert m[("mailwizard_certificate_expiry_timestamp_seconds", label)] == calendar.timegm(cert_day.timetuple())
    assert ("mailwizard_secret_expiry_timestamp_seconds", label) not in m
    mails = inbox(sandbox)
    assert len(mails) == 1 and "EWS in Exchange Online is switched off in" in mails[0].subject
    assert "Microsoft Graph" in mails[0].body

    cfg.microsoft.exchange = "on_premises"                   # Exchange Server keeps EWS: no such metric
    write(tmp_path, cfg)
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--config", path, "--no-alerts")
    assert ("mailwizard_ews_retirement_timestamp_seconds", label) not in metrics(out)


def test_init_takes_alerts_from_the_answers_file_and_keeps_existing_ones(tmp_path, sandbox, capsys):
    from wizard.cli.answers import gather
    from wizard.cli.main import build_parser
    answers = tmp_path / "answers.toml"
    answers.write_text('[alerts]\nto = ["it-ops@contoso.com"]\ndays_before = [21, 7]\n')
    args = build_parser().parse_args(["init", "--non-interactive", "--answers", str(answers)])
    got = gather(args, base=sandbox.config("client_secret"), env={})
    assert got.cfg.alerts.to == ["it-ops@contoso.com"] and got.cfg.alerts.thresholds() == [21, 7]
    existing = expiring_config(sandbox)
    args = build_parser().parse_args(["init", "--non-interactive"])
    assert gather(args, base=existing, env={}).cfg.alerts.to == [sample.RECIPIENT]


def test_the_relays_queue_is_a_metric(sandbox, tmp_path, capsys):
    """Issue 17: the relay's queue, when the config sets one up, from its spool."""
    from wizard.config.relay import Relay
    from wizard.relay.spool import Spool
    cfg = sandbox.config("client_secret", protocol="graph")
    path = write(tmp_path, cfg)
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--config", path)
    assert rc == 0 and not [key for key in metrics(out) if key[0].startswith("mailwizard_relay")]   # no relay

    cfg.relay = Relay(spool=str(tmp_path / "spool"))
    path = write(tmp_path, cfg)
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--config", path)
    m = metrics(out)
    label = frozenset({("profile", "mw"), ("state", "queued")})
    assert rc == 0 and m[("mailwizard_relay_messages", label)] == 0        # never ran: an empty queue

    spool = Spool(tmp_path / "spool").open()
    for n in range(3):
        spool.store(b"From: erp@contoso.com\r\nSubject: %d\r\n\r\nbody\r\n" % n, {"sender": sample.SENDER})
    spool.bury(spool.ids()[0], last_error="550 5.1.1 recipient unknown")
    spool.update(spool.ids()[0], attempts=1, next_attempt=time.time() + 600)
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--config", path)
    m = metrics(out)
    state = {s: m[("mailwizard_relay_messages", frozenset({("profile", "mw"), ("state", s)}))]
             for s in ("queued", "retrying", "dead")}
    assert state == {"queued": 1, "retrying": 1, "dead": 1}
    assert m[("mailwizard_relay_delivered_today", frozenset({("profile", "mw")}))] == 0


def test_the_textfile_and_the_printed_metrics_of_one_run_are_the_same(sandbox, tmp_path, capsys):
    """One check, one set of numbers: the run's time is when the check ran, not when each copy is written."""
    from wizard.check.engine import Report
    from wizard.monitor.metrics import render
    from wizard.monitor.watch import ProfileResult
    ran = ProfileResult("mw", str(tmp_path / "mw.toml"), Report(ok=True, steps=[]), ran_at=1_900_000_000.4)
    first = render([ran])
    assert render([ran]) == first
    assert metrics(first)[("mailwizard_check_timestamp_seconds", frozenset({("profile", "mw")}))] == 1_900_000_000

    path = write(tmp_path, sandbox.config("client_secret", protocol="graph"))
    textfile = tmp_path / "mailwizard.prom"
    before = time.time()
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--textfile", str(textfile), "--config", path)
    stamp = metrics(out)[("mailwizard_check_timestamp_seconds", frozenset({("profile", "mw")}))]
    assert rc == 0 and textfile.read_text() == out and round(before) <= stamp <= round(time.time())


def test_sent_alerts_whose_state_cannot_be_saved_say_so_and_are_not_unsent(sandbox, tmp_path, capsys, monkeypatch):
    from wizard.monitor import alerts
    blocked = tmp_path / "state"
    blocked.write_text("a file where the state folder should be: alerts.json cannot be written")
    monkeypatch.setattr(alerts, "state_path", lambda: blocked / "alerts.json")
    path = write(tmp_path, expiring_config(sandbox))
    rc, out, _ = run(capsys, "check", "--json", "--config", path)
    step = next(s for s in json.loads(out)["steps"] if s["id"] == "alerts")
    assert len(inbox(sandbox)) == 1                   # it went out
    assert step["status"] == "warn" and step["code"] == "alerts.state" and rc == 0
    assert "1 alert(s) sent, but" in step["summary"] and "next run sends them again" in step["summary"]
    assert "could not be sent" not in step["summary"] and "tried again" not in step["summary"]
    assert f"Make {blocked} writable" in step["fix"]
    rc, out, _ = run(capsys, "check", "--format", "prometheus", "--config", path)
    assert len(inbox(sandbox)) == 2                   # as it said: sent again
    assert metrics(out)[("mailwizard_alerts_unsent", frozenset({("profile", "mw")}))] == 0
