"""Memory and CPU of `mailwizard relay` (a subprocess) while messages wait in its queue, against the same
relay with nothing queued, measured in the same run.

- RSS: the relay delivers one message (so its delivery code is loaded), then Graph answers every request
  with 503 (a transient failure: every message stays queued and is tried again later). 10, 100 and 1,000
  messages are submitted over smtplib (10 connections at once); once every queued message has been tried
  at least once, VmRSS is read from /proc/PID/status. The floor: the RSS with 0 queued, after the first
  delivery. Also the relay's CPU time (utime + stime from /proc/PID/stat) per accepted message while each
  stage fills (the SMTP side, the spool's fsyncs, the failed attempts, the scheduler's own work).
- Idle scheduler: the 1,000 messages are given a next attempt an hour away (what the journals say after a
  few failures at the longest backoff), a relay is started on that spool and its CPU time read over
  ``--window`` seconds; the floor is a relay started on an empty spool, measured the same way (interleaved).

Targets: RSS at 1,000 queued at most 5 MiB above the floor, and the idle scheduler with 1,000 waiting
at most 1% of a core above the floor. Exit 0 met, 1 not met, 2 the run failed.

    .venv/bin/python benchmarks/relay_queue.py [--messages 1000] [--window 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import table  # noqa: E402
from _relay import RelayProcess, mime, relay_config, submit, wait_until  # noqa: E402

SENDER = "erp@contoso.com"
TO = "test.recipient@contoso.com"
CLIENTS = 10


def fill(port: int, count: int, start: int) -> None:
    """``count`` messages over CLIENTS connections at once."""
    shares = [list(range(start + i, start + count, CLIENTS)) for i in range(CLIENTS)]
    errors: list[BaseException] = []

    def one(numbers):
        try:
            submit(port, [(SENDER, TO, mime(SENDER, TO, f"queued {n}")) for n in numbers])
        except BaseException as exc:       # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=one, args=(s,)) for s in shares if s]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]!r}")


def all_tried(spool, expected: int) -> bool:
    journals = spool.journals()
    return len(journals) == expected and all(int(j.get("attempts") or 0) >= 1 for j in journals)


def settled_rss(relay) -> int:
    """The lowest of 5 reads over a second (a read can land in a worker's short-lived allocation)."""
    values = []
    for _ in range(5):
        values.append(relay.rss_kib())
        time.sleep(0.2)
    return min(values)


def idle_cpu(relay, window: float) -> float:
    """Share of one core the relay burns over ``window`` seconds, after 2 s to settle."""
    with relay:
        time.sleep(2.0)
        c0, t0 = relay.cpu_seconds(), time.monotonic()
        time.sleep(window)
        return (relay.cpu_seconds() - c0) / (time.monotonic() - t0)


def run(args, tmp: Path) -> dict:
    from wizard.relay.spool import Spool
    from wizard.sandbox import Sandbox
    from wizard.sandbox.server import Fault
    out: dict = {"rss": [], "cpu_per_msg": []}
    with Sandbox() as sb:
        path, port = relay_config(sb, tmp, [SENDER])
        spool = Spool(tmp / "spool")
        relay = RelayProcess(path, port, tmp, tmp / "relay.log")
        with relay:
            submit(port, [(SENDER, TO, mime(SENDER, TO, "warm-up"))])
            wait_until(lambda: spool.ids() == [] and len(spool.ids("done")) == 1, 60, "the warm-up delivery")
            time.sleep(1.0)
            out["floor_rss"] = settled_rss(relay)
            sb.inject(Fault("/v1.0/users/", status=503, times=None, retry_after=0))    # upstream failing
            queued = 0
            for target in sorted({min(n, args.messages) for n in (10, 100, args.messages)}):
                c0 = relay.cpu_seconds()
                fill(port, target - queued, queued)
                wait_until(lambda: all_tried(spool, target), 600, f"{target} messages tried once")
                out["cpu_per_msg"].append((relay.cpu_seconds() - c0) / (target - queued))
                queued = target
                sb.requests.clear()
                out["rss"].append((target, settled_rss(relay)))
        if "Traceback" in (tmp / "relay.log").read_text():
            raise RuntimeError("the relay logged a traceback: see " + str(tmp / "relay.log"))
        later = time.time() + 3600
        ids = spool.ids()
        for mid in ids:                      # as after a few failures at the longest backoff
            spool.update(mid, next_attempt=later)
        empty_path, empty_port = relay_config(sb, tmp, [SENDER], name="empty.toml", spool="empty-spool")
        floors, loaded = [], []
        for _ in range(args.rounds):         # interleaved: load on the machine hits both alike
            floors.append(idle_cpu(RelayProcess(empty_path, empty_port, tmp, tmp / "empty.log"), args.window))
            loaded.append(idle_cpu(RelayProcess(path, port, tmp, tmp / "relay.log"), args.window))
        if len(spool.ids()) != len(ids):
            raise RuntimeError(f"{len(spool.ids())} messages queued after the idle runs, expected {len(ids)}")
        out["idle_floor"], out["idle_loaded"] = statistics.median(floors), statistics.median(loaded)
        out["waiting"] = len(ids)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--window", type=float, default=10.0, help="seconds of CPU time measured per idle run")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved idle runs (medians are printed)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-queue-", dir=os.environ.get("TMPDIR")) as tmp:
        try:
            r = run(args, Path(tmp))
        except Exception as exc:
            print(f"relay_queue: the run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    floor = r["floor_rss"]
    rows = [("0 queued (floor, after one delivery)", f"{floor / 1024:.1f} MiB", "", "")]
    prev = 0
    for (n, rss), cpu in zip(r["rss"], r["cpu_per_msg"]):
        rows.append((f"{n} queued, Graph failing (503)", f"{rss / 1024:.1f} MiB", f"{(rss - floor) / 1024:+.1f} MiB",
                     f"{cpu * 1000:.1f} ms CPU per message {prev + 1}-{n}"))
        prev = n
    last_n, last_rss = r["rss"][-1]
    first_n, first_rss = r["rss"][0]
    per_msg = (last_rss - first_rss) / max(1, last_n - first_n)
    rows.append((f"growth {first_n} -> {last_n} queued", f"{per_msg:.2f} KiB/message", "", ""))
    rows.append(("idle relay, 0 queued (floor)", f"{100 * r['idle_floor']:.2f}% of a core", "", ""))
    rows.append((f"idle relay, {r['waiting']} waiting (next attempt in 1 h)", f"{100 * r['idle_loaded']:.2f}% of a core",
                 f"{100 * (r['idle_loaded'] - r['idle_floor']):+.2f} points", ""))
    print(table(rows, ("relay process", "value", "vs floor", "note")))
    grown = (last_rss - floor) / 1024
    burn = r["idle_loaded"] - r["idle_floor"]
    met = grown <= 5.0 and burn <= 0.01
    print(f"RSS {grown:+.1f} MiB at {last_n} queued (target <= 5 MiB); idle scheduler {100 * burn:+.2f} points of a "
          f"core with {r['waiting']} waiting (target <= 1): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
