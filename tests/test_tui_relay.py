"""The wizard offers the local relay where it fits and shows what to type into the system,
driven by keys at 80x24 and 60x20 (issue 16, section 4)."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from screens.app import make_app
from wizard.config import files as config_io
from wizard.config.schema import Config
from wizard.relay.auth import verify
from test_tui import SIZE, assert_focus_visible, screen_text, stage, tab_to
from test_tui_protocols import choose

SMALL = (60, 20)


def quiet(app):
    app.keep_secrets = False
    return app


def shown(app, selector: str) -> str:
    found = app.screen.query(selector)
    return str(found.first().render()) if found and found.first().display else ""


def flat(text: str) -> str:
    """Screen text without line breaks, borders and padding: a wrapped value reads whole."""
    return "".join(ch for ch in text if ch not in " \n│┃║╎┆┊▏▕|")


def config(system: str = "monitor_g5") -> Config:
    cfg = Config(system=system)
    cfg.microsoft.tenant_id = "11111111-2222-3333-4444-555555555555"
    cfg.microsoft.client_id = "66666666-7777-8888-9999-000000000000"
    cfg.outgoing.sender = "erp@contoso.com"
    if system == "efecte_esm":
        cfg.auth.flow = "password"
        cfg.auth.username = "svc@contoso.com"
        cfg.outgoing.protocol, cfg.incoming.protocol = "smtp", "imap"
        cfg.outgoing.server, cfg.outgoing.port = "smtp.office365.com", 587
    else:
        cfg.auth.client_secret = "abc8Q~" + "x" * 34
    return cfg


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def open_relay_dialog(pilot) -> None:
    """From the first stage: Tab to "Use the local relay" and press Enter."""
    await settle(pilot)
    await tab_to(pilot, "use-relay")
    await pilot.press("enter")
    await settle(pilot)


async def test_relay_offered_only_where_it_fits(tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml", initial=config()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        offer = shown(app, "#relay-offer")                       # Monitor G5 over EWS on Exchange Online
        assert "2027-04-01" in offer and "SMTP" in offer and "IMAP" in offer
        assert app.screen.query_one("#use-relay").display
        await tab_to(pilot, "on-prem")                            # Exchange Server keeps EWS: no offer
        await pilot.press("space")
        await settle(pilot)
        assert not shown(app, "#relay-offer") and not app.screen.query_one("#use-relay").display
        await pilot.press("space")
        await settle(pilot)
        assert shown(app, "#relay-offer")
        assert app.config.outgoing.protocol == "ews"              # offered, never imposed
        await choose(pilot, "system", 1)                          # Efecte ESM: SMTP + IMAP with a password
        assert app.config.system == "efecte_esm"
        assert "December 2026" in shown(app, "#relay-offer")
        await choose(pilot, "system", 1)                          # another system: Graph by default
        assert app.config.system == "generic"
        assert not shown(app, "#relay-offer")
        await pilot.press("f5")                                   # Help me choose: it speaks only SMTP + IMAP
        await settle(pilot)
        await tab_to(pilot, "rec-speaks")
        await pilot.press("down", "down", "space", "u")
        await settle(pilot)
        assert stage(app) == "target" and "December 2026" in shown(app, "#relay-offer")


@pytest.mark.parametrize("size", [SIZE, SMALL])
async def test_relay_dialog_adds_a_client_shown_once(tmp_path, size):
    path = tmp_path / "mw.toml"
    cfg = config()
    config_io.save(cfg, path)
    path.write_text("# ours: keep me\n" + path.read_text())
    app = quiet(make_app(path))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await tab_to(pilot, "use-relay")
        assert_focus_visible(app)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "RelayScreen"
        assert_focus_visible(app)
        text = screen_text(app)
        assert "2027-04-01" in text
        for _ in range(8):                                        # every field reachable, focus in view
            await pilot.press("tab")
            await settle(pilot)                                   # scrolled into view after a refresh
            assert_focus_visible(app)
        await pilot.press("f5")
        await settle(pilot)
        relay = app.config.relay
        assert relay is not None and relay.listen == "127.0.0.1:2525" and relay.imap_listen == "127.0.0.1:1143"
        assert (app.config.outgoing.protocol, app.config.incoming.protocol) == ("smtp", "imap")
        client = relay.clients[0]
        assert client.name == "monitor" and client.senders == ["erp@contoso.com"]
        password = app.screen.password
        assert len(password) >= 20 and password not in client.password_hash
        assert verify(password, client.password_hash)             # the relay's own check accepts it
        assert_focus_visible(app)
        assert password in flat(screen_text(app))                # shown once, here
        settings = shown(app, "#relay-settings")
        for words in ("Server based, via SMTP", "Server address (Exchange/SMTP)", "User name (SMTP)",
                      "Settings for incoming e-mail", "2525", "1143", "off"):
            assert words in settings, words
        await pilot.press("f6")
        await pilot.pause()
        assert app.clipboard == password
        await pilot.press("escape")
        await settle(pilot)
        assert stage(app) == "target" and app.screen.query_one("#proto-smtp_imap").value
        assert app.focused.id == "use-relay" and "set up for monitor" in shown(app, "#relay-offer")
        assert_focus_visible(app)
        await tab_to(pilot, "use-relay")
        await pilot.press("enter")
        await settle(pilot)
        assert password not in flat(screen_text(app)) and not app.screen.password   # never again
        assert "only its hash is stored" in shown(app, "#relay-settings")
        await pilot.press("escape")
        await settle(pilot)
        app.goto("save")
        await settle(pilot)
        preview = shown(app, "#preview-text")
        assert "[[relay.clients]]" in preview and client.password_hash not in preview
        await pilot.press("s")
        await settle(pilot)
        await pilot.press("y")                                    # save without a passing test
        await settle(pilot)
    text = path.read_text()
    assert text.startswith("# ours: keep me") and password not in text
    saved, problems, error = config_io.load_lenient(path)
    assert error is None and not problems, problems
    assert saved.relay.clients[0].senders == ["erp@contoso.com"]
    assert verify(password, saved.relay.clients[0].password_hash)


async def test_relay_dialog_for_efecte_esm_at_60x20(tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml", initial=config("efecte_esm")))
    async with app.run_test(size=SMALL) as pilot:
        await open_relay_dialog(pilot)
        assert not app.screen.query("#relay-upstream")            # already SMTP + IMAP upstream
        await tab_to(pilot, "relay-name")
        await pilot.press("ctrl+u", *"bad name!", "f5")           # a bad name: told, nothing added
        await settle(pilot)
        assert "Client name" in shown(app, "#relay-error") and app.config.relay is None
        assert app.focused.id == "relay-name"
        await pilot.press("ctrl+u", *"esm", "f5")
        await settle(pilot)
        assert app.config.relay.clients[0].name == "esm"
        settings = shown(app, "#relay-settings")
        assert "mail.transport.oauth.enabled" in settings and "SMTP server" in settings
        assert "IMAP server" in settings and "127.0.0.1:1143" in settings
        assert verify(app.screen.password, app.config.relay.clients[0].password_hash)
        assert_focus_visible(app)


async def test_a_system_that_reads_over_pop3_gets_the_pop3_settings_at_60x20(tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml", initial=config("efecte_esm")))
    async with app.run_test(size=SMALL) as pilot:
        await open_relay_dialog(pilot)
        await tab_to(pilot, "relay-pop3")
        assert_focus_visible(app)
        assert "Reads mail over POP3 (127.0.0.1:1110), not IMAP" in screen_text(app)     # not cut at 60 columns
        await pilot.press("space", "f5")
        await settle(pilot)
        relay = app.config.relay
        assert (relay.pop3_listen, relay.clients[0].name) == ("127.0.0.1:1110", "esm")
        rows = dict(row.split("  ", 1) for row in
                    (line.strip() for line in app.screen.settings_text().splitlines()) if "  " in row)
        assert (rows["POP3 server"].strip(), rows["Port"].strip()) == ("127.0.0.1", "1110")


async def test_pop3_with_the_graph_upstream_is_refused_with_the_way_out(tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml", initial=config()))           # Monitor G5 on EWS
    async with app.run_test(size=SIZE) as pilot:
        await open_relay_dialog(pilot)
        await tab_to(pilot, "relay-upstream")
        await pilot.press("space")                                          # the highlighted first: Graph
        assert app.screen.upstream() == "graph"
        await tab_to(pilot, "relay-pop3")
        await pilot.press("space", "f5")
        await settle(pilot)
        assert app.config.relay is None
        said = shown(app, "#relay-error")
        assert "POP3" in said and "SMTP + IMAP upstream" in said and "untick" in said
        assert app.config.outgoing.protocol == "ews"                        # nothing applied
        assert app.focused.id == "relay-upstream"                           # where the way out is
        await pilot.press("down", "space", "f5")
        await settle(pilot)
        assert app.config.relay.pop3_listen == "127.0.0.1:1110" and app.config.incoming.protocol == "imap"


def test_settings_sheet_lists_the_relay(tmp_path, capsys):
    from wizard.cli.main import main
    from wizard.relay.clients import add_client
    cfg = config()
    cfg.outgoing.protocol, cfg.incoming.protocol = "graph", "graph"
    path = tmp_path / "mw.toml"
    config_io.save(cfg, path)
    assert main(["export", "sheet", "--config", str(path)]) == 0
    assert "local relay" not in capsys.readouterr().out
    password = add_client(cfg, "monitor", ["erp@contoso.com"])
    cfg.relay.imap_listen = ""
    config_io.save(cfg, path)
    assert main(["export", "sheet", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "The local relay" in out and "client monitor" in out
    assert "Server based, via SMTP" in out and "127.0.0.1" in out and "2525" in out
    assert "Microsoft Graph (exactly once)" in out
    assert password not in out and cfg.relay.clients[0].password_hash not in out


async def test_relay_offered_on_the_mail_stage_at_60x20(tmp_path):
    app = quiet(make_app(tmp_path / "mw.toml", initial=config(), stage="mail"))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert stage(app) == "mail" and "2027-04-01" in shown(app, "#relay-offer")
        await pilot.press("f8")
        await settle(pilot)
        assert type(app.screen).__name__ == "RelayScreen"
        assert_focus_visible(app)
        await pilot.press("f5")                                   # name and sender as offered
        await settle(pilot)
        client = app.config.relay.clients[0]
        assert client.senders == ["erp@contoso.com"] and verify(app.screen.password, client.password_hash)
        await pilot.press("escape")
        await settle(pilot)
        assert stage(app) == "mail" and "set up for monitor" in shown(app, "#relay-offer")
        assert {i.id: i.value for i in app.screen.query(Input)}["f-outgoing-server"] == "smtp.office365.com"   # rebuilt for SMTP
        assert app.config.outgoing.protocol == "smtp"
        assert_focus_visible(app)


async def test_what_the_dialog_shows_works_against_the_relay(sandbox, tmp_path):
    """Type into smtplib what the dialog says; the relay takes it and delivers upstream."""
    import smtplib

    from relay_helpers import SENDER, TO, RunningRelay, inbox_ids, message, wait_for
    from wizard.config.relay import Relay
    cfg = sandbox.config(protocol="ews")
    cfg.system, cfg.outgoing.sender = "monitor_g5", SENDER
    cfg.relay = Relay(listen="127.0.0.1:0", spool=str(tmp_path / "spool"))   # 0: a free port
    app = quiet(make_app(tmp_path / "mw.toml", initial=cfg, demo=sandbox, stage="mail"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f8")
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        password = app.screen.password
        rows = dict(row.split("  ", 1) for row in
                    (line.strip() for line in app.screen.settings_text().splitlines()) if "  " in row)
    user = rows["User name (SMTP)"].strip()
    assert rows["Password (SMTP)"].strip() == password and rows["Use SSL"].strip() == "off"
    assert app.config.outgoing.protocol == "smtp" and app.config.outgoing.server == "127.0.0.1"   # the sandbox's
    relay = RunningRelay(app.config)
    try:
        m = message()
        with smtplib.SMTP(rows["Server address (Exchange/SMTP)"].strip(), relay.port, timeout=10) as s:
            s.login(user, password)
            s.send_message(m)
        wait_for(lambda: m["Message-ID"] in inbox_ids(sandbox, TO), what="the message in the inbox")
    finally:
        relay.close()


def test_security_follows_the_relay_certificate_and_dates_follow_the_guide():
    from datetime import date

    from wizard.config.relay import Relay, RelayClient
    from wizard.guide import relay_settings as rs
    cfg = config("generic")
    cfg.outgoing.protocol, cfg.incoming.protocol = "smtp", "imap"
    client = RelayClient(name="erp", senders=["erp@contoso.com"], mailbox="orders@contoso.com")
    cfg.relay = Relay(clients=[client])
    text = rs.as_text(rs.settings(cfg, client, "pw"))
    assert "none: plain text, on this machine only" in text and "1143" in text and "orders@contoso.com" in text
    cfg.relay.certificate = "/etc/mailwizard/relay.pem"
    smtp = dict(rs.settings(cfg, client, "pw")[0][1])
    imap = dict(rs.settings(cfg, client, "pw")[1][1])
    assert smtp["Security"] == "STARTTLS" and imap["Security"] == "SSL/TLS (implicit)"
    cfg.relay.tls = "implicit"
    assert dict(rs.settings(cfg, client, "pw")[0][1])["Security"] == "SSL/TLS (implicit)"
    monitor = config()                                            # EWS on Exchange Online
    assert "is blocked from 2026-10-01" in rs.offer(monitor, today=date(2026, 9, 1))
    assert "was switched off for good on 2027-04-01" in rs.offer(monitor, today=date(2027, 5, 1))
    monitor.microsoft.exchange = "on_premises"
    assert rs.offer(monitor) == ""


@pytest.mark.parametrize("size", [SIZE, SMALL], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_refused_client_is_said_right_under_its_field_in_view(tmp_path, size):
    from test_tui_fit import visible
    app = quiet(make_app(tmp_path / "mw.toml", initial=config()))
    async with app.run_test(size=size) as pilot:
        await open_relay_dialog(pilot)

        async def refused(field_id: str) -> str:
            await pilot.press("f5")
            await settle(pilot)
            await pilot.pause()
            field, said = app.screen.query_one(f"#{field_id}"), app.screen.query_one("#relay-error")
            assert app.config.relay is None and app.focused is field
            assert visible(app, field) and visible(app, said), screen_text(app)
            assert said.region.y == field.region.bottom          # the line right under the field
            return shown(app, "#relay-error")

        app.screen.query_one("#relay-name", Input).value = "my esm"
        said = await refused("relay-name")
        assert said.startswith("! Client name: must be letters, digits and . _ - @") and "NAME" not in said
        app.screen.query_one("#relay-name", Input).value = "esm"
        app.screen.query_one("#relay-sender", Input).value = ""
        said = await refused("relay-sender")
        assert said.startswith("! Sender: give at least one sender address")


def test_the_cli_keeps_naming_its_argument_the_dialog_gets_the_words_alone():
    from wizard.relay.clients import ClientError, add_client
    with pytest.raises(ClientError) as e:
        add_client(config(), "my esm", ["erp@contoso.com"])
    assert str(e.value).startswith("NAME must be letters")            # `relay add-client NAME`
    assert e.value.detail.startswith("must be letters") and e.value.field == "name"
