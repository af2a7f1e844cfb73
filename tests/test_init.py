"""`mailwizard init --non-interactive` and `mailwizard list`: scripting the
setup against the sandbox tenant, with no secret in any output."""

from __future__ import annotations

import json
import stat
import sys
from datetime import date, timedelta

import pytest

from cli_helpers import help_output
from wizard.config import files as config_io, drafts
from wizard.cli.answers import AnswerError, gather
from wizard.cli.main import build_parser
from wizard.cli.main import main
from wizard.sandbox import sample

SECRETS = (sample.SECRET_VALUE, sample.SERVICE_PASSWORD, sample.EXPIRED_SECRET_VALUE)


def _no_secret(text: str) -> None:
    for s in SECRETS:
        assert s not in text


def _output(capsys) -> str:
    got = capsys.readouterr()
    _no_secret(got.out)
    _no_secret(got.err)
    return got.out + got.err


def _target_flags(sb) -> list[str]:
    return ["--server", "127.0.0.1", "--port", str(sb.port), "--authority", sb.base_url, "--ca-bundle", sb.ca_path,
            "--sender", sample.SENDER]


def _secret_flags(sb) -> list[str]:
    expires = sb.config(flow="client_secret").auth.secret_expires
    return ["--tenant-id", sample.TENANT_ID, "--client-id", sample.SECRET_APP_ID,
            "--secret-expires", expires.isoformat()] + _target_flags(sb)


def _init(*argv) -> int:
    return main(["init", "--non-interactive", *argv])


def test_client_secret_flow_from_env_writes_a_config_that_check_passes(tmp_path, sandbox, monkeypatch, capsys):
    monkeypatch.setenv("MAILWIZARD_CLIENT_SECRET", sample.SECRET_VALUE)
    path = tmp_path / "erp.toml"
    rc = _init("--config", str(path), *_secret_flags(sandbox), "--account", sample.INCOMING[0],
               "--account", sample.INCOMING[1], "--system", "efecte_esm")
    out = _output(capsys)
    assert rc == 0, out
    assert "mailwizard init" in out and "Result: OK" in out and f"Wrote {path}" in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = config_io.load(path)
    assert cfg.system == "efecte_esm" and cfg.auth.client_secret == sample.SECRET_VALUE
    assert [a.address for a in cfg.incoming.accounts] == sample.INCOMING
    monkeypatch.delenv("MAILWIZARD_CLIENT_SECRET")
    assert main(["check", "--config", str(path)]) == 0
    _output(capsys)


def test_password_flow_from_a_file_kept_as_a_reference(tmp_path, sandbox, capsys):
    secret_file = tmp_path / "pw"
    secret_file.write_text(sample.SERVICE_PASSWORD + "\n")
    secret_file.chmod(0o600)
    path = tmp_path / "pw.toml"
    rc = _init("--config", str(path), "--flow", "password", "--tenant-id", sample.DOMAIN,
               "--client-id", sample.PASSWORD_APP_ID, "--username", sample.SERVICE_USER,
               "--password-file", str(secret_file), "--keep-references", "--json", *_target_flags(sandbox))
    got = capsys.readouterr()
    _no_secret(got.out + got.err)
    assert rc == 0, got
    data = json.loads(got.out)                       # exactly one JSON object, as `check --json`
    assert data["ok"] is True and {s["id"] for s in data["steps"]} >= {"token", "claims", "mailbox"}
    assert set(data["steps"][0]) == {"id", "status", "ms", "summary", "code", "fix"}
    text = path.read_text()
    assert sample.SERVICE_PASSWORD not in text and f'password = "file:{secret_file}"' in text
    assert main(["check", "--config", str(path)]) == 0
    _output(capsys)


def test_literal_password_from_file_is_stored_in_a_0600_file(tmp_path, sandbox, capsys):
    secret_file = tmp_path / "pw"
    secret_file.write_text(sample.SERVICE_PASSWORD)
    secret_file.chmod(0o644)
    path = tmp_path / "pw.toml"
    rc = _init("--config", str(path), "--flow", "password", "--tenant-id", sample.TENANT_ID,
               "--client-id", sample.PASSWORD_APP_ID, "--username", sample.SERVICE_USER,
               "--password-file", str(secret_file), *_target_flags(sandbox))
    out = _output(capsys)
    assert rc == 0, out
    assert "can be read by other users" in out             # the world-readable secret file is pointed out
    assert config_io.load(path).auth.password == sample.SERVICE_PASSWORD
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failing_test_writes_nothing_and_exits_1(tmp_path, sandbox, monkeypatch, capsys):
    monkeypatch.setenv("WRONG", sample.EXPIRED_SECRET_VALUE)
    path = tmp_path / "sub" / "erp.toml"
    rc = _init("--config", str(path), *_secret_flags(sandbox), "--client-secret-env", "WRONG")
    out = _output(capsys)
    assert rc == 1
    assert "FAILED" in out and "Not written" in out and "--save-anyway" in out
    assert not path.exists() and not path.parent.exists()

    # an existing config is left exactly as it was
    good = config_io.save(sandbox.config(flow="client_secret"), tmp_path / "good.toml")
    before = good.read_bytes()
    assert _init("--config", str(good), "--client-secret-env", "WRONG") == 1
    _output(capsys)
    assert good.read_bytes() == before and not config_io.backup_path(good).exists()

    # --save-anyway writes, and still says the test failed
    assert _init("--config", str(path), *_secret_flags(sandbox), "--client-secret-env", "WRONG", "--save-anyway") == 1
    assert "although the test failed" in _output(capsys)
    assert path.exists()


@pytest.mark.parametrize("extra, env, field, words", [
    (["--tenant-id", "common"], {}, "[microsoft.tenant_id] (from --tenant-id)", "not allowed"),
    (["--client-id", "not-a-guid"], {}, "[microsoft.client_id] (from --client-id)", "GUID"),
    (["--port", "44x"], {}, "[outgoing.port] (from --port)", "whole number"),
    (["--sender", "erp"], {}, "[outgoing.sender] (from --sender)", "not an e-mail address"),
    (["--secret-expires", "2001-01-01"], {}, "[auth.secret_expires] (from --secret-expires)", "in the past"),
    (["--flow", "magic"], {}, "[auth.flow] (from --flow)", "unknown flow"),
    ([], {"MAILWIZARD_CLIENT_SECRET": sample.SECRET_ID}, "[auth.client_secret] (from $MAILWIZARD_CLIENT_SECRET)", "Secret ID"),
    (["--client-secret-env", "NOT_SET_ANYWHERE"], {}, "[auth.client_secret] (from --client-secret-env NOT_SET_ANYWHERE)", "not set"),
    ([], {"MAILWIZARD_POLL_MINUTES": "0"}, "[incoming.poll_minutes] (from $MAILWIZARD_POLL_MINUTES)", "from 1 to 1440"),
    (["--account", "orders"], {}, "[incoming.accounts[0].address] (from --account)", "not an e-mail"),
    (["--ca-bundle", "/no/such/ca.pem"], {}, "[endpoints.ca_bundle] (from --ca-bundle)", "does not exist"),
    (["--username", sample.SERVICE_USER], {}, "[auth.username] (from --username)", "belongs to the password flow"),
])
def test_a_bad_value_exits_2_naming_the_field(tmp_path, sandbox, monkeypatch, capsys, extra, env, field, words):
    monkeypatch.setenv("MAILWIZARD_CLIENT_SECRET", sample.SECRET_VALUE)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "x.toml"
    assert _init("--config", str(path), *_secret_flags(sandbox), *extra) == 2
    got = capsys.readouterr()
    _no_secret(got.out + got.err)
    assert field in got.err and words in got.err and "Traceback" not in got.err
    assert not path.exists() and sandbox.requests == []         # refused before any network call
    assert _init("--config", str(path), *_secret_flags(sandbox), *extra, "--json") == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and field in data["steps"][0]["summary"]


def test_every_bad_value_is_listed_at_once(tmp_path, capsys):
    path = tmp_path / "x.toml"
    assert _init("--config", str(path), "--tenant-id", "common", "--sender", "erp", "--port", "0",
                 "--client-id", sample.SECRET_APP_ID) == 2
    err = capsys.readouterr().err
    for text in ("[microsoft.tenant_id] (from --tenant-id)", "[outgoing.sender] (from --sender)",
                 "[outgoing.port] (from --port)",
                 "[auth.client_secret] (not given: use --client-secret-env NAME, --client-secret-file FILE"):
        assert text in err
    assert "client_id" not in err and not path.exists()


def test_a_secret_is_never_taken_twice_and_a_plain_flag_warns(tmp_path, sandbox, capsys):
    with pytest.raises(SystemExit) as e:
        main(["init", "--non-interactive", "--client-secret-env", "A", "--client-secret-file", "B"])
    assert e.value.code == 2
    capsys.readouterr()
    path = tmp_path / "p.toml"
    assert _init("--config", str(path), *_secret_flags(sandbox), "--client-secret", sample.SECRET_VALUE) == 0
    out = _output(capsys)
    assert "shell history" in out


def test_answers_file_with_a_reference(tmp_path, sandbox, monkeypatch, capsys):
    monkeypatch.setenv("ERP_SECRET", sample.SECRET_VALUE)
    expires = sandbox.config(flow="client_secret").auth.secret_expires
    answers = tmp_path / "answers.toml"
    answers.write_text(f"""
system = "monitor_g5"
[microsoft]
tenant_id = " 5f8d 2c1a 7b3e 4a9d 8c6f 1e2d 3b4a 5c6d "
client_id = "{sample.SECRET_APP_ID}"
[auth]
flow = "client_secret"
client_secret = "env:ERP_SECRET"
secret_expires = {expires.isoformat()}
[outgoing]
server = "127.0.0.1"
port = {sandbox.port}
sender = "{sample.SENDER}"
test_recipient = "{sample.RECIPIENT}"
[incoming]
poll_minutes = 15
[[incoming.accounts]]
address = "orders@contoso.com"
types = ["Monitor-to-Monitor"]
[endpoints]
authority = "{sandbox.base_url}"
ca_bundle = "{sandbox.ca_path}"
""")
    path = tmp_path / "a.toml"
    assert _init("--config", str(path), "--answers", str(answers), "--send-to", sample.RECIPIENT) == 0
    out = _output(capsys)
    assert "removed surrounding spaces" in out
    assert "send     Sent" in out                      # --send-to adds the send step, as in `check`
    cfg = config_io.load(path)
    assert cfg.auth.client_secret == "env:ERP_SECRET"          # the user's own reference is kept
    assert cfg.microsoft.tenant_id == sample.TENANT_ID and cfg.incoming.poll_minutes == 15
    assert cfg.incoming.accounts[0].types == ["Monitor-to-Monitor"]
    assert sample.SECRET_VALUE not in path.read_text()

    bad = tmp_path / "bad.toml"
    bad.write_text("[outgoing]\nport = \"x\"\n")
    assert _init("--config", str(tmp_path / "b.toml"), "--answers", str(bad)) == 2
    err = capsys.readouterr().err
    assert "[outgoing.port]" in err and f"answers file {bad}:2" in err
    assert _init("--config", str(tmp_path / "b.toml"), "--answers", str(tmp_path / "none.toml")) == 2
    assert "[--answers]" in capsys.readouterr().err


def _args(*argv):
    return build_parser().parse_args(["init", "--non-interactive", *argv])


def test_precedence_flags_env_answers_existing_defaults(tmp_path, sandbox):
    existing = sandbox.config(flow="client_secret", sender="existing@contoso.com", poll_minutes=5,
                              test_recipient="existing.rcpt@contoso.com")
    existing.incoming.poll_minutes = 5
    answers = tmp_path / "answers.toml"
    answers.write_text('[outgoing]\nsender = "answers@contoso.com"\nserver = "answers.example.com"\n'
                       '[incoming]\npoll_minutes = 7\n')
    env = {"MAILWIZARD_SENDER": "env@contoso.com", "MAILWIZARD_SERVER": "env.example.com"}

    a = gather(_args("--answers", str(answers), "--sender", "flag@contoso.com"), base=existing, env=env)
    c = a.cfg
    assert c.outgoing.sender == "flag@contoso.com" and a.sources["outgoing.sender"] == "--sender"
    assert c.outgoing.server == "env.example.com" and a.sources["outgoing.server"] == "$MAILWIZARD_SERVER"
    assert c.incoming.poll_minutes == 7 and a.sources["incoming.poll_minutes"].startswith("answers file")
    assert c.outgoing.test_recipient == "existing.rcpt@contoso.com"
    assert a.sources["outgoing.test_recipient"] == "existing config"
    assert c.auth.client_secret == sample.SECRET_VALUE                  # kept from the existing config

    assert gather(_args("--answers", str(answers)), base=existing, env=env).cfg.outgoing.sender == "env@contoso.com"
    assert gather(_args("--answers", str(answers)), base=existing, env={}).cfg.outgoing.sender == "answers@contoso.com"
    assert gather(_args(), base=existing, env={}).cfg.outgoing.sender == "existing@contoso.com"
    with pytest.raises(AnswerError) as e:                               # defaults: no sender at all
        gather(_args("--tenant-id", sample.TENANT_ID, "--client-id", sample.SECRET_APP_ID),
               env={"MAILWIZARD_CLIENT_SECRET": sample.SECRET_VALUE})
    assert e.value.field == "outgoing.sender" and e.value.source.startswith("not given: use --sender")
    d = gather(_args("--tenant-id", sample.TENANT_ID, "--client-id", sample.SECRET_APP_ID, "--sender", sample.SENDER),
               env={"MAILWIZARD_CLIENT_SECRET": sample.SECRET_VALUE}).cfg
    assert (d.outgoing.server, d.outgoing.port, d.system) == ("outlook.office365.com", 443, "monitor_g5")
    assert d.auth.client_secret == sample.SECRET_VALUE


def test_references_and_switching_flow(tmp_path, sandbox, monkeypatch):
    env = {"MAILWIZARD_CLIENT_SECRET": sample.SECRET_VALUE, "PW": sample.SERVICE_PASSWORD}
    for k, v in env.items():     # references are resolved from the process environment
        monkeypatch.setenv(k, v)
    base = sandbox.config(flow="client_secret")
    kept = gather(_args(), base=base, env=env, keep_references=True).cfg
    assert kept.auth.client_secret == "env:MAILWIZARD_CLIENT_SECRET"
    literal = gather(_args(), base=base, env=env).cfg
    assert literal.auth.client_secret == sample.SECRET_VALUE
    # switching an existing client-secret config to the password flow drops the secret
    # (and the ambient $MAILWIZARD_CLIENT_SECRET) instead of refusing the mix
    pw = gather(_args("--flow", "password", "--client-id", sample.PASSWORD_APP_ID, "--username", sample.SERVICE_USER,
                      "--password-env", "PW"), base=base, env=env).cfg
    assert pw.auth.flow == "password" and pw.auth.client_secret == "" and pw.auth.secret_expires is None
    assert pw.auth.password == sample.SERVICE_PASSWORD


def test_profile_and_draft_is_discarded_on_save(sandbox, monkeypatch, capsys):
    monkeypatch.delenv("MAILWIZARD_CONFIG")
    monkeypatch.setenv("MAILWIZARD_CLIENT_SECRET", sample.SECRET_VALUE)
    target = config_io.profile_path("staging")
    drafts.save_draft(target, sandbox.config(), "ids", keep_secrets=False)
    assert main(["--profile", "staging", "init", "--non-interactive", *_secret_flags(sandbox)]) == 0
    _output(capsys)
    assert target.exists() and not config_io.default_path().exists()
    assert drafts.load_draft(target) is None
    assert main(["check", "--profile", "staging"]) == 0
    _output(capsys)


def test_without_non_interactive_and_no_terminal_it_says_so(capsys):
    assert main(["init"]) == 2
    err = capsys.readouterr().err
    assert "needs an interactive terminal" in err and "--non-interactive" in err


def test_no_color_means_no_escape_codes(tmp_path, sandbox, monkeypatch, capsys):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("WRONG", sample.EXPIRED_SECRET_VALUE)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    argv = ["--config", str(tmp_path / "c.toml"), *_secret_flags(sandbox), "--client-secret-env", "WRONG"]
    assert _init(*argv) == 1
    assert "\x1b[" in _output(capsys)            # on a colour terminal the verdict is coloured ...
    monkeypatch.setenv("NO_COLOR", "1")
    assert _init(*argv) == 1
    out = _output(capsys)
    assert "\x1b" not in out and "✗ FAIL" in out and "FAILED" in out   # ... with NO_COLOR: words and symbols only


def _profile(sandbox, name, flow, expires=None):
    cfg = sandbox.config(flow=flow)
    if flow == "client_secret":
        cfg.auth.secret_expires = expires
    return config_io.save(cfg, config_io.profile_path(name))


def test_list_shows_profiles_with_days_left_and_drafts(sandbox, monkeypatch, capsys):
    monkeypatch.delenv("MAILWIZARD_CONFIG")
    soon = date.today() + timedelta(days=10)
    later = date.today() + timedelta(days=200)
    _profile(sandbox, "test", "client_secret", soon)
    prod = _profile(sandbox, "production", "client_secret", later)
    pw = _profile(sandbox, "legacy", "password")
    drafts.save_draft(prod, sandbox.config(), "mail", keep_secrets=False)
    drafts.save_draft(config_io.profile_path("new"), sandbox.config(), "ids", keep_secrets=False)

    assert main(["list"]) == 0
    out = _output(capsys)
    assert "production" in out and "test" in out and "legacy" in out
    assert "WARNING: secret expires in 10 days" in out
    assert "(200 days left)" in out
    assert "unfinished wizard at the 'mail' step" in out
    assert "new" in out and "(not saved yet)" in out
    assert "\x1b" not in out

    assert main(["--profile", "test", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["configs"]
    by = {c["name"]: c for c in data}
    assert set(by) == {"production", "test", "legacy", "new"}
    assert by["test"]["days_left"] == 10 and by["test"]["expiry_warning"] and by["test"]["active"] is True
    assert by["production"]["draft"]["stage"] == "mail" and by["production"]["expiry_warning"] is None
    assert by["legacy"]["flow"] == "password" and by["legacy"]["secret_expires"] is None
    assert by["legacy"]["path"] == str(pw) and by["legacy"]["draft"] is None
    assert by["new"]["exists"] is False
    assert by["test"]["tenant_id"] == sample.TENANT_ID and by["test"]["sender"] == sample.SENDER


def test_list_with_nothing_yet(monkeypatch, capsys):
    monkeypatch.delenv("MAILWIZARD_CONFIG")
    assert main(["list"]) == 0
    assert "No config yet" in capsys.readouterr().out
    assert main(["list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"configs": []}


@pytest.mark.parametrize("argv", [["init", "--help"], ["list", "--help"]])
def test_help_is_light(argv):
    out = help_output(argv, ('textual', 'msal', 'exchangelib', 'tomlkit'))
    assert out.strip().splitlines()[-1] == "[]"


def test_list_shows_the_config_chosen_by_the_environment(tmp_path, sandbox, monkeypatch, capsys):
    chosen = config_io.save(sandbox.config(flow="password"), tmp_path / "config" / "mailwizard.toml")
    assert main(["list", "--json"]) == 0
    [item] = json.loads(capsys.readouterr().out)["configs"]
    assert item["name"] == "($MAILWIZARD_CONFIG)" and item["active"] and item["path"] == str(chosen)
    chosen.write_text("[auth]\nflow = 3\n")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ERROR" in out and "auth.flow" in out and "* ($MAILWIZARD_CONFIG)" in out


def test_list_offers_the_demo_to_continue_a_demo_draft(sandbox, monkeypatch, capsys):
    """A draft of `mailwizard demo` (its config is demo.toml beside the default config) is
    continued with `mailwizard demo`, which starts a new sandbox; `mailwizard --config
    .../demo.toml` would open the wizard against a sandbox that is gone (issue 14 item 12)."""
    monkeypatch.delenv("MAILWIZARD_CONFIG")
    demo = config_io.default_path().parent / "demo.toml"
    drafts.save_draft(demo, sandbox.config(), "ids", keep_secrets=False)
    drafts.save_draft(config_io.profile_path("next"), sandbox.config(), "mail", keep_secrets=False)
    assert main(["list"]) == 0
    out = _output(capsys)
    assert "continue it with `mailwizard demo`" in out
    assert f"--config {demo}" not in out
    assert "continue it with `mailwizard --profile next`" in out
    assert main(["list", "--json"]) == 0
    by = {c["name"]: c for c in json.loads(capsys.readouterr().out)["configs"]}
    assert by["demo"]["demo"] is True and by["demo"]["draft"]["resume"] == "mailwizard demo"
    assert by["next"]["demo"] is False and by["next"]["draft"]["resume"] == "mailwizard --profile next"


# -- issue 14, item 17: the flags of every shape ---------------------------------------------------

def test_help_names_every_flow_the_protocol_and_servers_of_each_protocol(capsys):
    with pytest.raises(SystemExit):
        main(["init", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--flow FLOW client_secret | password | certificate | device_code" in text
    assert "--protocol NAME ews | graph | smtp+imap" in text
    server = text.split("--server HOST ")[-1][:120]
    assert server.startswith("outgoing server: EWS") and "SMTP" in server
    assert "--incoming-server HOST" in text and "--certificate PEM" in text and "--thumbprint HEX" in text


def test_protocol_flag_and_smtp_defaults(sandbox, tmp_path, capsys, monkeypatch):
    from wizard.config.clouds import SMTP_PORT
    monkeypatch.setenv("MAILWIZARD_CLIENT_SECRET", sample.SECRET_VALUE)
    args = build_parser().parse_args(["init", "--non-interactive", "--protocol", "smtp+imap",
                                      "--tenant-id", sample.TENANT_ID, "--client-id", sample.SECRET_APP_ID,
                                      "--sender", sample.SENDER])
    cfg = gather(args).cfg
    assert (cfg.outgoing.protocol, cfg.incoming.protocol) == ("smtp", "imap")
    assert (cfg.outgoing.server, cfg.outgoing.port) == ("smtp.office365.com", SMTP_PORT)
    monkeypatch.setenv("MAILWIZARD_PROTOCOL", "graph")
    assert gather(build_parser().parse_args(["init", "--non-interactive", "--tenant-id", sample.TENANT_ID,
                                             "--client-id", sample.SECRET_APP_ID, "--sender", sample.SENDER])
                  ).cfg.outgoing.protocol == "graph"
    rc = _init("--config", str(tmp_path / "x.toml"), *_secret_flags(sandbox), "--protocol", "pop3")
    err = _output(capsys)
    assert rc == 2 and "[protocol] (from --protocol) unknown protocol 'pop3'" in err and "smtp+imap" in err


def test_certificate_flow_from_flags(sandbox, tmp_path, capsys):
    cert = sandbox.config("certificate")
    path = tmp_path / "cert.toml"
    rc = _init("--config", str(path), "--flow", "certificate", "--tenant-id", sample.TENANT_ID,
               "--client-id", sample.SECRET_APP_ID, "--certificate", cert.auth.certificate,
               "--thumbprint", cert.auth.thumbprint, *_target_flags(sandbox))
    out = _output(capsys)
    assert rc == 0, out
    saved = config_io.load(path)
    assert (saved.auth.flow, saved.auth.thumbprint) == ("certificate", cert.auth.thumbprint)


def test_account_flag_says_which_existing_accounts_it_replaces(sandbox, tmp_path, capsys, monkeypatch):
    path = config_io.save(sandbox.config(), tmp_path / "mw.toml")          # reads both sample.INCOMING
    rc = _init("--config", str(path), "--account", sample.INCOMING[0], "--save-anyway")
    out = _output(capsys)
    assert rc == 0, out
    assert f"--account replaces the incoming accounts (existing config): {sample.INCOMING[1]} will no " \
           "longer be read" in " ".join(out.split())
    assert [a.address for a in config_io.load(path).incoming.accounts] == [sample.INCOMING[0]]


@pytest.mark.parametrize("as_json", [False, True])
def test_config_and_profile_together_are_refused(tmp_path, capsys, monkeypatch, as_json):
    import wizard.check.engine as conntest
    monkeypatch.setattr(conntest, "run_check", lambda *a, **k: pytest.fail("the test ran"))
    rc = main(["--profile", "production", "init", "--non-interactive", "--config", str(tmp_path / "x.toml")]
              + (["--json"] if as_json else []))
    got = capsys.readouterr()
    assert rc == 2
    text = json.loads(got.out)["steps"][0]["summary"] if as_json else got.err
    assert "--config" in text and "--profile production" in text and "two different configs" in text
    assert not (tmp_path / "x.toml").exists() and not config_io.profile_path("production").exists()
