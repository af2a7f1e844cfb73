"""Config file behaviour a user notices: comments kept, clear field errors,
atomic writes with a backup, private file modes, secret references."""

from __future__ import annotations

import os
import stat
from datetime import date, timedelta

import pytest

from wizard.config import files as config_io
from wizard.config.schema import Config, ConfigError, IncomingAccount, resolve_secret, secrets_of, validate
from wizard.sandbox import sample

GOOD = f"""\
# Production tenant for the ERP.  (a user's comment)
version = 1
system = "monitor_g5"

[microsoft]
cloud = "global"
tenant_id = "{sample.TENANT_ID}"   # from the Overview page
client_id = "{sample.SECRET_APP_ID}"

[auth]
flow = "client_secret"
client_secret = "{sample.SECRET_VALUE}"
secret_expires = {(date.today() + timedelta(days=400)).isoformat()}

[outgoing]
protocol = "ews"
server = "outlook.office365.com"
port = 443
sender = "erp@contoso.com"

[incoming]
protocol = "ews"
poll_minutes = 60

[[incoming.accounts]]
address = "orders@contoso.com"
types = ["Monitor-to-Monitor"]
available_to = "all"
"""


def write(tmp_path, text, name="mailwizard.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_round_trip_keeps_comments_order_and_changes_only_the_value(tmp_path):
    p = write(tmp_path, GOOD)
    cfg = config_io.load(p)
    cfg.outgoing.sender = "noreply@contoso.com"
    config_io.save(cfg, p)
    text = p.read_text()
    assert "# Production tenant for the ERP.  (a user's comment)" in text
    assert "# from the Overview page" in text
    assert 'sender = "noreply@contoso.com"' in text
    assert text.replace("noreply@contoso.com", "erp@contoso.com") == GOOD
    assert config_io.load(p).outgoing.sender == "noreply@contoso.com"


def test_new_file_is_private_and_resave_keeps_a_private_backup(tmp_path):
    p = tmp_path / "sub" / "mailwizard.toml"
    cfg = config_io.load(write(tmp_path, GOOD, "src.toml"))
    config_io.save(cfg, p)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    first = p.read_text()
    cfg.incoming.poll_minutes = 15
    config_io.save(cfg, p)
    bak = config_io.backup_path(p)
    assert bak.read_text() == first
    assert stat.S_IMODE(bak.stat().st_mode) == 0o600
    assert "poll_minutes = 15" in p.read_text()


def test_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    folder = tmp_path / "etc"
    folder.mkdir()
    p = write(folder, GOOD)
    cfg = config_io.load(p)
    cfg.outgoing.sender = "other@contoso.com"

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        config_io.save(cfg, p)
    assert p.read_text() == GOOD
    assert [f.name for f in folder.iterdir()] == ["mailwizard.toml"]  # no temp file left behind


BROKEN = [
    ("syntax", GOOD.replace("port = 443", "port = 443 443"), None, "syntax error", 18),
    ("unquoted text", GOOD.replace('"erp@contoso.com"', "erp@contoso.com"), None, None, 19),
    ("wrong type", GOOD.replace("port = 443", 'port = "443x"'), "outgoing.port", "whole number", 18),
    ("unknown key", GOOD.replace("poll_minutes = 60", "poll_minutes = 60\npoll_seconds = 5"), "incoming.poll_seconds", "unknown key", 24),
    ("unknown flow", GOOD.replace('flow = "client_secret"', 'flow = "oauth"'), "auth.flow", "client_secret, password, certificate, device_code", 11),
    ("non-GUID client ID", GOOD.replace(sample.SECRET_APP_ID, "my-app"), "microsoft.client_id", "GUID", 8),
    ("Secret ID as secret", GOOD.replace(sample.SECRET_VALUE, sample.SECRET_ID), "auth.client_secret", "Secret ID", 12),
    ("empty sender", GOOD.replace('"erp@contoso.com"', '""'), "outgoing.sender", "empty", 19),
    ("env ref unset", GOOD.replace(f'"{sample.SECRET_VALUE}"', '"env:MW_NOT_SET_X"'), "auth.client_secret", "MW_NOT_SET_X", 12),
    ("file ref missing", GOOD.replace(f'"{sample.SECRET_VALUE}"', '"file:/nonexistent/secret"'), "auth.client_secret", "/nonexistent/secret", 12),
    ("date as text", GOOD.replace("secret_expires = ", 'secret_expires = "soon" # '), "auth.secret_expires", "YYYY-MM-DD", 13),
]


@pytest.mark.parametrize("name,text,field,words,line", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_files_name_file_line_and_field(tmp_path, name, text, field, words, line):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config_io.load(p)
    msg = err.value.render()
    assert msg.startswith(f"{p}:{line}:"), msg
    if field:
        assert f"[{field}]" in msg
    if words:
        assert words in msg
    assert "Traceback" not in msg


def test_secret_references_resolve_from_env_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MW_SECRET", sample.SECRET_VALUE)
    assert resolve_secret("env:MW_SECRET", "auth.client_secret") == sample.SECRET_VALUE
    f = tmp_path / "secret.txt"
    f.write_text(sample.SECRET_VALUE + "\n")
    assert resolve_secret(f"file:{f}", "auth.client_secret") == sample.SECRET_VALUE
    cfg = Config()
    cfg.auth.client_secret = "env:MW_SECRET"
    assert sample.SECRET_VALUE in secrets_of(cfg)


def test_validate_flags_expiry_and_missing_values():
    cfg = Config()
    cfg.microsoft.tenant_id = "contoso.com"
    cfg.microsoft.client_id = sample.SECRET_APP_ID
    cfg.auth.client_secret = sample.SECRET_VALUE
    cfg.auth.secret_expires = date.today() - timedelta(days=1)
    cfg.outgoing.sender = "erp@contoso.com"
    cfg.incoming.accounts = [IncomingAccount(address="not-an-address")]
    problems = {p.field: p for p in validate(cfg)}
    assert "in the past" in problems["auth.secret_expires"].message
    assert "not an e-mail address" in problems["incoming.accounts[0].address"].message
    cfg.auth.secret_expires = date.today() + timedelta(days=10)
    cfg.incoming.accounts = []
    problems = validate(cfg)
    assert [(p.field, p.warning) for p in problems] == [("auth.secret_expires", True)]


def test_only_one_authentication_method_is_active(tmp_path):
    both = GOOD.replace('secret_expires', 'username = "svc-erp@contoso.com"\nsecret_expires')
    with pytest.raises(ConfigError) as err:
        config_io.load(write(tmp_path, both))
    assert "[auth.username]" in str(err.value) and "only one authentication method" in str(err.value)
    cfg = config_io.load(write(tmp_path, GOOD))
    cfg.auth.username, cfg.auth.password = "svc-erp@contoso.com", "pw"   # left over from trying the other flow
    text = config_io.render(cfg)
    assert "username" not in text and "password" not in text


def test_per_user_overrides_round_trip(tmp_path):
    text = GOOD + '\n[[users]]\nname = "WEBSHOP"\nflow = "password"\nusername = "webshop@contoso.com"\npassword = "env:WEBSHOP_PW"\n'
    cfg = config_io.load(write(tmp_path, text))
    assert [(u.name, u.username, u.password) for u in cfg.users] == [("WEBSHOP", "webshop@contoso.com", "env:WEBSHOP_PW")]
    assert config_io.render(cfg, text) == text


def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path):
    text = GOOD.replace(f'"{sample.SECRET_VALUE}"', "48829301747")
    with pytest.raises(ConfigError) as err:
        config_io.load(write(tmp_path, text))
    assert "[auth.client_secret] must be a text in quotes, not int" in str(err.value)
    assert "48829301747" not in str(err.value)


def test_a_missing_file_is_read_without_importing_tomlkit(tmp_path):
    """The wizard starts on a new config without paying for tomlkit (it parses and writes files)."""
    import subprocess
    import sys
    code = ("import sys; from wizard.config import files as config_io; "
            f"print(config_io.load_lenient({str(tmp_path / 'new.toml')!r}), 'tomlkit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(None, [], None) False"


def test_masked_copy_hides_every_secret_and_leaves_the_config_alone(tmp_path):
    from wizard.config.schema import masked
    text = GOOD + '\n[[users]]\nname = "WEBSHOP"\nflow = "password"\nusername = "webshop@contoso.com"\npassword = "Webshop-Passw0rd!"\n'
    cfg = config_io.load(write(tmp_path, text))
    shown = config_io.render(masked(cfg))
    assert sample.SECRET_VALUE not in shown and "Webshop-Passw0rd!" not in shown
    assert sample.SECRET_VALUE[:3] + "********" in shown
    assert cfg.auth.client_secret == sample.SECRET_VALUE and cfg.users[0].password == "Webshop-Passw0rd!"


@pytest.mark.parametrize("written", ["{day}T10:00:00", "{day}T10:00:00Z", '"{day}T10:00:00Z"', "{day} 23:59:59+02:00"])
def test_an_expiry_with_a_time_counts_its_day(tmp_path, capsys, written):
    """Graph's endDateTime (2027-06-30T10:00:00Z) pasted as secret_expires: its day is the expiry
    (it crashed every command with a TypeError traceback)."""
    from wizard.cli.main import main
    day = date.today() + timedelta(days=200)
    p = write(tmp_path, GOOD.replace(f"secret_expires = {(date.today() + timedelta(days=400)).isoformat()}",
                                     "secret_expires = " + written.format(day=day.isoformat())))
    assert config_io.load(p).auth.secret_expires == day
    assert main(["show", "--config", str(p)]) == 0
    out = capsys.readouterr().out
    assert day.isoformat() in out and "Traceback" not in out
