"""Shared by the relay tests: a relay in a thread against the sandbox, and waiting on conditions."""

from __future__ import annotations

import smtplib
import threading
import time
import uuid
from email.message import EmailMessage

from wizard.config.relay import Relay, RelayClient
from wizard.relay.auth import hash_password

SENDER = "erp@contoso.com"
TO = "test.recipient@contoso.com"
PASSWORD = "relay-Passw0rd"
ENVELOPE = {"client": "erp", "mail_from": SENDER, "rcpts": [TO], "bcc": [], "sender": SENDER}


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def message(sender: str = SENDER, to: str = TO, subject: str = "Invoice", body: str = "Hello.\n",
            bcc_hidden: bool = True) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = f"<{uuid.uuid4().hex}@contoso.com>"
    m.set_content(body)
    return m


def cut_by_a_crash(spool, upstream, who, state: str, sent: bool) -> tuple[str, str]:
    """A spooled message whose delivery a crash cut at ``state`` ("drafted" or "sending"): its draft
    made upstream (Graph or EWS) and, when ``sent``, already sent. (spool id, Message-ID)."""
    m = message(subject=state)
    mid = spool.store(m.as_bytes(), ENVELOPE)
    draft = upstream.create_mime_draft(who, SENDER, m.as_bytes())
    if sent:                                   # the crash came after the upstream took the send
        upstream.send_draft(who, SENDER, draft)
    via = "ews" if type(upstream).__name__ == "EwsTransport" else "graph"
    spool.update(mid, state=state, draft_id=draft, draft_via=via, sending_at=0.0)
    return mid, m["Message-ID"]


def inbox_ids(sb, address: str) -> list[str]:
    box = sb.tenant.mailbox(address)
    return [m.internet_message_id for m in box.inbox] if box else []


class RunningRelay:
    def __init__(self, cfg, **delivery_options):
        from wizard.relay import daemon
        self.cfg = cfg
        self.lines: list[str] = []
        self.stop = threading.Event()
        self._port: list[int] = []
        self.imap_port: list[int] = []
        self.pop3_port: list[int] = []
        self.thread = threading.Thread(target=daemon.run, args=(cfg, lambda: cfg), daemon=True, kwargs=dict(
            log=self.lines.append, stop_event=self.stop, ready=self._port.append, install_signals=False,
            on_imap=self.imap_port.append, on_pop3=self.pop3_port.append,
            delivery_options={"base_delay": 0.2, **delivery_options}))
        self.thread.start()
        wait_for(lambda: self._port or not self.thread.is_alive(), 20, "the relay to listen")
        assert self._port, self.lines

    @property
    def port(self) -> int:
        return self._port[0]

    @property
    def spool(self):
        from wizard.relay.spool import Spool
        return Spool(self.cfg.relay.spool_path())

    def status(self) -> dict:
        from wizard.relay.status import status
        return status(self.spool, self.cfg.outgoing.protocol)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def relay_config(sb, tmp_path, protocol: str = "graph", **relay_fields):
    cfg = sb.config(protocol=protocol)
    clients = relay_fields.pop("clients", None) or [
        RelayClient(name="erp", password_hash=hash_password(PASSWORD), senders=[SENDER])]
    relay_fields.setdefault("imap_listen", "127.0.0.1:0")
    cfg.relay = Relay(listen="127.0.0.1:0", spool=str(tmp_path / "spool"), clients=clients, **relay_fields)
    return cfg


def login(port: int, user: str = "erp", password: str = PASSWORD) -> smtplib.SMTP:
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    s.login(user, password)
    return s
