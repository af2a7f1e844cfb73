"""The mail runtime on each protocol against the sandbox: send with an
attachment and read it back from the recipient's mailbox, fetch only
unprocessed mail, one failing account does not stop the others, an expired
token is replaced."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runtime_helpers import PROTOCOLS, FakeClock, config, token_requests, with_bad_account
from wizard.runtime import Attachment, Mailer, MailError, Message
from wizard.sandbox import sample

ORDERS, INVOICES = sample.INCOMING

@pytest.fixture
def clock():
    return FakeClock()


def mailer_for(sb, protocol, clock, **kw):
    return Mailer(config(sb, protocol), clock=clock, sleep=clock.sleep, **kw)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_send_with_attachment_and_read_it_back(sandbox, protocol, clock, tmp_path):
    pdf = tmp_path / "invoice-1001.pdf"
    pdf.write_bytes(b"%PDF-1.4 fake invoice\n" * 10)
    with mailer_for(sandbox, protocol, clock) as mailer:
        mailer.send(ORDERS, "Invoice 1001", "Please find the invoice attached.",
                    attachments=[pdf, Attachment("order.csv", "text/csv", b"id;qty\n1;2\n")])
        got = mailer.fetch(ORDERS)
    assert len(got) == 1
    msg = got[0]
    assert isinstance(msg, Message)
    assert (msg.subject, msg.sender, msg.to) == ("Invoice 1001", sample.SENDER, [ORDERS])
    assert "Please find the invoice attached." in msg.body_text
    assert isinstance(msg.received, datetime) and msg.received.tzinfo is not None
    assert sorted(msg.attachments) == [("invoice-1001.pdf", "application/pdf", 220),
                                       ("order.csv", "text/csv", 11)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fetch_returns_only_unprocessed_mail(sandbox, protocol, clock):
    with mailer_for(sandbox, protocol, clock) as mailer:
        for n in range(3):
            mailer.send(ORDERS, f"order {n}", f"body {n}")
        first = mailer.fetch(ORDERS)
        assert [m.subject for m in first] == ["order 0", "order 1", "order 2"]
        mailer.mark_processed(ORDERS, first[0])
        mailer.mark_processed(ORDERS, first[1].id)
        assert [m.subject for m in mailer.fetch(ORDERS)] == ["order 2"]
        assert [m.subject for m in mailer.fetch(ORDERS, limit=1, unprocessed_only=False)] == ["order 2"]
    box = sandbox.tenant.mailbox(ORDERS)
    processed = next(v for k, v in box.folders.items() if k.lower() == "processed")
    assert sorted(m.subject for m in processed) == ["order 0", "order 1"]
    assert all(m.is_read for m in processed)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fetch_since_and_limit(sandbox, protocol, clock):
    with mailer_for(sandbox, protocol, clock) as mailer:
        for n in range(4):
            mailer.send(INVOICES, f"invoice {n}", "x")
        assert [m.subject for m in mailer.fetch(INVOICES, limit=2)] == ["invoice 0", "invoice 1"]
        future = datetime.now(timezone.utc) + timedelta(days=2)
        assert mailer.fetch(INVOICES, since=future) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_one_failing_account_does_not_stop_the_others(sandbox, protocol, clock):
    cfg = with_bad_account(config(sandbox, protocol))
    with Mailer(cfg, clock=clock, sleep=clock.sleep) as mailer:
        mailer.send([ORDERS, INVOICES], "for both", "hello")
        checked = mailer.validate_accounts()
        assert list(checked) == [ORDERS, sample.NO_MAILBOX, INVOICES]
        assert checked[ORDERS] is None and checked[INVOICES] is None
        assert checked[sample.NO_MAILBOX] is not None and checked[sample.NO_MAILBOX].fix
        from wizard.runtime.poll import poll_once
        results = {r.address: r for r in poll_once(mailer, mark=False)}
    assert [m.subject for m in results[ORDERS].messages] == ["for both"]
    assert [m.subject for m in results[INVOICES].messages] == ["for both"]
    assert not results[sample.NO_MAILBOX].ok
    assert len(token_requests(sandbox)) == 1          # one token shared by every account


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_expired_token_is_replaced_without_failing(sandbox, protocol, clock):
    with mailer_for(sandbox, protocol, clock) as mailer:
        mailer.send(ORDERS, "one", "x")
        mailer.send(ORDERS, "two", "x")
        assert len(token_requests(sandbox)) == 1       # reused while valid
        clock.now += 3600 + 60                         # past exp
        mailer.send(ORDERS, "three", "x")
        assert len(token_requests(sandbox)) == 2
        assert [m.subject for m in mailer.fetch(ORDERS)] == ["one", "two", "three"]
    assert len(token_requests(sandbox)) == 2


@pytest.mark.parametrize("protocol", ["ews", "graph", "smtp"])
def test_delegated_send_as_the_configured_sender(sandbox, protocol, clock):
    proto = "smtp+imap" if protocol == "smtp" else protocol
    cfg = config(sandbox, proto, flow="password")
    with Mailer(cfg, clock=clock, sleep=clock.sleep) as mailer:
        mailer.send(sample.RECIPIENT, "from the ERP", "x")
    got = sandbox.tenant.mailbox(sample.RECIPIENT).inbox
    assert [(m.subject, m.sender) for m in got] == [("from the ERP", sample.SENDER)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_carry_a_diagnosis_and_no_token(sandbox, protocol, clock):
    with mailer_for(sandbox, protocol, clock) as mailer:
        with pytest.raises(MailError) as e:
            mailer.fetch(sample.NO_MAILBOX)
        token = mailer.tokens.token("graph" if protocol == "graph" else "exchange")
    d = e.value.diagnosis
    assert d.code and d.cause and d.fix
    text = f"{e.value} {d}"
    assert token not in text and sample.SECRET_VALUE not in text


def test_graph_throttling_waits_for_retry_after(sandbox, clock):
    from wizard.sandbox import Fault
    with mailer_for(sandbox, "graph", clock) as mailer:
        sandbox.inject(Fault("/v1.0/users/", status=429, retry_after=7, times=2))
        mailer.send(ORDERS, "after throttling", "x")
        transport = mailer._outgoing()
        assert transport.waited == 14 and clock.sleeps.count(7.0) == 2
        sandbox.inject(Fault("/v1.0/users/", status=429, retry_after=3600, times=None))
        with pytest.raises(MailError) as e:
            mailer.send(ORDERS, "never", "x")
    assert e.value.code == "http.429"
    assert max(clock.sleeps) <= 60                       # Retry-After is bounded


def test_graph_paging_follows_next_link(sandbox, clock):
    from wizard.runtime import graph
    with mailer_for(sandbox, "graph", clock) as mailer:
        for n in range(7):
            mailer.send(ORDERS, f"m{n}", "x")
        sandbox.clear()
        old, graph.PAGE = graph.PAGE, 3
        try:
            got = mailer.fetch(ORDERS, limit=7)
        finally:
            graph.PAGE = old
    assert [m.subject for m in got] == [f"m{n}" for n in range(7)]
    pages = [r for r in sandbox.requests if "/mailFolders/inbox/messages" in r.path]
    assert len(pages) == 3 and "%24select=" in pages[0].path


def test_graph_without_readwrite_says_which_permission(sandbox, clock):
    cfg = config(sandbox, "graph")
    sandbox.tenant.app(sample.SECRET_APP_ID).roles["graph"] = {"Mail.Send", "Mail.Read"}
    with Mailer(cfg, clock=clock, sleep=clock.sleep) as mailer:
        mailer.send(ORDERS, "x", "y")
        msg = mailer.fetch(ORDERS)[0]
        with pytest.raises(MailError) as e:
            mailer.mark_processed(ORDERS, msg)
    assert e.value.code == "graph.ErrorAccessDenied"


def test_user_override_sends_with_its_own_sign_in(sandbox, clock):
    from wizard.config.schema import UserOverride
    from wizard.sandbox.tenant import Mailbox, User
    cfg = config(sandbox, "ews")
    sandbox.tenant.users.append(User("webshop@contoso.com", "Websh0p-Passw0rd!", "Web shop"))
    sandbox.tenant.mailboxes.append(Mailbox("webshop@contoso.com"))
    pw = sandbox.tenant.app(sample.SECRET_APP_ID)
    pw.scopes["exchange"] = {"EWS.AccessAsUser.All"}
    cfg.users = [UserOverride(name="WEBSHOP", flow="password", username="webshop@contoso.com",
                              password="Websh0p-Passw0rd!")]
    with Mailer(cfg, clock=clock, sleep=clock.sleep) as mailer:
        mailer.send(sample.RECIPIENT, "web order 17", "x", sender="WEBSHOP")
        mailer.send(sample.RECIPIENT, "erp", "x")
        with pytest.raises(MailError) as e:
            mailer.send(sample.RECIPIENT, "x", "y", sender="NOBODY")
    assert e.value.code == "config.invalid" and "WEBSHOP" in e.value.diagnosis.service_message
    got = [(m.subject, m.sender) for m in sandbox.tenant.mailbox(sample.RECIPIENT).inbox]
    assert got == [("web order 17", "webshop@contoso.com"), ("erp", sample.SENDER)]
    grants = [r.body for r in token_requests(sandbox)]
    assert sum(b"grant_type=password" in b for b in grants) == 1
    assert sum(b"grant_type=client_credentials" in b for b in grants) == 1


def test_wrong_direction_protocol_is_a_config_error(sandbox, clock):
    cfg = config(sandbox, "ews")
    cfg.outgoing.protocol = "imap"
    with Mailer(cfg, clock=clock) as mailer:
        with pytest.raises(MailError) as e:
            mailer.send(ORDERS, "x", "y")
    assert e.value.code == "config.invalid"


def test_ews_requests_carry_attachments_impersonation_and_is_read(sandbox, clock):
    """On the wire: one CreateItem SendOnly with the attachment inline, app-only
    impersonation with X-AnchorMailbox, and UpdateItem IsRead=true then MoveItem
    for mark_processed."""
    with mailer_for(sandbox, "ews", clock) as mailer:
        mailer.send(ORDERS, "wire", "x", attachments=[Attachment("a.csv", "text/csv", b"1;2\n")])
        create = [r for r in sandbox.requests if b"CreateItem" in r.body]
        assert len(create) == 1
        body = create[0].body
        assert b'MessageDisposition="SendOnly"' in body and b"<t:FileAttachment>" in body
        assert b"<t:Name>a.csv</t:Name>" in body and b"<t:Content>MTsyCg==</t:Content>" in body
        assert b"ExchangeImpersonation" in body and create[0].headers["X-AnchorMailbox"] == sample.SENDER
        msg = mailer.fetch(ORDERS)[0]
        sandbox.clear()
        mailer.mark_processed(ORDERS, msg)
    [update] = [r for r in sandbox.requests if b"<m:UpdateItem" in r.body]
    assert b'FieldURI="message:IsRead"' in update.body and b"<t:IsRead>1</t:IsRead>" in update.body
    assert update.headers["X-AnchorMailbox"] == ORDERS
    [move] = [r for r in sandbox.requests if b"<m:MoveItem" in r.body]
    assert move.headers["X-AnchorMailbox"] == ORDERS and all(r.status == 200 for r in sandbox.requests)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_machine_wide_ca_bundle_does_not_override_the_configured_one(sandbox, protocol, clock, monkeypatch):
    import certifi
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())     # trusts nothing of the sandbox
    with mailer_for(sandbox, protocol, clock) as mailer:
        mailer.send(ORDERS, "trusted", "x")
        assert [m.subject for m in mailer.fetch(ORDERS)] == ["trusted"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_untrusted_certificate_is_refused_with_a_fix(sandbox, protocol, clock):
    import certifi
    cfg = config(sandbox, protocol)
    cfg.endpoints.ca_bundle = certifi.where()                     # the sandbox CA is not in it
    with Mailer(cfg, clock=clock, sleep=clock.sleep) as mailer:
        with pytest.raises(MailError) as e:
            mailer.send(ORDERS, "x", "y")
    assert e.value.code == "tls.untrusted" and "ca_bundle" in e.value.diagnosis.fix


@pytest.mark.parametrize("protocol", ["imap", "smtp"])
def test_close_signs_out_of_every_connection_at_once(protocol):
    """Each LOGOUT / QUIT is a round trip: closing N mailboxes' connections one
    after another cost N round trips. Every fake connection's sign-out waits at a
    barrier for all the others, so this only passes when they run concurrently."""
    import threading
    from wizard.runtime.imap import ImapTransport, _Conn
    from wizard.runtime.smtp import SmtpTransport, _Session

    n = 5
    barrier = threading.Barrier(n, timeout=10)
    met = []

    class Fake:
        def signout(self):
            barrier.wait()          # BrokenBarrierError (after 10 s) when signed out in turn
            met.append(self)
        logout = quit = signout

        def shutdown(self):
            pass
        close = shutdown

    if protocol == "imap":
        t = ImapTransport(None, None, server="127.0.0.1", port=993, max_workers=32)
        for i in range(n):
            t._conns[f"a{i}"] = _Conn("token")
            t._conns[f"a{i}"].imap = Fake()
    else:
        t = SmtpTransport(None, None, server="127.0.0.1", port=587, max_workers=32)
        for i in range(n):
            t._conns[f"a{i}"] = _Session("token")
            t._conns[f"a{i}"].smtp = Fake()
    t.close()
    assert len(met) == n and not t._conns


def test_smtp_sessions_of_different_users_run_in_parallel():
    """Two senders' messages must not wait for each other's sign-in: each fake
    sign-in waits at a barrier for the other, so serial sessions fail."""
    import threading
    from types import SimpleNamespace
    from wizard.runtime.smtp import SmtpTransport

    barrier = threading.Barrier(2, timeout=10)
    sent = []

    class FakeSmtp:
        def send_message(self, msg, from_addr, to_addrs):
            sent.append(from_addr)

        def quit(self):
            pass

    class Tokens:
        def token(self, api, who):
            return "token"

    t = SmtpTransport(None, Tokens(), server="127.0.0.1", port=587)

    def fake_open(user, token):
        barrier.wait()
        return FakeSmtp()

    t._open = fake_open
    who = SimpleNamespace(app_only=True, username="", flow="client_secret")
    threads = [threading.Thread(target=t.send, args=(who, f"{n}@contoso.com", ["x@contoso.com"], [], "s", "b", ()))
               for n in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(sent) == ["a@contoso.com", "b@contoso.com"]
