"""[[users]] overrides (guide 003: the WEBSHOP user) in the connection test and in
`send --from`, and catalogue messages that never show an unfilled placeholder
(issue 14, item 4). Through the CLI against the sandbox on 127.0.0.1."""

from __future__ import annotations

import json
import re

import pytest

from wizard.config import files as config_io
from wizard.diagnosis.catalogue import CATALOGUE, lookup
from wizard.cli.main import main
from wizard.config.schema import UserOverride
from wizard.sandbox import sample

GHOST = "webshop@contoso.com"          # no such user in the sample tenant
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    for secret in (sample.SECRET_VALUE, sample.SERVICE_PASSWORD, "Webshop-Passw0rd!"):
        assert secret not in out + err
    return rc, out, err


def _unfilled(text: str, names) -> list[str]:
    """The catalogue's own placeholders left as '<name>' (lookup's mark for a missing value)."""
    return [n for n in names if f"<{n.replace('_', ' ')}>" in text]


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv("MAILWIZARD_TIMEOUT", "2,5")
    monkeypatch.setenv("MAILWIZARD_MAX_WAIT", "0.02")


def _users():
    return [UserOverride(name="WEBSHOP", flow="password", username=GHOST, password="Webshop-Passw0rd!"),
            UserOverride(name="SALES", flow="password", username=sample.SERVICE_USER,
                         password=sample.SERVICE_PASSWORD, sender=sample.SENDER)]


@pytest.mark.parametrize("protocol", ["ews", "graph", "smtp+imap"])
def test_check_signs_in_each_user_override_and_opens_its_sender(sandbox, tmp_path, capsys, protocol):
    """A WEBSHOP user that does not exist fails `check` (step user:WEBSHOP, AADSTS50034, naming
    that user); a user that exists passes with its sender mailbox opened. Exit 1, public shape."""
    cfg = sandbox.config("password", protocol=protocol)
    for mb in sandbox.tenant.mailboxes:
        mb.full_access.add(sample.SERVICE_USER)
    pw = sandbox.tenant.app(sample.PASSWORD_APP_ID)
    pw.scopes.setdefault("graph", set()).update({"Mail.ReadWrite", "Mail.ReadWrite.Shared", "Mail.Send.Shared"})
    cfg.users = _users()
    path = config_io.save(cfg, tmp_path / "mw.toml")
    rc, out, _ = _run(capsys, "check", "--json", "--config", str(path))
    data = json.loads(out)
    assert set(data) == {"ok", "steps"} and all(
        set(s) == {"id", "status", "ms", "summary", "code", "fix"} for s in data["steps"])
    steps = {s["id"]: s for s in data["steps"]}
    assert rc == 1 and data["ok"] is False
    ghost, sales = steps["user:WEBSHOP"], steps["user:SALES"]
    assert (ghost["status"], ghost["code"]) == ("fail", "AADSTS50034"), ghost
    assert GHOST in ghost["summary"] and "<" not in ghost["summary"] + ghost["fix"]
    assert sales["status"] == "pass" and sample.SENDER in sales["summary"], sales
    assert [i for i in steps if i.startswith("user:")] == ["user:WEBSHOP", "user:SALES"]
    assert all(s["status"] == "pass" for i, s in steps.items() if not i.startswith("user:")), steps
    rc, out, _ = _run(capsys, "check", "--config", str(path))     # the tree shows it too
    assert rc == 1 and "user:WEBSHOP" in out and GHOST in out


def test_an_app_only_user_under_a_password_config_is_named(sandbox, tmp_path, capsys):
    cfg = sandbox.config("password")
    cfg.users = [UserOverride(name="APP", flow="client_secret", sender=sample.SENDER)]
    path = config_io.save(cfg, tmp_path / "mw.toml")
    rc, out, _ = _run(capsys, "check", "--json", "--config", str(path))
    step = next(s for s in json.loads(out)["steps"] if s["id"] == "user:APP")
    assert rc == 1 and step["status"] == "fail" and "flow client_secret" in step["summary"]


@pytest.mark.parametrize("flow", ["client_secret", "password"])
def test_send_from_a_user_that_does_not_exist_names_that_user(sandbox, tmp_path, capsys, flow):
    """`send --from WEBSHOP` fails at sign-in with AADSTS50034: the message names the WEBSHOP
    user's own account, not a placeholder ('<username>') nor the config's service account."""
    cfg = sandbox.config(flow)
    cfg.users = [_users()[0]]
    path = config_io.save(cfg, tmp_path / "mw.toml")
    rc, _, err = _run(capsys, "send", "--config", str(path), "--from", "WEBSHOP", "--to", sample.RECIPIENT,
                      "--subject", "web order")
    assert rc == 1 and "AADSTS50034" in err
    assert f"The user {GHOST} does not exist" in err
    assert "<username>" not in err and sample.SERVICE_USER not in err


def _configs(sb):
    for flow in ("client_secret", "password", "certificate", "device_code"):
        for protocol in ("ews", "graph", "smtp+imap"):
            yield sb.config(flow, protocol=protocol)
    bare = sb.config("password")
    bare.auth.username = ""                 # a password config not finished yet
    yield bare


def test_no_catalogue_entry_rendered_with_a_config_leaves_a_placeholder(sandbox):
    """Every entry, filled from a config alone (each flow and protocol), and every sign-in
    failure told for a [[users]] override: no '{name}' of the catalogue is left as '<name>'."""
    from wizard.runtime.mailer import signin_diagnosis
    from wizard.runtime.tokens import SignIn
    leftovers = []
    for cfg in _configs(sandbox):
        for code, entry in CATALOGUE.items():
            names = set(PLACEHOLDER.findall(entry.cause + entry.fix))
            d = lookup(code, cfg=cfg)
            leftovers += [(code, cfg.auth.flow, n) for n in _unfilled(d.cause + d.fix, names)]
            told = signin_diagnosis(d, cfg, SignIn("password", GHOST))
            leftovers += [(code, "users", n) for n in _unfilled(told.cause + told.fix, names)]
            if "{username}" in entry.cause + entry.fix:
                assert GHOST in told.cause + told.fix, code
    assert leftovers == []


def test_a_users_smtp_refusal_names_that_users_mailbox(fresh_sandbox, tmp_path, capsys):
    """SMTP AUTH switched off for the WEBSHOP user's own mailbox: the user:SHOP step says so
    for that mailbox, not for the config's service account (which still passes)."""
    from wizard.sandbox.tenant import Mailbox, User
    shop = "shop@contoso.com"
    fresh_sandbox.tenant.users.append(User(shop, "Shop-Passw0rd!1"))
    fresh_sandbox.tenant.mailboxes.append(Mailbox(shop, smtp_auth_disabled=True))
    cfg = fresh_sandbox.config("password", protocol="smtp+imap")
    cfg.users = [UserOverride(name="SHOP", flow="password", username=shop, password="Shop-Passw0rd!1")]
    path = config_io.save(cfg, tmp_path / "mw.toml")
    rc, out, _ = _run(capsys, "check", "--json", "--config", str(path))
    steps = {s["id"]: s for s in json.loads(out)["steps"]}
    assert rc == 1 and steps["mailbox"]["status"] == "pass"
    user = steps["user:SHOP"]
    assert (user["status"], user["code"]) == ("fail", "535 5.7.139"), user
    assert f"mailbox {shop}" in user["summary"] and f"-Identity {shop}" in user["fix"]
    assert sample.SERVICE_USER not in user["summary"] + user["fix"]


def test_a_users_password_reference_that_cannot_be_resolved_names_that_user(sandbox, tmp_path, capsys,
                                                                             monkeypatch):
    monkeypatch.delenv("SHOP_PW", raising=False)
    cfg = sandbox.config("password")
    cfg.users = [UserOverride(name="SHOP", flow="password", username=sample.SERVICE_USER, password="env:SHOP_PW")]
    path = config_io.save(cfg, tmp_path / "mw.toml")
    rc, out, _ = _run(capsys, "check", "--json", "--config", str(path))
    user = next(s for s in json.loads(out)["steps"] if s["id"] == "user:SHOP")
    assert rc == 1 and user["status"] == "fail" and "SHOP_PW" in user["summary"]
    assert "users[0].password" in user["fix"] and "auth.password" not in user["fix"]


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_the_wizards_test_stage_tries_the_webshop_user(sandbox, tmp_path, size):
    """Stage 5 shows the user:WEB SHOP failure with the user's name; g opens stage 4's
    per-user dialog (F7) on that user's field, the field the step names."""
    from screens.app import make_app
    from screens.dialogs.users import UsersScreen
    from test_tui import assert_focus_visible, quiet, screen_text, stage
    cfg = sandbox.config("password")
    sales, shop = _users()[1], _users()[0]
    shop.name = "WEB SHOP"
    cfg.users = [sales, shop]                    # the failing user is the second one
    app = quiet(make_app(tmp_path / "mw.toml", demo=sandbox, initial=cfg, stage="test"))
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        failed = [st for st in app.screen.steps if st.status == "fail"]
        assert [(st.id, st.code) for st in failed] == [("user:WEB SHOP", "AADSTS50034")]
        text = screen_text(app)
        for _ in range(40):                      # the failure is scrolled into view
            if "AADSTS50034" in text and "per-user settings (F7)" in text:
                break
            await pilot.press("down")
            text = screen_text(app)
        assert "Sign in as user WEB SHOP" in text and "Code: AADSTS50034" in text, text
        assert "per-user settings (F7)" in text, text
        assert "<username>" not in text and "Webshop-Passw0rd!" not in text
        await pilot.press("g")
        for _ in range(4):
            await pilot.pause()
        assert isinstance(app.screen, UsersScreen), stage(app)
        assert app.focused is not None and app.focused.id == "f-users-1-username"
        assert app.focused.value == GHOST
        assert_focus_visible(app)
        await pilot.press("escape")                 # back under it: stage 4, where F7 is
        await pilot.pause()
        assert stage(app) == "mail" and app.focused.id == "users-button"
