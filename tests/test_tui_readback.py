"""F3 read-back on a support call: every value the call goes through, the IDs drawn
large without losing a column, never a secret."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from textual.widgets import Digits, Static

from screens.app import make_app
from screens.dialogs.readback import ReadBackItem, ReadBackScreen
from wizard.guide import readback
from wizard.config.schema import Config, IncomingAccount, UserOverride
from wizard.sandbox import sample as s

from test_tui import screen_text
from test_tui_focus_walk import SIZES, on_screen, settle

USER_PASSWORD = "Webshop-Pw-7731"
SECRET = "Qx8~abcdefghijklmnopqrstuvwxyz0123456789"


def call_config() -> Config:
    cfg = Config()
    cfg.microsoft.client_id, cfg.microsoft.tenant_id = s.SECRET_APP_ID, s.TENANT_ID
    cfg.auth.client_secret = SECRET
    cfg.auth.secret_expires = date.today() + timedelta(days=100)
    cfg.outgoing.sender, cfg.outgoing.test_recipient = s.SENDER, s.RECIPIENT
    cfg.outgoing.server, cfg.outgoing.port = "outlook.office365.com", 443
    cfg.incoming.accounts = [IncomingAccount(address=s.INCOMING[0], types=["CRM", "Order"])]
    cfg.users = [UserOverride(name="WEBSHOP", flow="password", username="webshop@contoso.com",
                              password=USER_PASSWORD, sender="shop@contoso.com")]
    return cfg


async def read_back(pilot) -> str:
    """The whole read-back, every item scrolled into view in turn."""
    app = pilot.app
    await pilot.press("f3")
    await settle(pilot)
    assert isinstance(app.screen, ReadBackScreen)
    seen = []
    for item in app.screen.query(ReadBackItem):
        item.focus()
        await settle(pilot)
        seen.append(screen_text(app))
    return "\n".join(seen)


@pytest.mark.parametrize("size", SIZES, ids=lambda v: f"{v[0]}x{v[1]}")
async def test_read_back_has_servers_accounts_expiry_and_users_but_no_secret(tmp_path, size):
    app = make_app(tmp_path / "mw.toml", initial=call_config(), stage="mail")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        text = await read_back(pilot)
        assert s.SENDER in text and s.RECIPIENT in text
        assert "outlook.office365.com, port 443 (EWS)" in text
        assert s.INCOMING[0] in text and "types CRM, Order" in text
        assert "(100 days left)" in text and "Secret expires" in text
        assert "WEBSHOP" in text and "webshop@contoso.com" in text and "shop@contoso.com" in text
        assert USER_PASSWORD not in text and SECRET not in text and SECRET[:4] not in text
        sender = next(i for i in app.screen.query(ReadBackItem) if i.value == s.SENDER)
        shown = [str(w.render()) for w in sender.query(Static) if w.display]
        assert sum(x.count(s.SENDER) for x in shown) == 1                # once, not twice
        await pilot.press("n")                                           # spelled: once, then spelled
        await settle(pilot)
        shown = " ".join(str(w.render()) for w in sender.query(Static) if w.display)
        assert shown.count(s.SENDER) == 1 and "echo" in shown
        await pilot.press("escape")
        await settle(pilot)
        app.goto("ids")                           # on the IDs stage: the IDs first, then the rest
        await settle(pilot)
        text = await read_back(pilot)
        items = list(app.screen.query(ReadBackItem))
        assert [item.value for item in items[:2]] == [s.SECRET_APP_ID, s.TENANT_ID]
        labels = [item.label for item in items]
        assert "Secret expires" in labels and "Per-user setting 1" in labels
        assert SECRET not in text and USER_PASSWORD not in text


@pytest.mark.parametrize("size", SIZES, ids=lambda v: f"{v[0]}x{v[1]}")
async def test_big_digits_keep_every_column(tmp_path, size):
    """At 60 columns the fourth group of each line lost its last column."""
    app = make_app(tmp_path / "mw.toml", initial=call_config(), stage="ids")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        for item in app.screen.query(ReadBackItem):
            item.focus()
            await settle(pilot)
            for digits in item.query(Digits):
                assert on_screen(app, digits), f"{digits.value} cut at {size}:\n{screen_text(app)}"
                assert digits.region.right <= item.content_region.right
        drawn = "".join(d.value for d in app.screen.query(Digits)).replace("\u00a0", "")
        assert s.SECRET_APP_ID.replace("-", "").upper() in drawn


def test_setup_items_say_each_protocol_and_never_a_password():
    cfg = call_config()
    cfg.outgoing.protocol, cfg.outgoing.server, cfg.outgoing.port = "smtp", "smtp.office365.com", 587
    cfg.incoming.protocol = "imap"
    items = dict(readback.setup_items(cfg, today=date.today()))
    assert items["Outgoing server"] == "smtp.office365.com, port 587 (SMTP, STARTTLS)"
    assert items["Incoming server"] == "outlook.office365.com, port 993 (IMAP, TLS)"
    assert "password set" in items["Per-user setting 1"]
    cfg.users[0].password = ""
    cfg.auth.secret_expires = date.today() - timedelta(days=3)
    items = dict(readback.setup_items(cfg, today=date.today()))
    assert "password NOT set" in items["Per-user setting 1"]
    assert "EXPIRED 3 days ago" in items["Secret expires"]
    assert all(USER_PASSWORD not in v and SECRET not in v for v in items.values())


# The words around the values in the read-back of the setup: never spelled out.
LABEL_WORDS = ("p papa", "open bracket", "comma", "E capital echo", "d delta", "space", "y yankee")


def spelled_setup(cfg, label: str) -> str:
    text = dict(readback.setup_items(cfg, today=date(2026, 12, 7)))[label]
    parts = readback.setup_parts(cfg, today=date(2026, 12, 7))[label]
    return readback.render_readback(label, text, spelled=True, parts=parts)


def test_nato_spells_the_servers_port_and_date_not_the_words_around_them():
    cfg = call_config()
    cfg.outgoing.server, cfg.outgoing.port = "127.0.0.1", 60115
    cfg.auth.secret_expires = date(2027, 3, 17)
    server = spelled_setup(cfg, "Outgoing server")
    assert "127.0.0.1, port 60115 (EWS)" in server                          # the phrase, shown as it is
    assert "1 one,  2 two,  7 seven,  . dot" in server and "6 six,  0 zero,  1 one,  1 one" in server
    expires = spelled_setup(cfg, "Secret expires")
    assert "2 two,  0 zero,  2 two,  7 seven" in expires and "- dash" in expires
    for text in (server, expires):
        assert not [w for w in LABEL_WORDS if w in text], text
    user = spelled_setup(cfg, "Per-user setting 1")
    assert "W capital whiskey" in user and "s sierra,  h hotel,  o oscar,  p papa" in user   # WEBSHOP, shop@
    assert "o oscar,  w whiskey,  n november" not in user                   # not "own user name"
    plain = dict(readback.setup_items(cfg, today=date(2026, 12, 7)))["Outgoing server"]
    assert readback.render_readback("Outgoing server", plain) == "Outgoing server\n  " + plain   # n off: as before


@pytest.mark.parametrize("size", SIZES, ids=lambda v: f"{v[0]}x{v[1]}")
async def test_n_in_the_read_back_spells_only_the_values(tmp_path, size):
    cfg = call_config()
    cfg.outgoing.server, cfg.outgoing.port = "127.0.0.1", 60115
    app = make_app(tmp_path / "mw.toml", initial=cfg, stage="mail")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("f3", "n")
        await settle(pilot)
        items = {item.label: item for item in app.screen.query(ReadBackItem)}
        for label in ("Outgoing server", "Secret expires"):
            detail = str(items[label].query_one(".rb-detail", Static).render())
            assert "zero" in detail and not [w for w in LABEL_WORDS if w in detail], detail
        sender = str(items[next(l for l, i in items.items() if i.value == s.SENDER)]
                     .query_one(".rb-detail", Static).render())
        assert "e echo,  r romeo,  p papa" in sender                   # an ID field: all of it, as before
