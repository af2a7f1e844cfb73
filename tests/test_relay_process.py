"""`mailwizard relay` as a process: the CLI (add-client, status, queue), SIGHUP and SIGTERM, and the
crash test (SIGKILL at random moments while several clients send; every accepted message delivered
exactly once over Graph and over EWS)."""

from __future__ import annotations

import email.policy
import json
import os
import random
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time

import pytest

from interop_servers import free_port
from relay_helpers import TO, inbox_ids, message, wait_for
from wizard.cli.main import main
from wizard.config.files import save
from wizard.config.relay import Relay
from wizard.sandbox.tenant import Mailbox


def _add_client(path, name, *senders, capsys) -> str:
    args = ["relay", "add-client", name, "--config", str(path)]
    for a in senders:
        args += ["--from", a]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("password: ")
    return out[0].split(": ", 1)[1]


class RelayProcess:
    def __init__(self, path, log):
        self.path, self.log = path, log
        self.proc = None

    def start(self, port: int):
        # A draft whose send a SIGKILL cut off waits MAILWIZARD_RELAY_SETTLE seconds before it is
        # sent again (120 by default, for Exchange's delay): 2 here, against the sandbox.
        self.proc = subprocess.Popen([sys.executable, "-m", "wizard", "relay", "--config", str(self.path)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),
                                     env={**os.environ, "MAILWIZARD_RELAY_SETTLE": "2"})
        wait_for(lambda: self._listening(port) or self.proc.poll() is not None, 30, "the relay process")
        assert self.proc.poll() is None, self.log.read_text()

    @staticmethod
    def _listening(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                return s.recv(100).startswith(b"220")
        except OSError:
            return False

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def tenant_with_senders(fresh_sandbox):
    senders = [f"shop{i}@contoso.com" for i in range(10)]
    fresh_sandbox.tenant.mailboxes += [Mailbox(a) for a in senders]
    return fresh_sandbox, senders


def _config(sb, tmp_path, port, protocol="graph"):
    cfg = sb.config(protocol=protocol)
    cfg.relay = Relay(listen=f"127.0.0.1:{port}", spool=str(tmp_path / "spool"))
    path = tmp_path / "mailwizard.toml"
    save(cfg, path)
    return path


def test_cli_add_client_status_queue_and_signals(tenant_with_senders, tmp_path, capsys):
    sb, senders = tenant_with_senders
    port = free_port()
    path = _config(sb, tmp_path, port)
    assert main(["relay", "--config", str(path)]) == 2                      # no client yet: says how to add one
    assert "add-client" in capsys.readouterr().err
    password = _add_client(path, "erp", senders[0], capsys=capsys)
    text = path.read_text()
    assert password not in text and "scrypt$" in text and senders[0] in text
    assert main(["relay", "add-client", "erp", "--from", senders[0], "--config", str(path)]) == 2
    assert main(["relay", "add-client", "x", "--from", "not-an-address", "--config", str(path)]) == 2
    capsys.readouterr()
    log = tmp_path / "relay.log"
    relay = RelayProcess(path, log)
    relay.start(port)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.login("erp", password)
            m = message(sender=senders[0])
            s.send_message(m)
        wait_for(lambda: m["Message-ID"] in [x.internet_message_id for x in sb.tenant.mailbox(TO).inbox],
                 what="delivery")
        # a second client added while it runs: SIGHUP picks it up
        second = _add_client(path, "shop", senders[1], capsys=capsys)
        relay.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded the config: 2 client(s)" in log.read_text(), what="the reload")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.login("shop", second)
        assert main(["relay", "status", "--json", "--config", str(path)]) == 0
        st = json.loads(capsys.readouterr().out)
        assert st["delivered_today"] == 1 and st["queued"] == 0 and st["retrying"] == [] and st["dead"] == 0
        # queue retry / drop on the running relay (a dead message, put there as the delivery would)
        from wizard.relay.spool import Spool
        spool = Spool(tmp_path / "spool")
        mid = spool.store(message(sender=senders[0]).as_bytes(), {"client": "erp", "mail_from": senders[0],
                                                                  "rcpts": [TO], "bcc": [], "sender": senders[0]})
        spool.bury(mid, last_error="test")
        assert main(["relay", "queue", "list", "--config", str(path)]) == 0
        assert mid in capsys.readouterr().out
        assert main(["relay", "queue", "retry", mid[:15], "--config", str(path)]) == 0
        wait_for(lambda: spool.ids() == [] and spool.ids("dead") == [], what="the retried message delivered")
        assert main(["relay", "queue", "drop", "nonexistent", "--config", str(path)]) == 1
        # a broken file on SIGHUP: said, and the running settings stay
        good = path.read_text()
        path.write_text(good.replace('listen = "127.0.0.1', 'listen = "0.0.0.0'))
        relay.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in log.read_text(), what="the refused reload")
        assert "only with TLS" in log.read_text()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.login("erp", password)
        assert main(["relay", "--config", str(path)]) == 2                     # nor does a new relay start on it
        assert "relay.listen" in capsys.readouterr().err
        path.write_text(good)
        relay.proc.send_signal(signal.SIGTERM)
        assert relay.proc.wait(20) == 0
        assert "stopped;" in log.read_text()
        lines = [ln for ln in log.read_text().splitlines() if "delivered from" in ln]
        assert len(lines) == 2 and password not in log.read_text()
    finally:
        if relay.proc.poll() is None:
            relay.kill()


def test_signals_in_a_burst_never_hang_the_relay(tenant_with_senders, tmp_path, capsys):
    """SIGHUPs sent as fast as a script can (logrotate, a loop of `systemctl reload`), then SIGTERM: the
    relay reloads, stays up and stops within its time. Its handlers once took the lock of a
    threading.Event the interrupted main thread could hold, and then waited for it forever."""
    sb, senders = tenant_with_senders
    port = free_port()
    path = _config(sb, tmp_path, port)
    _add_client(path, "erp", senders[0], capsys=capsys)
    log = tmp_path / "relay.log"
    relay = RelayProcess(path, log)
    relay.start(port)
    try:
        for _ in range(1500):
            relay.proc.send_signal(signal.SIGHUP)
            relay.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded the config" in log.read_text(), what="a reload")
        assert relay._listening(port), log.read_text()
        for _ in range(200):
            relay.proc.send_signal(signal.SIGTERM)
        assert relay.proc.wait(30) == 0, log.read_text()
        assert "stopped;" in log.read_text() and "Traceback" not in log.read_text()
    finally:
        if relay.proc.poll() is None:
            relay.kill()


def test_a_sighup_as_soon_as_the_port_answers_never_kills_the_relay(sandbox, tmp_path, capsys):
    """`systemctl reload` right after a start: the handlers are there before the port opens (SIGHUP's
    default action ends the process: 2 of 8 relays died so, and a burst test timed out in CI)."""
    from wizard.sandbox import sample
    port = free_port()
    path = _config(sandbox, tmp_path, port)
    _add_client(path, "erp", sample.SENDER, capsys=capsys)
    log = tmp_path / "relay.log"
    for _ in range(10):
        relay = RelayProcess(path, log)
        relay.start(port)                      # returns at the first 220 it reads
        relay.proc.send_signal(signal.SIGHUP)
        try:
            wait_for(lambda: log.read_text().count("reloaded the config") > 0 or relay.proc.poll() is not None,
                     what="the reload")
            assert relay.proc.poll() is None, "killed by the SIGHUP"
        finally:
            if relay.proc.poll() is None:
                relay.proc.send_signal(signal.SIGTERM)
                assert relay.proc.wait(20) == 0
        log.write_text("")


def test_sighup_applies_a_new_protocol_and_a_rotated_secret(sandbox, tmp_path, capsys):
    """`systemctl reload` after the config moved from SMTP to Graph, then after `rotate` wrote a new
    secret: the next messages go the new way, signed in with the new secret (the running relay kept
    the Mailer of its start, while `relay status` read the file and said Graph)."""
    from urllib.parse import quote_plus

    from wizard.config.files import load
    from wizard.sandbox import sample
    from wizard.sandbox.tenant import Secret
    new_secret = "Zt93Q~Pq4WmXc8NvB2LkRj6HsYd1GfU5eTa7OiNw"
    sb, senders = sandbox, [sample.SENDER]
    port = free_port()
    path = _config(sb, tmp_path, port, protocol="smtp")
    password = _add_client(path, "erp", senders[0], capsys=capsys)
    log = tmp_path / "relay.log"
    relay = RelayProcess(path, log)
    relay.start(port)

    def delivered() -> list[str]:
        return [ln for ln in log.read_text().splitlines() if "delivered from" in ln]

    def send(subject: str) -> str:
        """The log line of its delivery (written after the mailbox has it)."""
        before = len(delivered())
        m = message(sender=senders[0], subject=subject)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.login("erp", password)
            s.send_message(m)
        wait_for(lambda: m["Message-ID"] in inbox_ids(sb, TO), what=subject)
        return wait_for(lambda: delivered()[before:], what="its log line")[0]

    def reload(words: str) -> None:
        relay.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: words in log.read_text(), what=words)
    try:
        assert " over smtp " in send("first")
        cfg = load(path)
        graph = sb.config(protocol="graph")
        cfg.outgoing, cfg.endpoints = graph.outgoing, graph.endpoints
        save(cfg, path)
        reload("[endpoints], [outgoing] changed")
        assert "delivering exactly once over Graph" in log.read_text()
        assert " over graph " in send("second")
        app = sb.tenant.app(sample.SECRET_APP_ID)
        app.secrets.append(Secret(new_secret, "e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a8b",
                                  app.secrets[0].expires))
        cfg = load(path)
        cfg.auth.client_secret = new_secret
        save(cfg, path)
        reload("[auth] changed")
        sb.clear()
        assert " over graph " in send("third")
        assert any(quote_plus(new_secret) in r.body.decode() or new_secret in r.body.decode()
                   for r in sb.requests if r.path.endswith("/token"))
        relay.proc.send_signal(signal.SIGTERM)
        assert relay.proc.wait(20) == 0
    finally:
        if relay.proc.poll() is None:
            relay.kill()


def _status_cli(path) -> dict:
    """`mailwizard relay status --json` as its own process (what an operator or a monitor runs)."""
    done = subprocess.run([sys.executable, "-m", "wizard", "relay", "status", "--json", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class _Cut(Exception):
    """The connection died before the message's final "." went out: the relay never stored it."""


class _Unknown(Exception):
    """The connection died after the "." and before the reply: stored or not, never twice."""


def _wire(m) -> bytes:
    data = re.sub(rb"(?m)^\.", b"..", m.as_bytes(policy=email.policy.SMTP))
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _submit(conn, envelope_from: str, m) -> str:
    """One message, the dialogue by hand so that where a failure hits is known: "accepted" (250) or
    "refused" (an error reply); raises _Cut or _Unknown."""
    try:
        code, _ = conn.mail(envelope_from)
        if code == 250:
            code, _ = conn.rcpt(TO)
        if code in (250, 251):
            code, _ = conn.docmd("DATA")
    except (OSError, smtplib.SMTPException):
        raise _Cut from None
    if code != 354:
        return "refused"
    try:
        conn.send(_wire(m) + b".\r\n")
        code, _ = conn.getreply()
    except (OSError, smtplib.SMTPException):
        raise _Unknown from None
    return "accepted" if code == 250 else "refused"


class _Submissions:
    """What the clients were told, by Message-ID."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kinds = {"accepted": [], "refused": [], "cut": [], "unknown": []}

    def add(self, kind: str, message_id: str) -> None:
        with self.lock:
            self.kinds[kind].append(message_id)

    def snapshot(self) -> dict:
        with self.lock:
            return {k: list(v) for k, v in self.kinds.items()}


def _check_truth(path, sb, subs: _Submissions, *, drained: bool, said: str) -> dict:
    """`relay status --json` against what the clients were told and what the mailbox holds."""
    st = _status_cli(path)
    s = subs.snapshot()
    ours = {mid for ids in s.values() for mid in ids}
    got = [mid for mid in inbox_ids(sb, TO) if mid in ours]
    rows = st["queued_messages"] + st["retrying"]
    in_send = sum(1 for r in rows if r["state"] == "sending")
    total = st["queued"] + len(st["retrying"]) + st["dead"] + st["delivered_today"]
    assert st["dead"] == 0 and st["dead_messages"] == [], (said, st["dead_messages"])
    assert len(got) == len(set(got)), f"{said}: delivered twice"
    assert not set(got) & set(s["cut"] + s["refused"]), f"{said}: a refused or cut-off message was delivered"
    assert len(s["accepted"]) <= total <= len(s["accepted"]) + len(s["unknown"]), (said, st, len(s["accepted"]))
    assert st["delivered_today"] <= len(got) <= st["delivered_today"] + in_send, (said, st, len(got))
    if drained:
        assert st["queued"] == 0 and st["retrying"] == [] and st["delivered_today"] == len(got), (said, st)
        assert set(s["accepted"]) <= set(got), f"{said}: an accepted message is missing"
    return st


@pytest.mark.parametrize("protocol", ["graph", "ews"])
def test_crash_test_sigkill_exactly_once(tenant_with_senders, tmp_path, capsys, protocol):
    """200 messages from 10 concurrent clients; the relay SIGKILLed at random moments (seeded) at least
    3 times, at least once with deliveries cut mid-way, and restarted. After each kill, after each restart
    (queue drained) and at the end, `relay status --json` tells the truth; every accepted message is
    delivered exactly once, a refused or cut-off one never, one cut after its "." at most once."""
    from wizard.relay.spool import Spool
    sb, senders = tenant_with_senders
    seed = int(os.environ.get("MAILWIZARD_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    sb.latency = 0.02                          # Graph/EWS take a moment: kills find deliveries in flight
    port = free_port()
    path = _config(sb, tmp_path, port, protocol)
    clients = [(f"c{i}", _add_client(path, f"c{i}", senders[i], capsys=capsys), senders[i]) for i in range(10)]
    print(f"crash test seed {seed} (MAILWIZARD_CRASH_SEED={seed} repeats the kill moments)")
    relay = RelayProcess(path, tmp_path / "relay.log")
    relay.start(port)
    spool = Spool(tmp_path / "spool")
    subs, go, lock = _Submissions(), threading.Event(), threading.Lock()
    parked, finished, not_allowed = set(), [], set()
    go.set()
    per_client, total = 20, 200

    def client(i: int, name: str, password: str, sender: str):
        conn, n = None, 0
        other = senders[(i + 1) % 10]                    # an address this client may not use
        deadline = time.monotonic() + 120                # a bound, not a pace
        while n < per_client and time.monotonic() < deadline:
            if not go.is_set():                          # the relay is down: wait for its restart
                with lock:
                    parked.add(i)
                go.wait()
                with lock:
                    parked.discard(i)
            if conn is None:
                try:
                    conn = smtplib.SMTP("127.0.0.1", port, timeout=10)
                    conn.login(name, password)
                except (OSError, smtplib.SMTPException):   # down: no message given yet
                    conn = None
                    time.sleep(0.02)
                    continue
            bad = n == 7                                 # refused: a sender not allowed (envelope or header)
            m = message(sender=other if bad and i % 2 else sender, subject=f"{name} {n}")
            if bad:
                with lock:
                    not_allowed.add(m["Message-ID"])
            try:
                kind = _submit(conn, other if bad and not i % 2 else sender, m)
            except _Cut:
                kind = "cut"
            except _Unknown:
                kind = "unknown"
            subs.add(kind, m["Message-ID"])
            if kind != "accepted":
                conn.close()
                conn = None
            n += 1
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
        with lock:
            finished.append(i)

    def progress() -> int:
        return sum(len(v) for v in subs.snapshot().values())

    def half_message():
        """A message whose DATA is half sent when the relay dies: it must never be delivered."""
        name, password, sender = clients[0]
        conn = smtplib.SMTP("127.0.0.1", port, timeout=10)
        conn.login(name, password)
        m = message(sender=sender, subject="half")
        assert conn.mail(sender)[0] == 250 and conn.rcpt(TO)[0] == 250 and conn.docmd("DATA")[0] == 354
        data = _wire(m)
        conn.send(data[:len(data) // 2])
        return conn, m, data[len(data) // 2:]

    def in_delivery() -> list:
        return [j["id"] for j in spool.journals() if j.get("state") in ("drafted", "sending")]

    threads = [threading.Thread(target=client, args=(i, *c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()

    def more(count: int) -> None:
        """Messages for the relay to deliver when the clients are done (a further kill needs some)."""
        for n in range(count):
            name, password, sender = clients[n % 10]
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as conn:
                conn.login(name, password)
                m = message(sender=sender, subject=f"more {n}")
                subs.add(_submit(conn, sender, m), m["Message-ID"])

    kills, cut_deliveries, extra, started = [], 0, 0, time.monotonic()
    try:
        marks = sorted(rng.sample(range(20, total - 20), 3))
        while len(kills) < 3 or (cut_deliveries == 0 and len(kills) < 6):
            mark = marks[len(kills)] if len(kills) < 3 else progress()
            wait_for(lambda: progress() >= mark or len(finished) == 10, 120, "the clients' progress")
            if len(kills) >= 3 and len(finished) == 10:     # no delivery cut yet and the clients are done
                more(10)
                extra += 10
            conn, half, rest = half_message()
            wait_for(lambda: in_delivery() or len(finished) == 10 and not spool.ids(), 20, "a delivery in flight")
            time.sleep(rng.uniform(0.0, 0.03))          # a random moment
            relay.kill()
            go.clear()
            with pytest.raises((OSError, smtplib.SMTPException)):
                conn.send(rest + b".\r\n")
                conn.getreply()
            subs.add("cut", half["Message-ID"])
            wait_for(lambda: len(parked) + len(finished) == 10, 60, "the clients to wait")
            cut = in_delivery()
            cut_deliveries += len(cut)
            kills.append((progress(), len(cut)))
            said = f"seed {seed}, kill {len(kills)} at {kills[-1][0]} messages, {len(cut)} deliveries cut"
            _check_truth(path, sb, subs, drained=False, said=said + " (relay down)")
            relay.start(port)
            wait_for(lambda: spool.ids() == [], 60, "the queue to drain after the restart")
            _check_truth(path, sb, subs, drained=True, said=said + " (restarted, queue drained)")
            go.set()
        for t in threads:
            t.join(120)
        wait_for(lambda: spool.ids() == [], 60, "the queue to drain")
        st = _check_truth(path, sb, subs, drained=True, said=f"seed {seed}, the end")
        s = subs.snapshot()
        got = inbox_ids(sb, TO)
        assert sum(len(v) for v in s.values()) == total + len(kills) + extra, (seed, {k: len(v) for k, v in s.items()})
        assert [mid for mid in s["accepted"] if got.count(mid) != 1] == [], seed       # exactly once each
        assert [mid for mid in s["unknown"] if got.count(mid) > 1] == [], seed          # never twice
        # a kill costs each client at most the message it was sending (cut or unknown)
        assert len(s["accepted"]) >= total - 10 - 10 * len(kills), (seed, {k: len(v) for k, v in s.items()})
        # a sender the client may not use: refused, or cut by a kill before the answer; never taken
        assert len(not_allowed) == 10 and not not_allowed & set(s["accepted"] + got), seed
        assert st["delivered_today"] == len(s["accepted"]) + sum(1 for mid in s["unknown"] if mid in got)
        assert len(kills) >= 3 and cut_deliveries >= 1, (seed, kills)
        print(f"crash test: {len(kills)} kills (messages so far, deliveries cut): {kills}; "
              f"{ {k: len(v) for k, v in s.items()} }; {time.monotonic() - started:.1f} s")
    finally:
        go.set()
        relay.proc.send_signal(signal.SIGTERM)
        relay.proc.wait(20)
