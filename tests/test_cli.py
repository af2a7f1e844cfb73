"""The command line as scripts and admins use it: fast help, exit codes,
masked output."""

from __future__ import annotations

import json

import pytest

from cli_helpers import help_output
from wizard.config import files as config_io
from wizard.cli.main import main
from wizard.sandbox import sample

HEAVY = ("textual", "msal", "exchangelib")


@pytest.mark.parametrize("argv", [["--help"], ["check", "--help"], ["show", "--help"]])
def test_help_answers_without_importing_textual_msal_or_exchangelib(argv):
    out = help_output(argv, HEAVY)
    assert "usage: mailwizard" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_unknown_option_is_a_usage_error_with_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["check", "--no-such-flag"])
    assert e.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_check_on_a_missing_file_exits_2_and_json_stays_one_object(tmp_path, capsys):
    missing = tmp_path / "nope.toml"
    assert main(["check", "--config", str(missing)]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["check", "--json", "--config", str(missing)]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["steps"][0]["id"] == "config"
    assert data["steps"][0]["status"] == "fail" and data["steps"][0]["fix"]


def test_show_masks_the_secret_and_groups_ids(tmp_path, capsys, sandbox):
    path = config_io.save(sandbox.config(flow="client_secret"), tmp_path / "mw.toml")
    assert main(["show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert sample.SECRET_VALUE not in out
    assert sample.SECRET_VALUE[:3] + "********" in out
    assert "3f6a 9c2e 8b1d 4c5e 9a7f 2d4b 6e8c 0a1f" in out


def test_show_reads_out_every_server_and_port(tmp_path, capsys, sandbox):
    """A support call reads `show` aloud: SMTP and IMAP give their server and port
    (as the EWS URL does), the ports the runtime connects to."""
    cfg = sandbox.config(flow="client_secret", protocol="smtp+imap")
    cfg.system = "efecte_esm"
    path = config_io.save(cfg, tmp_path / "esm.toml")
    assert main(["show", "--config", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    outgoing = next(line for line in lines if line.startswith("outgoing"))
    incoming = next(line for line in lines if line.startswith("incoming"))
    assert f"smtp 127.0.0.1, port {sandbox.smtp_port} (STARTTLS)" in outgoing
    assert f"imap 127.0.0.1, port {sandbox.imap_port} (TLS)" in incoming and "every 60 min" in incoming
    from wizard.cli.show import render
    from wizard.config.schema import Config
    cloud = Config()                        # Exchange Online defaults: empty IMAP server, port 0
    cloud.outgoing.protocol, cloud.outgoing.server, cloud.outgoing.port = "smtp", "smtp.office365.com", 587
    cloud.incoming.protocol = "imap"
    text = render(cloud, "mw.toml")
    assert "smtp smtp.office365.com, port 587 (STARTTLS)" in text
    assert "imap outlook.office365.com, port 993 (TLS)" in text
    cloud.outgoing.protocol, cloud.outgoing.port, cloud.incoming.protocol = "ews", 443, "ews"
    assert "ews https://smtp.office365.com:443/EWS/Exchange.asmx" in render(cloud, "mw.toml")


def test_profiles_keep_configs_side_by_side(tmp_path, capsys, sandbox, monkeypatch):
    monkeypatch.delenv("MAILWIZARD_CONFIG", raising=False)
    from wizard.config.files import list_profiles, profile_path
    config_io.save(sandbox.config(flow="client_secret"), profile_path("test"))
    config_io.save(sandbox.config(flow="password"), profile_path("production"))
    assert [name for name, _ in list_profiles()] == ["production", "test"]
    assert main(["--profile", "production", "show"]) == 0
    assert "User name & password" in capsys.readouterr().out
    assert main(["show", "--profile", "test"]) == 0
    assert "Client secret" in capsys.readouterr().out
    assert main(["--profile", "../etc", "show"]) == 2
    assert "--profile" in capsys.readouterr().err


WIZARD_STARTS = [[], ["wizard"], ["--config", "a.toml"], ["--config=a.toml"], ["wizard", "--config", "a.toml"],
                 ["--profile", "test"], ["wizard", "--profile=prod"], ["--config", "a.toml", "--profile", "p"],
                 ["--config", "a.toml", "--config", "b.toml"], ["wizard", "--profile", "p", "--config=c d.toml"]]


@pytest.mark.parametrize("argv", WIZARD_STARTS, ids=" ".join)
def test_quick_start_reads_the_wizard_options_as_the_parser_does(argv):
    """`mailwizard [wizard] [--config PATH] [--profile NAME]` skips building the
    parser; what it reads must be exactly what the parser would."""
    from wizard.cli.main import build_parser, quick_wizard_args
    quick = quick_wizard_args(argv)
    parsed = build_parser().parse_args(argv)
    assert quick is not None
    assert (quick.command, quick.config, quick.profile) == \
        (parsed.command or "wizard", getattr(parsed, "config", None), getattr(parsed, "profile", None))


@pytest.mark.parametrize("argv", [["--help"], ["wizard", "--help"], ["--conf", "a.toml"], ["--config"],
                                  ["--config", "--profile", "x"], ["--config="], ["check"], ["demo"],
                                  ["wizard", "wizard"], ["--version"]], ids=" ".join)
def test_anything_else_goes_to_the_parser(argv):
    from wizard.cli.main import quick_wizard_args
    assert quick_wizard_args(argv) is None


def test_a_quick_start_still_names_a_bad_profile(capsys, monkeypatch):
    assert main(["wizard", "--profile", "no/such"]) == 2
    err = capsys.readouterr().err
    assert "profile" in err and "Traceback" not in err
