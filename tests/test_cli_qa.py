"""Bad input an admin gives the CLI by hand (QA pass): each gets a clear
message naming the flag, variable or field, the documented exit code, and no
traceback or secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wizard.config import files as config_io
from wizard.cli.main import main
from wizard.config.schema import ConfigError, resolve_secret
from wizard.config.fields import check_email
from wizard.sandbox import sample


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert sample.SECRET_VALUE not in out + err and sample.SERVICE_PASSWORD not in out + err
    return rc, out, err


def write(tmp_path, cfg, name="mw.toml") -> str:
    return str(config_io.save(cfg, tmp_path / name))


# -- where the config comes from ---------------------------------------------------------------

@pytest.mark.parametrize("argv", [["check"], ["show"], ["report"], ["list"], ["export", "sheet"],
                                  ["poll", "--once"], ["init", "--non-interactive"], []])
def test_invalid_profile_in_the_environment_is_a_usage_error(capsys, monkeypatch, argv):
    monkeypatch.delenv("MAILWIZARD_CONFIG", raising=False)
    monkeypatch.setenv("MAILWIZARD_PROFILE", "bad name")
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert "$MAILWIZARD_PROFILE" in err and "bad name" in err


def test_invalid_profile_in_the_environment_with_json_prints_one_object(capsys, monkeypatch):
    monkeypatch.delenv("MAILWIZARD_CONFIG", raising=False)
    monkeypatch.setenv("MAILWIZARD_PROFILE", "../etc")
    rc, out, _ = run(capsys, "check", "--json")
    data = json.loads(out)
    assert rc == 2 and data["ok"] is False and "$MAILWIZARD_PROFILE" in data["steps"][0]["summary"]


@pytest.mark.parametrize("argv, flag", [
    (["check", "--config", ""], "--config"),
    (["--config", "", "show"], "--config"),
    (["--profile", "", "check"], "--profile"),
    (["show", "--profile", ""], "--profile"),
])
def test_empty_config_or_profile_does_not_fall_back_to_the_default(capsys, tmp_path, monkeypatch, argv, flag):
    default = tmp_path / "config" / "mailwizard.toml"      # exists, so a fall-back would "work"
    default.parent.mkdir(parents=True, exist_ok=True)
    default.write_text("version = 1\n")
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and f"{flag} is empty" in err


def test_empty_send_to_is_an_error_not_a_skipped_send(sandbox, tmp_path, capsys):
    path = write(tmp_path, sandbox.config())
    rc, _, err = run(capsys, "check", "--config", path, "--send-to", "")
    assert rc == 2 and "--send-to is empty" in err
    rc, out, _ = run(capsys, "check", "--config", path, "--send-to", "", "--json")
    step = json.loads(out)["steps"][0]
    assert rc == 2 and "--send-to" in step["summary"] and "in the file" not in step["fix"]


def test_bad_environment_bound_with_json_does_not_blame_the_file(sandbox, tmp_path, capsys, monkeypatch):
    path = write(tmp_path, sandbox.config())
    monkeypatch.setenv("MAILWIZARD_TIMEOUT", "abc")
    rc, out, _ = run(capsys, "check", "--config", path, "--json")
    step = json.loads(out)["steps"][0]
    assert rc == 2 and "MAILWIZARD_TIMEOUT" in step["summary"] and "environment variable" in step["fix"]


# -- the config file ------------------------------------------------------------------------------

def test_config_with_a_utf8_bom_loads(sandbox, tmp_path):
    path = Path(write(tmp_path, sandbox.config()))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())        # as Windows Notepad saves it
    cfg = config_io.load(path)
    assert cfg.microsoft.tenant_id == sample.TENANT_ID


def test_config_that_is_not_text_says_so(tmp_path, capsys):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\xd0\xff\xfe")
    rc, _, err = run(capsys, "check", "--config", str(path))
    assert rc == 2 and "not a UTF-8 text file" in err and "codec" not in err


def test_duplicate_key_message(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text("version = 1\nversion = 1\n")
    with pytest.raises(ConfigError) as info:
        config_io.load(path)
    assert "already exists. Each key may appear only once" in info.value.render()
    assert ".." not in info.value.render()


@pytest.mark.parametrize("server", ["https://outlook.office365.com/EWS/Exchange.asmx", "outlook.office365.com/EWS"])
def test_server_given_as_url_is_refused_in_the_file(sandbox, tmp_path, server):
    path = Path(write(tmp_path, sandbox.config()))
    text = path.read_text().replace('server = "127.0.0.1"', f'server = "{server}"')
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config_io.load(path)
    assert info.value.field == "outgoing.server" and "host name only" in info.value.message


def test_overlong_address_is_refused_before_any_request():
    assert check_email("a" * 65 + "@contoso.com").error
    assert check_email("b" * 60 + "@" + "c" * 200 + ".com").error
    assert check_email("erp@contoso.com").ok


# -- env: and file: references ----------------------------------------------------------------------

def test_env_reference_to_an_empty_variable(monkeypatch):
    monkeypatch.setenv("QA_EMPTY", "")
    with pytest.raises(ConfigError, match="QA_EMPTY, which is empty"):
        resolve_secret("env:QA_EMPTY", "auth.client_secret")
    with pytest.raises(ConfigError, match="no variable name after 'env:'"):
        resolve_secret("env:", "auth.client_secret")


def test_file_reference_edge_cases(tmp_path):
    with pytest.raises(ConfigError, match="no path after 'file:'"):
        resolve_secret("file:", "auth.client_secret")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="which is empty"):
        resolve_secret(f"file:{empty}", "auth.client_secret")
    binary = tmp_path / "utf16"
    binary.write_bytes("secret".encode("utf-16"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        resolve_secret(f"file:{binary}", "auth.client_secret")
    bom = tmp_path / "bom"
    bom.write_bytes(b"\xef\xbb\xbf" + sample.SECRET_VALUE.encode() + b"\r\n")
    assert resolve_secret(f"file:{bom}", "auth.client_secret") == sample.SECRET_VALUE


@pytest.mark.parametrize("command", [["check"], ["show"], ["report"], ["list"],
                                     ["send", "--to", "a@contoso.com", "--subject", "x"]])
def test_secret_file_that_is_not_text_is_no_traceback(sandbox, tmp_path, capsys, command):
    cfg = sandbox.config()
    cfg.auth.client_secret = f"file:{tmp_path / 'secret.bin'}"
    (tmp_path / "secret.bin").write_bytes(b"\xff\xfe\x00\xd8")
    path = write(tmp_path, cfg)
    rc, out, err = run(capsys, *command, "--config", path)
    assert rc in (0, 2)
    if rc == 2:
        assert "not UTF-8 text" in err


# -- sandbox -----------------------------------------------------------------------------------------

def test_sandbox_write_config_to_a_directory_is_a_usage_error(tmp_path, capsys):
    rc, _, err = run(capsys, "sandbox", "--write-config", str(tmp_path))
    assert rc == 2 and "--write-config" in err


def test_sandbox_write_config_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    def refuse(cfg, path):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(config_io, "save", refuse)
    rc, _, err = run(capsys, "sandbox", "--write-config", str(tmp_path / "ro" / "x.toml"))
    assert rc == 1 and "cannot write --write-config" in err and "Operation not permitted" in err


@pytest.mark.parametrize("value", ["-1", "nan", "abc", "1000"])
def test_sandbox_latency_must_be_a_sane_number(capsys, value):
    with pytest.raises(SystemExit) as info:
        main(["sandbox", "--latency", value])
    assert info.value.code == 2
    assert "--latency" in capsys.readouterr().err


# -- send -------------------------------------------------------------------------------------------

def test_send_names_the_attachment_that_cannot_be_read(sandbox, tmp_path, capsys):
    path = write(tmp_path, sandbox.config())
    rc, _, err = run(capsys, "send", "--config", path, "--to", sample.RECIPIENT, "--subject", "x",
                     "--attach", str(tmp_path / "missing.pdf"))
    assert rc == 2
    assert err.strip() == f"mailwizard send: --attach {tmp_path / 'missing.pdf'}: No such file or directory"


def test_send_body_file_error_names_the_flag(sandbox, tmp_path, capsys):
    path = write(tmp_path, sandbox.config())
    rc, _, err = run(capsys, "send", "--config", path, "--to", sample.RECIPIENT, "--subject", "x",
                     "--body-file", str(tmp_path))
    assert rc == 2 and f"--body-file {tmp_path}: Is a directory" in err


@pytest.mark.parametrize("to", ["", " , "])
def test_send_with_empty_to(sandbox, tmp_path, capsys, to):
    path = write(tmp_path, sandbox.config())
    rc, _, err = run(capsys, "send", "--config", path, "--to", to, "--subject", "x")
    assert rc == 2 and "--to is empty" in err


def test_send_unknown_from_is_not_blamed_on_the_service(sandbox, tmp_path, capsys):
    path = write(tmp_path, sandbox.config())
    rc, _, err = run(capsys, "send", "--config", path, "--to", sample.RECIPIENT, "--subject", "x",
                     "--from", "NOBODY")
    assert rc == 2 and "NOBODY" in err and "service said" not in err


def test_send_overlong_subject_over_ews_is_a_usage_error(sandbox, tmp_path, capsys):
    path = write(tmp_path, sandbox.config())
    rc, _, err = run(capsys, "send", "--config", path, "--to", sample.RECIPIENT, "--subject", "x" * 300)
    assert rc == 2 and "at most 255" in err and "did not expect" not in err


# -- cert / init ------------------------------------------------------------------------------------

def test_cert_show_of_a_file_that_is_no_certificate(tmp_path, capsys):
    path = tmp_path / "mw.toml"
    path.write_text("version = 1\n")
    rc, _, err = run(capsys, "cert", "show", str(path))
    assert rc == 1 and "no certificate in it" in err and "asn1" not in err.lower()


def test_init_with_empty_send_to_is_a_usage_error(sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("QA_SECRET", sample.SECRET_VALUE)
    cfg = sandbox.config()
    rc, _, err = run(capsys, "init", "--non-interactive", "--config", str(tmp_path / "new.toml"),
                     "--tenant-id", sample.TENANT_ID, "--client-id", sample.SECRET_APP_ID,
                     "--client-secret-env", "QA_SECRET", "--sender", sample.SENDER,
                     "--server", cfg.outgoing.server, "--port", str(cfg.outgoing.port),
                     "--authority", cfg.endpoints.authority, "--ca-bundle", cfg.endpoints.ca_bundle,
                     "--send-to", "")
    assert rc == 2 and "--send-to is empty" in err
    assert not (tmp_path / "new.toml").exists()


# -- Ctrl-C -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, said", [
    (["check"], "nothing was written"),
    (["poll", "--once"], "poll stopped"),
    (["send", "--to", "a@contoso.com", "--subject", "x"], "may still be delivered"),
])
def test_ctrl_c_says_what_it_left_behind(capsys, monkeypatch, argv, said):
    import importlib

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(importlib.import_module(f"wizard.cli.{argv[0]}"), "run", interrupted)
    rc, _, err = run(capsys, *argv)
    assert rc == 130 and said in err


def test_init_into_a_folder_is_refused_before_the_test(tmp_path, capsys, monkeypatch):
    import wizard.check.engine as conntest
    monkeypatch.setattr(conntest, "run_check", lambda *a, **k: pytest.fail("the test ran"))
    rc, _, err = run(capsys, "init", "--non-interactive", "--config", str(tmp_path))
    assert rc == 2 and "is a folder" in err


@pytest.mark.parametrize("key", ["client_id", "client_secret", "sender"])
def test_invisible_pasted_character_is_named_not_echoed(sandbox, tmp_path, capsys, key):
    path = Path(write(tmp_path, sandbox.config()))
    text = path.read_text()
    text = "\n".join(line.replace('= "', '= "\u200b', 1) if line.startswith(f"{key} =") else line
                     for line in text.splitlines())
    path.write_text(text)
    rc, _, err = run(capsys, "check", "--config", str(path))
    assert rc == 2 and "U+200B ZERO WIDTH SPACE" in err and f"{key}]" in err
    assert sample.SECRET_VALUE[6:] not in err


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_non_utf8_output_is_no_traceback(sandbox, tmp_path, encoding):
    import os
    import subprocess
    import sys
    path = write(tmp_path, sandbox.config())
    proc = subprocess.run([sys.executable, "-m", "wizard", "check", "--config", path], capture_output=True,
                          env=os.environ | {"PYTHONIOENCODING": encoding}, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert proc.returncode == 0 and b"Result: OK" in proc.stdout


# -- TOML syntax errors in plain words (issue 14, item 22) ------------------------------------------

@pytest.mark.parametrize("text, line, words", [
    ("aaaa", 1, "a key without '= value'"),                        # no newline at the end
    ("aaaa\n", 1, "a key without '= value'"),
    ('version = 1\n[auth\nflow = "password"\n', 2, "a [name] header without its closing ']'"),
    ("version = 1\n[[users]\n", 2, "a [[name]] header without its closing ']]'"),
    ('version = 1\nsystem = "generic\n', 2, "a text without its closing quote"),
    ("version = 1\nsystem = generic\n", 2, "Put texts in double quotes"),
    ("version = 1\nx = [1, 2\n", 2, "a list [...] without its closing ']'"),
])
def test_toml_syntax_errors_say_what_to_write(tmp_path, capsys, text, line, words):
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config_io.load(path)
    rendered = info.value.render()
    assert rendered.startswith(f"{path}:{line}: TOML syntax error")
    assert words in rendered
    assert "\\x00" not in rendered and "column 0" not in rendered      # no parser internals
    rc, _, err = run(capsys, "check", "--config", str(path))
    assert rc == 2 and words in err


def test_a_missing_bracket_gets_no_hint_about_quotes(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('version = 1\n[auth\nflow = "password"\n')
    with pytest.raises(ConfigError) as info:
        config_io.load(path)
    assert "quotes" not in info.value.message and "'='" not in info.value.message
    assert "column 6" in info.value.message          # columns count from 1, as editors do


# -- the check command's output fits its columns (issue 14, cosmetic) --------------------------------

def test_check_help_fits_80_columns_and_keeps_the_json_shape_whole(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as e:
        main(["check", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert '{"ok": bool, "steps": [{"id", "status", "ms", "summary", "code", "fix"}]}' in out.splitlines()
    assert "exit codes: 0 all passed" in out


def test_long_step_ids_keep_the_summaries_in_their_column():
    from wizard.cli.check import render_tree
    from wizard.check.engine import Report, Step
    long_id = "mailbox:accounts-payable.department@contoso.onmicrosoft.com"
    steps = [Step("dns", "DNS", "pass", 3, "Found outlook.office365.com -> 52.97.1.1"),
             Step(long_id, "Incoming mailbox", "pass", 40, "Opened the inbox: 3 messages, 1 unread. " * 3),
             Step("user:WEBSHOP", "User", "fail", 9, "The user WEBSHOP could not sign in.", code="AADSTS50034",
                  fix="Check the user name.")]
    text = render_tree(Report(False, steps), "/etc/erp/mailwizard.toml", colour=False)
    lines = text.splitlines()
    summary_column = lines[1].index("Found")
    for step in steps[1:]:
        head = next(n for n, line in enumerate(lines) if line.rstrip().endswith(step.id))
        first = lines[head + 1]
        assert first.index(step.summary.split()[0]) == summary_column, text
    for line in lines:
        assert len(line) <= 78 or line.endswith(long_id), line     # an address is never broken
    opened = [line for line in lines if "Opened" in line or "messages" in line or "unread" in line]
    assert all(line[:summary_column].strip() == "" for line in opened), text


def test_init_says_the_secret_format_warning_once_with_a_fix_that_helps(sandbox, tmp_path, capsys, monkeypatch):
    path = write(tmp_path, sandbox.config())
    monkeypatch.setenv("ODD_SECRET", "abcdefghijklmnopqrstuvwxyz0123456789ABCD")     # 40 characters, no '~'
    rc, out, err = run(capsys, "init", "--non-interactive", "--config", path, "--client-secret-env", "ODD_SECRET")
    assert rc == 1                                       # the sandbox refuses that secret
    assert " ".join((out + err).split()).count("does not look like a current client secret Value") == 1, out + err
    assert "Check the named field." not in out + err
    assert "auth.client_secret" in out and "stage 3 (IDs and secret)" in " ".join(out.split())


def test_a_config_warning_in_check_says_where_to_change_it(sandbox, tmp_path, capsys):
    cfg = sandbox.config()
    cfg.auth.client_secret = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    path = write(tmp_path, cfg)
    rc, out, _ = run(capsys, "check", "--config", path, "--json")
    step = json.loads(out)["steps"][0]
    assert step["id"] == "config" and step["status"] == "warn"
    assert step["fix"] != "Check the named field."
    assert "auth.client_secret" in step["fix"] and "stage 3 (IDs and secret)" in step["fix"]
