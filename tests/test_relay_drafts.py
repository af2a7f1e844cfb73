"""The relay's exactly-once draft path (Graph and EWS) where Exchange and the journal disagree: a send answered
504 after Exchange took it, a draft deleted before its send, a send in doubt past max_age, `relay queue drop`
during a delivery, and drafts journaled under another ``[outgoing] protocol``."""

from __future__ import annotations

import time

import pytest

from relay_helpers import ENVELOPE, SENDER, TO, cut_by_a_crash, inbox_ids, message, relay_config
from wizard.diagnosis.catalogue import lookup
from wizard.relay.delivery import Delivery
from wizard.relay.spool import Spool
from wizard.runtime import Mailer, MailError
from wizard.sandbox.server import Fault


def _drafts(sandbox) -> list:
    return list(sandbox.tenant.mailbox(SENDER).folders.get("Drafts") or [])


def _setup(sandbox, tmp_path, protocol="graph"):
    cfg = relay_config(sandbox, tmp_path, protocol=protocol)
    return cfg, Spool(cfg.relay.spool_path()).open()


def test_graph_send_answered_504_after_exchange_took_it_is_delivered_once_without_a_dsn(sandbox, tmp_path):
    cfg, spool = _setup(sandbox, tmp_path)
    m = message(subject="gateway timeout")
    mid = spool.store(m.as_bytes(), ENVELOPE)
    lines, sends = [], []
    with Mailer(cfg) as mailer:
        graph = mailer.transport()
        graph.sleep = lambda s: None
        real = graph.session.request

        def request(method, url, **kw):            # Exchange takes the send, the gateway answers 504
            resp = real(method, url, **kw)
            if url.endswith("/send"):
                sends.append(url)
                if len(sends) == 1:
                    resp.status_code, resp._content = 504, b""
            return resp
        graph.session.request = request
        delivery = Delivery(cfg, spool, mailer, log_line=lines.append, settle=0.0)
        delivery.process(mid)
        assert len(sends) == 1                      # no second POST .../send inside the transport
        assert spool.ids("dead") == [] and spool.ids() == [mid], lines
        delivery.process(mid)                       # the next attempt asks Graph: the draft is gone, it was sent
    assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
    assert spool.ids() == [] and spool.ids("dead") == [] and spool.ids("done") == [mid], lines


@pytest.mark.parametrize("protocol", ["graph", "ews"])
def test_a_draft_deleted_before_its_send_is_made_again_not_bounced(sandbox, tmp_path, protocol):
    cfg, spool = _setup(sandbox, tmp_path, protocol)
    m = message(subject="deleted draft")
    mid = spool.store(m.as_bytes(), ENVELOPE)
    lines = []
    with Mailer(cfg) as mailer:
        real, cleaned = mailer.pacer.try_send, []

        def try_send(box, n=1):                     # between the draft's creation and its send: a user cleans Drafts
            if not cleaned:
                cleaned.append(len(_drafts(sandbox)))
                sandbox.tenant.mailbox(SENDER).folders["Drafts"].clear()
            return real(box, n)
        mailer.pacer.try_send = try_send
        delivery = Delivery(cfg, spool, mailer, log_line=lines.append)
        delivery.process(mid)
        assert cleaned == [1]
        assert spool.ids("dead") == [] and spool.ids() == [mid], lines     # no DSN either
        assert "made again" in lines[-1]
        delivery.process(mid)
    assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
    assert spool.ids() == [] and spool.ids("done") == [mid] and not _drafts(sandbox), lines


def test_a_send_in_doubt_past_max_age_is_checked_not_bounced(sandbox, tmp_path, monkeypatch):
    from wizard.runtime.graph import GraphTransport
    real = GraphTransport.send_draft

    def send_draft(self, who, sender, draft):       # Graph takes it; the answer is lost
        real(self, who, sender, draft)
        raise MailError(lookup("net.timeout", service_message="read timed out"))
    monkeypatch.setattr(GraphTransport, "send_draft", send_draft)
    cfg, spool = _setup(sandbox, tmp_path)
    m = message(subject="late")
    mid = spool.store(m.as_bytes(), ENVELOPE)
    spool.update(mid, received=time.time() - cfg.relay.max_age_seconds - 1)     # its last attempt, at max_age
    lines = []
    with Mailer(cfg) as mailer:
        Delivery(cfg, spool, mailer, log_line=lines.append).process(mid)
    assert spool.ids("dead") == [] and spool.ids() == [], lines          # no DSN saying "undeliverable"
    assert spool.ids("done") == [mid] and inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1


def test_a_send_in_doubt_is_kept_while_graph_cannot_say_whether_it_went(sandbox, tmp_path):
    cfg, spool = _setup(sandbox, tmp_path)
    lines = []
    with Mailer(cfg) as mailer:
        graph, (who, _) = mailer.transport(), mailer.sender_of(SENDER)
        mailer.sign_in(who)
        mid, _ = cut_by_a_crash(spool, graph, who, "sending", True)
        spool.update(mid, received=time.time() - cfg.relay.max_age_seconds + 1)
        sandbox.inject(Fault(path_prefix=f"/v1.0/users/{SENDER}/messages/", status=400, times=None))
        Delivery(cfg, spool, mailer, log_line=lines.append, settle=0.0).process(mid)
    assert spool.ids("dead") == [] and spool.ids() == [mid], lines
    assert "could not say whether its draft was sent" in lines[-1]


def test_queue_retry_of_a_buried_sending_message_checks_its_draft_not_sends_again(sandbox, tmp_path):
    cfg, spool = _setup(sandbox, tmp_path)
    with Mailer(cfg) as mailer:
        graph, (who, _) = mailer.transport(), mailer.sender_of(SENDER)
        mailer.sign_in(who)
        sent, sent_id = cut_by_a_crash(spool, graph, who, "sending", True)
        unsent, unsent_id = cut_by_a_crash(spool, graph, who, "drafted", False)
        for mid in (sent, unsent):
            spool.bury(mid, last_error="gave up")
            assert Spool(spool.root).retry(mid)    # the operator, trusting the DSN
        delivery = Delivery(cfg, spool, mailer, log_line=print, settle=0.0)
        for mid in (sent, unsent):
            delivery.process(mid)
    assert inbox_ids(sandbox, TO).count(sent_id) == 1
    assert inbox_ids(sandbox, TO).count(unsent_id) == 1
    assert spool.ids() == [] and not _drafts(sandbox)


def test_drop_during_delivery_stops_the_send(sandbox, tmp_path):
    cfg, spool = _setup(sandbox, tmp_path)
    m = message(subject="wrong recipients")
    mid = spool.store(m.as_bytes(), ENVELOPE)
    lines = []
    with Mailer(cfg) as mailer:
        real = mailer.pacer.try_send

        def try_send(box, n=1):                     # `relay queue drop ID` from another process, mid-delivery
            assert Spool(spool.root).drop(mid)
            return real(box, n)
        mailer.pacer.try_send = try_send
        Delivery(cfg, spool, mailer, log_line=lines.append).process(mid)
    assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 0
    assert lines == [f"{mid}: dropped before sending (`relay queue drop`); its draft deleted"]
    assert not _drafts(sandbox) and spool.ids("done") == []


@pytest.mark.parametrize("old,new", [("graph", "ews"), ("ews", "graph"), ("graph", "smtp"), ("ews", "smtp")])
def test_drafts_from_before_a_protocol_change_are_sent_once(sandbox, tmp_path, old, new):
    cfg_old = relay_config(sandbox, tmp_path, protocol=old)
    cfg_new = relay_config(sandbox, tmp_path, protocol=new)
    cfg_old.endpoints.graph_url = cfg_new.endpoints.graph_url = sandbox.base_url   # Graph: the cloud's by default
    cfg_new.incoming.server, cfg_new.incoming.port = sandbox.host, sandbox.port   # EWS: the cloud's Exchange host
    spool = Spool(cfg_old.relay.spool_path()).open()
    lines = []
    with Mailer(cfg_old) as before, Mailer(cfg_new) as after:
        upstream, (who, _) = before.transport(), before.sender_of(SENDER)
        before.sign_in(who)
        cases = [cut_by_a_crash(spool, upstream, who, "sending", True),
                 cut_by_a_crash(spool, upstream, who, "sending", False),
                 cut_by_a_crash(spool, upstream, who, "drafted", False)]
        delivery = Delivery(cfg_new, spool, after, log_line=lines.append, settle=0.0)
        for mid, _ in cases:
            delivery.process(mid)
    for mid, message_id in cases:
        assert inbox_ids(sandbox, TO).count(message_id) == 1, (mid, lines)
    assert spool.ids() == [] and spool.ids("dead") == [], lines
    assert not _drafts(sandbox), lines              # the unsent old draft is deleted, not left behind
    assert f"over {old}" in lines[1] and f"over {new}" in lines[2]   # finished where it was made / made anew


def _lose_create_answers(graph, late: list | None = None, times: int = 1):
    """The first ``times`` draft creations time out: Exchange makes the draft, the answer never comes (``late``
    given: the request reaches Exchange only later, when the next creation goes)."""
    import requests
    real, lost = graph.session.request, []

    def request(method, url, **kw):
        creating = method == "POST" and url.endswith("/messages")        # a draft
        if creating and late and lost:               # the delayed request lands now, before the new one
            real(method, url, **late.pop())
        if creating and len(lost) < times:
            lost.append(url)
            if late is not None:
                late.append(kw)
            else:
                real(method, url, **kw)
            raise requests.exceptions.ReadTimeout("read timed out")
        return real(method, url, **kw)
    graph.session.request = request
    return lost


@pytest.mark.parametrize("lands", ["at once", "later"])
def test_a_draft_creation_that_timed_out_leaves_no_draft_behind(sandbox, tmp_path, lands):
    cfg, spool = _setup(sandbox, tmp_path)
    m = message(subject="timed out")
    mid = spool.store(m.as_bytes(), {**ENVELOPE, "message_id": m["Message-ID"]})
    lines = []
    with Mailer(cfg) as mailer:
        lost = _lose_create_answers(mailer.transport(), late=[] if lands == "later" else None)
        delivery = Delivery(cfg, spool, mailer, log_line=lines.append, settle=0.0)
        delivery.process(mid)
        assert lost and spool.ids() == [mid] and len(_drafts(sandbox)) == (1 if lands == "at once" else 0), lines
        delivery.process(mid)                      # the next attempt
    assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
    assert spool.ids("done") == [mid] and not _drafts(sandbox), lines
    assert "unsent draft(s) of it that an earlier attempt left" in lines[-2], lines


class Crash(BaseException):
    """The relay process dies here."""


def test_a_crash_between_the_draft_and_its_journal_leaves_no_draft_behind(sandbox, tmp_path):
    cfg, spool = _setup(sandbox, tmp_path)
    m = message(subject="crash")
    mid = spool.store(m.as_bytes(), {**ENVELOPE, "message_id": m["Message-ID"]})
    with Mailer(cfg) as mailer:
        real = spool.update

        def update(i, **changes):                  # the draft is made; the relay dies before journaling it
            if changes.get("draft_id"):
                raise Crash()
            return real(i, **changes)
        spool.update = update
        with pytest.raises(Crash):
            Delivery(cfg, spool, mailer, settle=0.0).process(mid)
        assert len(_drafts(sandbox)) == 1
    with Mailer(cfg) as mailer:                    # the next start
        fresh = Spool(spool.root).open()
        Delivery(cfg, fresh, mailer, settle=0.0).process(mid)
    assert inbox_ids(sandbox, TO).count(m["Message-ID"]) == 1
    assert fresh.ids("done") == [mid] and not _drafts(sandbox)
