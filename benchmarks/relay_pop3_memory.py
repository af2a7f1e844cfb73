"""Memory of the relay while POP3 RETR streams a large message, against the message's size.

The sandbox runs in this process with two messages in a client's INBOX: a small one (1 KB) and a
large one (``--size-mb`` of attachment). ``mailwizard relay`` runs as a child process with
``pop3_listen`` set; poplib logs in and RETRs the small message, then the large one. The relay's
peak resident memory (VmHWM in /proc/PID/status) is set back to its resident memory after the small
RETR (the floor: same process, same session, signed in) and read after the large one: the measure is
how much the large RETR raised it.

Target: the large RETR raises the relay's peak by at most half the message's size, i.e. the message
is never held whole in the relay (it streams in pieces of 1 MiB from the upstream IMAP). The bytes
received are checked against the message. Exit 0 met, 1 not met, 2 the run failed.

    .venv/bin/python benchmarks/relay_pop3_memory.py [--size-mb 20]
"""

from __future__ import annotations

import argparse
import os
import poplib
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, env, table  # noqa: E402

MAILBOX = "orders@contoso.com"
PASSWORD = "bench-Passw0rd"


def kib(pid: int, field: str = "VmHWM") -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


def reset_peak(pid: int) -> int:
    """Set the process's peak to its current resident memory (Linux: clear_refs 5), so that the
    password check's scrypt (16 MB for a moment) does not hide what follows; the floor in KiB."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return kib(pid, "VmRSS")
    except OSError:
        return kib(pid)


def run(size_mb: int) -> tuple[int, int, int, float]:
    """(message bytes, peak KiB after the small RETR, peak KiB after the large RETR, large RETR seconds)."""
    from email.message import EmailMessage

    from wizard.config import files as config_io
    from wizard.config.relay import Relay, RelayClient
    from wizard.relay.auth import hash_password
    from wizard.sandbox import Sandbox
    from wizard.sandbox.mailstore import deliver, from_mime, to_mime
    with Sandbox() as sb, tempfile.TemporaryDirectory(prefix="pop3-bench-") as tmp:
        tmp = Path(tmp)
        small = EmailMessage()
        small["From"], small["To"], small["Subject"] = "a@example.com", MAILBOX, "small"
        small.set_content("x" * 1000)
        large = EmailMessage()
        large["From"], large["To"], large["Subject"] = "b@example.com", MAILBOX, "large"
        large.set_content("The scan is attached.")
        large.add_attachment(os.urandom(size_mb * 1024 * 1024), maintype="application", subtype="pdf",
                             filename="scan.pdf")
        for m in (small, large):
            deliver(sb.tenant, from_mime(m.as_bytes()), [MAILBOX])
        want = [to_mime(m) for m in sb.tenant.mailbox(MAILBOX).inbox]
        cfg = sb.config(protocol="graph+imap")
        cfg.relay = Relay(listen="127.0.0.1:0", imap_listen="", pop3_listen="127.0.0.1:0", spool=str(tmp / "spool"),
                          clients=[RelayClient(name="bench", password_hash=hash_password(PASSWORD),
                                               senders=[MAILBOX])])
        path = config_io.save(cfg, tmp / "bench.toml")
        proc = subprocess.Popen([sys.executable, "-m", "wizard", "relay", "--config", str(path)],
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env(tmp),
                                cwd=str(ROOT))
        port: list[int] = []
        lines: list[str] = []

        def read_log():
            for line in proc.stderr:
                lines.append(line)
                m = re.search(r"POP3 on 127\.0\.0\.1:(\d+)", line)
                if m:
                    port.append(int(m.group(1)))
        threading.Thread(target=read_log, daemon=True).start()
        try:
            deadline = time.monotonic() + 60
            while not port:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the relay did not start POP3:\n" + "".join(lines))
                time.sleep(0.05)
            pop = poplib.POP3("127.0.0.1", port[0], timeout=120)
            pop.user("bench")
            pop.pass_(PASSWORD)
            got = b"\r\n".join(pop.retr(1)[1]) + b"\r\n"
            if got != want[0]:
                raise RuntimeError("the small message came back changed")
            floor = reset_peak(proc.pid)
            began = time.perf_counter()
            resp, body, _ = pop.retr(2)
            seconds = time.perf_counter() - began
            measured = kib(proc.pid)
            if b"\r\n".join(body) + b"\r\n" != want[1]:
                raise RuntimeError("the large message came back changed")
            del body
            pop.quit()
            return len(want[1]), floor, measured, seconds
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=20, help="the large message's attachment, in MB (before base64)")
    args = ap.parse_args()
    try:
        size, floor, measured, seconds = run(args.size_mb)
    except Exception as exc:
        print(f"relay_pop3_memory: the run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    grown = (measured - floor) * 1024
    ratio = grown / size
    print(table([("message (as RETR sends it)", f"{size / 2 ** 20:.1f} MiB", "1.00x"),
                 ("relay memory after the small RETR (floor)", f"{floor / 1024:.1f} MiB", ""),
                 ("relay peak after the large RETR", f"{measured / 1024:.1f} MiB", ""),
                 ("peak raised by the large RETR", f"{grown / 2 ** 20:.1f} MiB", f"{ratio:.2f}x"),
                 ("large RETR wall time", f"{seconds:.2f} s", "")],
                ("measure", "value", "vs message")))
    met = ratio <= 0.5
    print(f"the large RETR raised the relay's peak memory by {ratio:.2f}x the message's size "
          f"(target: at most 0.5x, the message never held whole): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
