"""Benchmark: sending 20 messages over one Mailer (EWS, Graph, SMTP) against the
sandbox with 100 ms latency per response. Target: one token request for all 20
(none after the first message) and the HTTPS connection reused (round trips
counted in ``sb.requests``; new TLS connections counted on the client).

    .venv/bin/python benchmarks/runtime_send.py [--latency 0.1] [--messages 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Token cache and pacing log go to a throwaway cache dir, not the user's.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="mailwizard-bench-")

import urllib3.connection  # noqa: E402

from wizard.runtime import Attachment, Mailer  # noqa: E402
from wizard.runtime.pacing import Pacer  # noqa: E402
from wizard.sandbox import Sandbox, sample  # noqa: E402

CONNECTS = {"n": 0}
_lock = threading.Lock()
_orig_connect = urllib3.connection.HTTPSConnection.connect


def _counting_connect(self):
    with _lock:
        CONNECTS["n"] += 1
    return _orig_connect(self)


urllib3.connection.HTTPSConnection.connect = _counting_connect


def run(sb, protocol: str, n: int) -> tuple[bool, str]:
    t = sb.tenant
    app = t.app(sample.SECRET_APP_ID)
    app.roles["exchange"] |= {"SMTP.SendAsApp"}
    app.exchange_service_principal = True
    t.mailbox(sample.SENDER).full_access.add(sample.SECRET_APP_ID)
    cfg = sb.config(protocol=protocol)
    att = Attachment("report.csv", "text/csv", b"id;amount\n" + b"1;100\n" * 200)
    with tempfile.TemporaryDirectory() as cache:
        sb.clear()
        CONNECTS["n"] = 0
        # A fresh pacer per protocol: the runs send from the same mailbox within a minute,
        # and this benchmark counts round trips, not pacing.
        with Mailer(cfg, token_cache=Path(cache) / "tokens.json", pacer=Pacer()) as mailer:
            started = time.perf_counter()
            mailer.send(sample.RECIPIENT, "message 1", "first", attachments=[att])
            first = time.perf_counter() - started
            after_first = len(sb.requests)
            for i in range(2, n + 1):
                mailer.send(sample.RECIPIENT, f"message {i}", "body", attachments=[att])
            total = time.perf_counter() - started
            smtp_connects = getattr(mailer._outgoing(), "connects", None)
    reqs = sb.requests.snapshot()
    token_reqs = [i for i, r in enumerate(reqs) if r.path.endswith("/oauth2/v2.0/token")]
    late_tokens = [i for i in token_reqs if i >= after_first]
    sends = [r for r in reqs if not r.path.startswith(f"/{sample.TENANT_ID}")]
    got = sum(1 for m in sb.tenant.mailbox(sample.RECIPIENT).inbox if m.subject.startswith("message "))
    conns = smtp_connects if protocol.startswith("smtp") else CONNECTS["n"]
    kind = "SMTP sessions" if protocol.startswith("smtp") else "new TLS connections"
    ok = len(token_reqs) == 1 and not late_tokens and got == n and conns <= 2
    return ok, (f"{protocol:10s} {n} messages in {total * 1000:6.0f} ms (first {first * 1000:4.0f} ms, then "
                f"{(total - first) / max(n - 1, 1) * 1000:4.0f} ms each) | HTTP requests {len(reqs)} "
                f"({len(sends)} mail calls) | token requests {len(token_reqs)}, after the first message "
                f"{len(late_tokens)} | {kind} {conns} | delivered {got} | {'PASS' if ok else 'FAIL'}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--messages", type=int, default=20)
    ap.add_argument("--protocols", default="ews,graph,smtp")
    a = ap.parse_args()
    import exchangelib  # noqa: F401  (import cost is not what is measured)
    import msal  # noqa: F401
    ok = True
    with Sandbox(latency=a.latency) as sb:
        print(f"sandbox latency {a.latency * 1000:.0f} ms per HTTP response")
        for protocol in a.protocols.split(","):
            sb.reset()
            passed, line = run(sb, protocol, a.messages)
            ok &= passed
            print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
