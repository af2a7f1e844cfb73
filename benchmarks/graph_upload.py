"""Benchmark: one Graph send of a 12 MB PDF through ``wizard.runtime.Mailer`` against the
sandbox with 100 ms latency per HTTPS response: wall time against the upload's unavoidable
round trips. Those are: create the draft, create the upload session, one PUT per 4 MB
(Graph takes ranges of up to 4 MB), send the draft; the token is fetched before timing.
Target: wall <= 1.5 x (unavoidable round trips x latency). Prints the ratio.

    .venv/bin/python benchmarks/graph_upload.py [--latency 0.1] [--size-mb 12] [--runs 3]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Token cache and pacing log go to a throwaway cache dir, not the user's.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="mailwizard-bench-")

from _common import median, table  # noqa: E402

from wizard.runtime import Attachment, Mailer, graph  # noqa: E402
from wizard.runtime.pacing import Pacer  # noqa: E402
from wizard.sandbox import Sandbox, sample  # noqa: E402

MB = 1024 * 1024
MAX_RANGE = 4 * MB          # what one PUT to an upload URL may carry


def one_send(sb, pdf: bytes) -> tuple[float, list]:
    cfg = sb.config(protocol="graph")
    with Mailer(cfg, pacer=Pacer()) as mailer:
        mailer.tokens.token("graph")                    # signed in before the clock starts
        sb.clear()
        started = time.perf_counter()
        mailer.send(sample.RECIPIENT, "Invoice 1001", "The invoice is attached.",
                    attachments=[Attachment("invoice-1001.pdf", "application/pdf", pdf)])
        wall = time.perf_counter() - started
    reqs = sb.requests.snapshot()
    [got] = [m for m in sb.tenant.mailbox(sample.RECIPIENT).inbox if m.subject == "Invoice 1001"]
    if got.attachments[0]["content"] != pdf:
        raise SystemExit("the attachment arrived changed")
    return wall, reqs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--size-mb", type=float, default=12)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    size = int(a.size_mb * MB)
    pdf = b"%PDF-1.7\n" + random.Random(1).randbytes(size - 9)
    unavoidable = 3 + math.ceil(size / MAX_RANGE)         # draft, session, PUTs, send
    walls, reqs, local = [], [], []
    with Sandbox(latency=a.latency) as sb:
        for _ in range(a.runs):
            sb.reset()
            wall, reqs = one_send(sb, pdf)
            walls.append(wall)
        sb.latency = 0.0                                   # the same send without latency: transfer + work
        for _ in range(a.runs):
            sb.reset()
            local.append(one_send(sb, pdf)[0])
    wall, floor = median(walls), unavoidable * a.latency
    puts = [r for r in reqs if r.method == "PUT"]
    ratio = wall / floor if floor else float("inf")
    ok = ratio <= 1.5
    print(f"Graph send of a {size / MB:.0f} MB attachment, sandbox latency {a.latency * 1000:.0f} ms per response, "
          f"median of {a.runs}")
    print(table([
        ("round trips made", len(reqs), f"{len(puts)} PUTs of up to {graph.CHUNK} bytes"),
        ("unavoidable round trips", unavoidable, f"draft, session, {unavoidable - 3} PUTs of <= 4 MB, send"),
        ("wall time (ms)", f"{wall * 1000:.0f}", f"runs: {', '.join(f'{w * 1000:.0f}' for w in walls)}"),
        ("unavoidable latency (ms)", f"{floor * 1000:.0f}", f"{unavoidable} x {a.latency * 1000:.0f} ms"),
        ("same send, no latency (ms)", f"{median(local) * 1000:.0f}", "transfer and work on 127.0.0.1"),
        ("wall / unavoidable", f"{ratio:.2f}", "target <= 1.5"),
        ("wall / round trips made", f"{wall / (len(reqs) * a.latency):.2f}" if a.latency else "-",
         "ranges are multiples of 320 KiB"),
    ], ("measure", "value", "note")))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
