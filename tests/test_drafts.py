"""Drafts: resume after a dropped SSH session, without leaving secrets on disk
unless the user agreed."""

from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone

from wizard.config import drafts
from wizard.config.schema import Config, IncomingAccount
from wizard.sandbox import sample


def _cfg(flow="client_secret"):
    cfg = Config()
    cfg.system = "efecte_esm"
    cfg.microsoft.tenant_id = sample.TENANT_ID
    cfg.auth.flow = flow
    if flow == "client_secret":
        cfg.microsoft.client_id = sample.SECRET_APP_ID
        cfg.auth.client_secret = sample.SECRET_VALUE
    else:
        cfg.microsoft.client_id = sample.PASSWORD_APP_ID
        cfg.auth.username = sample.SERVICE_USER
        cfg.auth.password = sample.SERVICE_PASSWORD
    cfg.outgoing.sender = sample.SENDER
    cfg.incoming.accounts = [IncomingAccount(address="orders@contoso.com", username=sample.SERVICE_USER,
                                             password=sample.SERVICE_PASSWORD)]
    return cfg


def test_round_trip_without_secrets_keeps_none_on_disk(tmp_path):
    target = tmp_path / "a.toml"
    path = drafts.save_draft(target, _cfg(), "ids", keep_secrets=False, raw={"port": "44x", "client_secret": "x"})
    data = path.read_bytes()
    assert sample.SECRET_VALUE.encode() not in data
    assert sample.SERVICE_PASSWORD.encode() not in data
    assert b"Holds no secret" in data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.is_relative_to(tmp_path / "xdg_state_home")

    d = drafts.load_draft(target)
    assert d is not None and d.stage == "ids" and d.secrets_kept is False
    assert d.config_path == target
    assert d.cfg.system == "efecte_esm" and d.cfg.microsoft.tenant_id == sample.TENANT_ID
    assert d.cfg.outgoing.sender == sample.SENDER
    assert d.cfg.auth.client_secret == "" and d.cfg.incoming.accounts[0].password == ""
    assert d.cfg.incoming.accounts[0].username == sample.SERVICE_USER
    assert d.missing_secrets == ["auth.client_secret", "incoming.accounts[0].password"]
    assert d.raw == {"port": "44x"}
    assert abs(datetime.now(timezone.utc) - d.saved_at) < timedelta(minutes=1)
    text = d.describe()
    assert "the client secret" in text and "'ids' step" in text


def test_round_trip_with_secrets_when_agreed(tmp_path):
    target = tmp_path / "b.toml"
    path = drafts.save_draft(target, _cfg("password"), "mail", keep_secrets=True)
    assert sample.SERVICE_PASSWORD.encode() in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    d = drafts.load_draft(target)
    assert d.secrets_kept and d.missing_secrets == []
    assert d.cfg.auth.flow == "password" and d.cfg.auth.password == sample.SERVICE_PASSWORD
    assert d.cfg.incoming.accounts[0].password == sample.SERVICE_PASSWORD
    assert d.describe().count("\n") == 0


def test_references_are_not_secrets_and_stay(tmp_path):
    cfg = _cfg()
    cfg.auth.client_secret = "env:ERP_SECRET"
    drafts.save_draft(tmp_path / "c.toml", cfg, "ids", keep_secrets=False)
    d = drafts.load_draft(tmp_path / "c.toml")
    assert d.cfg.auth.client_secret == "env:ERP_SECRET" and d.missing_secrets == ["incoming.accounts[0].password"]


def test_an_incomplete_draft_loads_without_validation(tmp_path):
    cfg = Config()
    cfg.microsoft.tenant_id = "5f8d 2c1a"      # half typed
    cfg.outgoing.port = "44x"                  # not a number yet
    drafts.save_draft(tmp_path / "d.toml", cfg, "target", keep_secrets=False)
    d = drafts.load_draft(tmp_path / "d.toml")
    assert d.cfg.microsoft.tenant_id == "5f8d 2c1a" and d.cfg.outgoing.port == 443


def test_profiles_do_not_mix(tmp_path):
    a, b = tmp_path / "p" / "test.toml", tmp_path / "q" / "test.toml"
    drafts.save_draft(a, _cfg(), "ids", keep_secrets=False)
    assert drafts.draft_path(a) != drafts.draft_path(b)
    assert drafts.load_draft(b) is None
    drafts.save_draft(b, _cfg("password"), "mail", keep_secrets=False)
    assert drafts.load_draft(a).stage == "ids" and drafts.load_draft(b).stage == "mail"
    assert sorted(d.stage for d in drafts.all_drafts()) == ["ids", "mail"]


def test_corrupt_or_foreign_drafts_are_ignored(tmp_path):
    target = tmp_path / "e.toml"
    path = drafts.save_draft(target, _cfg(), "ids", keep_secrets=False)
    good = path.read_text()
    for bad in ("", "not = [toml", "\x00\xff", "version = 1\n", good.replace("format = 1", "format = 99"),
                good.replace("saved_at = ", "saved_at = 'x' #"), good.replace(str(target), str(tmp_path / "other.toml")),
                "[draft]\nformat = 1\n"):
        path.write_text(bad, encoding="utf-8", errors="surrogateescape")
        assert drafts.load_draft(target) is None, bad
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert drafts.load_draft(target) is None
    assert drafts.all_drafts() == []


def test_discard(tmp_path):
    target = tmp_path / "f.toml"
    assert drafts.discard_draft(target) is False
    drafts.save_draft(target, _cfg(), "ids", keep_secrets=False)
    assert drafts.discard_draft(target) is True
    assert drafts.load_draft(target) is None and not drafts.draft_path(target).exists()


def test_saving_again_replaces_the_draft_and_keeps_earlier_missing_secrets(tmp_path):
    target = tmp_path / "g.toml"
    drafts.save_draft(target, _cfg(), "ids", keep_secrets=False)
    first = drafts.load_draft(target)
    drafts.save_draft(target, first.cfg, "mail", keep_secrets=False, missing_secrets=first.missing_secrets)
    d = drafts.load_draft(target)
    assert d.stage == "mail" and "auth.client_secret" in d.missing_secrets
    assert [p.name for p in drafts.drafts_dir().iterdir()] == [drafts.draft_path(target).name]
