"""Shared by the relay benchmarks: a config with one relay client written for a sandbox, `mailwizard relay`
as a subprocess (isolated environment from ``_common.env``), and what /proc says about that process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, env

PASSWORD = "bench-Passw0rd"
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relay_config(sb, tmp: Path, senders: list[str], protocol: str = "graph", name: str = "relay.toml",
                 spool: str = "spool") -> tuple[Path, int]:
    """A config delivering over ``protocol`` to the sandbox, one relay client "bench" (password PASSWORD)
    allowed ``senders``; returns (its path, the relay's port)."""
    from wizard.config.files import save
    from wizard.config.relay import Relay, RelayClient
    from wizard.relay.auth import hash_password
    from wizard.sandbox.tenant import Mailbox
    for address in senders:
        if sb.tenant.mailbox(address) is None:
            sb.tenant.mailboxes.append(Mailbox(address))
    port = free_port()
    cfg = sb.config(protocol=protocol)
    cfg.relay = Relay(listen=f"127.0.0.1:{port}", spool=str(tmp / spool), clients=[
        RelayClient(name="bench", password_hash=hash_password(PASSWORD), senders=list(senders))])
    return save(cfg, tmp / name), port


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            return s.recv(100).startswith(b"220")
    except OSError:
        return False


class RelayProcess:
    """`python -m wizard relay --config PATH` with its stderr in ``log``."""

    def __init__(self, path: Path, port: int, tmp: Path, log: Path):
        self.path, self.port, self.tmp, self.log = path, port, tmp, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RelayProcess":
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "wizard", "relay", "--config", str(self.path)],
                                         stdout=subprocess.DEVNULL, stderr=err, env=env(self.tmp), cwd=str(ROOT))
        wait_until(lambda: listening(self.port) or self.proc.poll() is not None, 60, "the relay to listen")
        if self.proc.poll() is not None:
            raise RuntimeError(f"the relay exited: {self.log.read_text()[-2000:]}")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def rss_kib(self) -> int:
        """VmRSS of the relay process (KiB), from /proc/PID/status."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc/PID/status")

    def cpu_seconds(self) -> float:
        """utime + stime of the relay process (all its threads), from /proc/PID/stat."""
        text = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = text[text.rindex(")") + 2:].split()      # after "(comm)": field 3 onwards
        return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15: utime, stime

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def submit(port: int, messages: list[tuple[str, str, bytes]], timeout: float = 60) -> None:
    """Send ``(mail_from, rcpt, data)`` messages on one logged-in smtplib connection."""
    import smtplib
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as s:
        s.login("bench", PASSWORD)
        for sender, rcpt, data in messages:
            s.sendmail(sender, [rcpt], data)


def mime(sender: str, rcpt: str, subject: str, body: str = "Hello.\r\n") -> bytes:
    import uuid
    return (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@contoso.com>\r\n\r\n{body}").encode()
