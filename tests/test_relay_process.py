"""`mailwizard relay` as a process: the CLI (add-client, status, queue), SIGHUP and SIGTERM, and the
crash test (SIGKILL at random moments while several clients send; every accepted message delivered
exactly once over Graph and over EWS)."""

from __future__ import annotations

import json
import random
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time

import pytest

from relay_helpers import TO, message, wait_for
from wizard.cli.main import main
from wizard.config.files import save
from wizard.config.relay import Relay
from wizard.sandbox.tenant import Mailbox


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = _free_port()
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


@pytest.mark.parametrize("protocol", ["graph", "ews"])
def test_crash_test_sigkill_exactly_once(tenant_with_senders, tmp_path, capsys, protocol):
    sb, senders = tenant_with_senders
    port = _free_port()
    path = _config(sb, tmp_path, port, protocol)
    clients = {}
    for i in range(5):                                   # 5 relay clients, two senders each
        clients[f"c{i}"] = (_add_client(path, f"c{i}", senders[2 * i], senders[2 * i + 1], capsys=capsys),
                            senders[2 * i: 2 * i + 2])
    relay = RelayProcess(path, tmp_path / "relay.log")
    relay.start(port)
    accepted, unknown, errors, lock = [], [], [], threading.Lock()
    per_thread, rng = 8, random.Random(16)

    def client(name: str, password: str, addresses: list[str], seed: int):
        r = random.Random(seed)
        sent, conn = 0, None
        deadline = time.monotonic() + 180       # a bound, not a pace: a loaded CI machine is slow
        while sent < per_thread and time.monotonic() < deadline:
            if conn is None:
                try:
                    conn = smtplib.SMTP("127.0.0.1", port, timeout=10)
                    conn.login(name, password)
                except (OSError, smtplib.SMTPException):   # down (being restarted): no message given yet
                    conn = None
                    wait_for(lambda: RelayProcess._listening(port), 30, "the relay back")
                    continue
            m = message(sender=r.choice(addresses), subject=f"{name} {sent}")
            try:
                conn.send_message(m)
                with lock:
                    accepted.append(m["Message-ID"])
            except (OSError, smtplib.SMTPException) as exc:
                with lock:                               # killed mid-way: no 250, maybe stored
                    unknown.append(m["Message-ID"])
                    errors.append(repr(exc))
                conn = None
            sent += 1
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass

    threads = [threading.Thread(target=client, args=(n, p, a, i)) for i, (n, (p, a)) in
               enumerate(list(clients.items()) * 2)]      # 10 concurrent connections
    for t in threads:
        t.start()
    kills = 0
    try:
        for low, high in ((0.1, 0.3), (0.35, 0.55), (0.6, 0.8)):     # at random moments along the way
            mark = int(80 * rng.uniform(low, high))
            wait_for(lambda: len(accepted) + len(unknown) >= mark, 180, "the clients' progress")
            time.sleep(rng.uniform(0.0, 0.05))
            relay.kill()
            kills += 1
            relay.start(port)
        for t in threads:
            t.join(180)
        total = len(accepted) + len(unknown)
        assert total == 80 and len(accepted) >= 50, (len(accepted), len(unknown), errors[:3])
        from wizard.relay.spool import Spool
        spool = Spool(tmp_path / "spool")
        wait_for(lambda: spool.ids() == [], timeout=180, what="the queue to empty")
        got = [m.internet_message_id for m in sb.tenant.mailbox(TO).inbox]
        assert [mid for mid in accepted if got.count(mid) != 1] == []      # exactly once each
        assert [mid for mid in unknown if got.count(mid) > 1] == []        # never twice
        assert spool.ids("dead") == [], [spool.journal(m, "dead").get("last_error") for m in spool.ids("dead")]
        assert kills == 3
    finally:
        relay.proc.send_signal(signal.SIGTERM)
        relay.proc.wait(20)
