"""Secret rotation: the new secret is tested against the sandbox before it
replaces the old one; the secret-expiry warnings of show and check."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from wizard.config import files as config_io
from wizard.cli.main import main
from wizard.cli.show import render as show_render
from wizard.config.schema import validate
from wizard.check.rotate import RotateError, check_new_secret, portal_steps, rotate_secret
from wizard.sandbox import sample
from wizard.sandbox.tenant import Secret

NEW_VALUE = "Zt93Q~Pq4WmXc8NvB2LkRj6HsYd1GfU5eTa7OiNw"
NEW_ID = "e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a8b"


@pytest.fixture
def saved(sandbox, tmp_path):
    return config_io.save(sandbox.config(flow="client_secret"), tmp_path / "mw.toml")


def add_new_secret(sandbox, expires: date):
    """What the user does in the portal: a second secret on the same app."""
    sandbox.tenant.app(sample.SECRET_APP_ID).secrets.append(Secret(NEW_VALUE, NEW_ID, expires))


def test_rotate_keeps_the_old_secret_when_the_new_one_fails(sandbox, saved, tmp_path, capsys):
    before = saved.read_text()
    wrong = tmp_path / "new-secret"
    wrong.write_text(NEW_VALUE + "\n")          # not registered on the app: AADSTS7000215
    expires = (date.today() + timedelta(days=300)).isoformat()
    code = main(["rotate", "--config", str(saved), "--secret-file", str(wrong), "--expires", expires])
    out, err = capsys.readouterr()
    assert code == 1
    assert saved.read_text() == before
    assert not config_io.backup_path(saved).exists()
    assert "AADSTS7000215" in out
    assert "keeps the old secret" in err
    assert NEW_VALUE not in out + err and sample.SECRET_VALUE not in out + err


def test_rotate_replaces_the_secret_when_the_new_one_passes(sandbox, saved, monkeypatch, capsys):
    expires = date.today() + timedelta(days=365)
    add_new_secret(sandbox, expires)
    monkeypatch.setenv("NEW_MW_SECRET", NEW_VALUE)
    code = main(["rotate", "--config", str(saved), "--secret-env", "NEW_MW_SECRET", "--expires", expires.isoformat()])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    cfg = config_io.load(saved)
    assert cfg.auth.client_secret == NEW_VALUE
    assert cfg.auth.secret_expires == expires
    backup = config_io.backup_path(saved)
    assert sample.SECRET_VALUE in backup.read_text()           # the previous file is kept
    assert "delete the old secret" in out and "Certificates & secrets" in out
    assert NEW_VALUE not in out + err and sample.SECRET_VALUE not in out + err
    # the new secret was used against the identity platform before the save
    assert any(r.path.endswith("/oauth2/v2.0/token") for r in sandbox.requests)


def test_rotate_writes_the_secret_file_a_config_points_at(sandbox, tmp_path, capsys):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(sample.SECRET_VALUE + "\n")
    cfg = sandbox.config(flow="client_secret")
    cfg.auth.client_secret = f"file:{secret_file}"
    path = config_io.save(cfg, tmp_path / "mw.toml")
    expires = date.today() + timedelta(days=200)
    add_new_secret(sandbox, expires)
    result = rotate_secret(config_io.load(path), path, NEW_VALUE, expires)
    assert result.ok
    assert secret_file.read_text().strip() == NEW_VALUE
    reloaded = config_io.load(path)
    assert reloaded.auth.client_secret == f"file:{secret_file}"
    assert reloaded.auth.secret_expires == expires


def test_rotate_refuses_bad_input_before_testing(sandbox, saved, tmp_path, capsys):
    secret_id = tmp_path / "id.txt"
    secret_id.write_text(sample.SECRET_ID)
    assert main(["rotate", "--config", str(saved), "--secret-file", str(secret_id), "--expires", "2027-06-01"]) == 2
    assert "Secret ID" in capsys.readouterr().err
    assert main(["rotate", "--config", str(saved), "--secret-env", "NOPE_NOT_SET", "--expires", "2027-06-01"]) == 2
    same = tmp_path / "same.txt"
    same.write_text(sample.SECRET_VALUE)
    assert main(["rotate", "--config", str(saved), "--secret-file", str(same), "--expires", "2027-06-01"]) == 2
    new = tmp_path / "new.txt"
    new.write_text(NEW_VALUE)
    assert main(["rotate", "--config", str(saved), "--secret-file", str(new), "--expires", "2020-01-01"]) == 2
    assert main(["rotate", "--config", str(saved), "--secret-file", str(new)]) == 2    # no terminal, no --expires
    assert "--expires" in capsys.readouterr().err
    assert sandbox.requests == []                               # nothing was tested


def test_rotate_only_for_the_client_secret_flow_and_not_env_references(sandbox, tmp_path, monkeypatch):
    pw = config_io.save(sandbox.config(flow="password"), tmp_path / "pw.toml")
    assert main(["rotate", "--config", str(pw), "--secret-env", "X", "--expires", "2027-06-01"]) == 2
    cfg = sandbox.config(flow="client_secret")
    monkeypatch.setenv("MW_SECRET", sample.SECRET_VALUE)
    cfg.auth.client_secret = "env:MW_SECRET"
    with pytest.raises(RotateError, match="environment variable MW_SECRET"):
        rotate_secret(cfg, tmp_path / "x.toml", NEW_VALUE, None)


def test_check_new_secret_and_portal_steps():
    assert check_new_secret(f'  "{NEW_VALUE}"\n')[0] == NEW_VALUE
    assert check_new_secret(sample.SECRET_ID)[1]
    assert check_new_secret("env:FOO")[1]
    steps = portal_steps()
    assert [s.split(".")[0] for s in steps] == ["20", "21", "22"]
    assert "New client secret" in steps[0]


# -- the 30-day warning in show and check ---------------------------------------

def test_show_warns_within_30_days_and_not_before(sandbox):
    cfg = sandbox.config(flow="client_secret")
    today = date(2026, 11, 25)
    cfg.auth.secret_expires = today + timedelta(days=29)
    assert "WARNING: 29 days left" in show_render(cfg, "mw.toml", today=today)
    cfg.auth.secret_expires = today + timedelta(days=30)
    text = show_render(cfg, "mw.toml", today=today)
    assert "WARNING" not in text and "(30 days left)" in text
    cfg.auth.secret_expires = today - timedelta(days=2)
    assert "EXPIRED 2 days ago" in show_render(cfg, "mw.toml", today=today)


def test_validate_warns_30_days_ahead(sandbox):
    cfg = sandbox.config(flow="client_secret")
    today = date(2026, 11, 25)
    cfg.auth.secret_expires = today + timedelta(days=10)
    warned = [p for p in validate(cfg, today=today) if p.field == "auth.secret_expires"]
    assert warned and warned[0].warning and "10 days" in warned[0].message
    cfg.auth.secret_expires = today + timedelta(days=45)
    assert not [p for p in validate(cfg, today=today) if p.field == "auth.secret_expires"]


def test_check_warns_when_the_secret_expires_soon(sandbox, tmp_path, capsys):
    cfg = sandbox.config(flow="client_secret")
    cfg.auth.secret_expires = date.today() + timedelta(days=12)
    path = config_io.save(cfg, tmp_path / "mw.toml")
    assert main(["check", "--json", "--config", str(path)]) == 0      # a warning is not a failure
    data = json.loads(capsys.readouterr().out)
    step = data["steps"][0]
    assert step["id"] == "config" and step["status"] == "warn" and "12 days" in step["summary"]
