"""Benchmark: HTTPS round trips to the tenant for a client-secret EWS check,
counted in the sandbox's request log.

Target: token 1 + mailbox 1 (+ send 1), plus at most one tenant discovery
document (openid-configuration) per process. Each row is one `mailwizard
check` process. The TLS step's handshake is a connection without a request
and is not counted; incoming accounts each add their own mailbox check.

    .venv/bin/python benchmarks/check_roundtrips.py
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

from _common import mailwizard, table, write_config

from wizard.sandbox import Sandbox, sample


def kind(req) -> str:
    if req.path.endswith("/.well-known/openid-configuration"):
        return "discovery"
    if req.path.endswith("/oauth2/v2.0/token"):
        return "token"
    if req.path.lower().startswith("/ews/"):
        m = re.search(rb"<m:(\w+)[ >]", req.body)
        return "EWS " + (m.group(1).decode() if m else "?")
    return "other " + req.path


def main() -> int:
    rows, met = [], True
    with Sandbox() as sb, tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cases = [
            ("check", write_config(sb, tmp), [], {"discovery": 1, "token": 1, "EWS GetFolder": 1}),
            ("check --send-to", write_config(sb, tmp), ["--send-to", sample.RECIPIENT],
             {"discovery": 1, "token": 1, "EWS GetFolder": 1, "EWS CreateItem": 1}),
            ("check, 2 incoming accounts", write_config(sb, tmp, incoming=True, name="in.toml"), [],
             {"discovery": 1, "token": 1, "EWS GetFolder": 3}),
        ]
        for label, path, extra, target in cases:
            sb.clear()
            _, proc = mailwizard(["check", "--json", "--config", str(path), *extra], tmp)
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return 2
            counts = Counter(kind(r) for r in sb.requests)
            ok = dict(counts) == target
            met &= ok
            rows.append((label, counts["discovery"], counts["token"], counts["EWS GetFolder"],
                         counts["EWS CreateItem"], sum(counts.values()), sum(target.values()),
                         "yes" if ok else "NO"))
            others = {k: v for k, v in counts.items() if k not in target}
            if others:
                print(f"{label}: unexpected requests {others}")
    print("HTTPS requests to the sandbox tenant per `mailwizard check` process (client secret, EWS)\n")
    print(table(rows, ("case", "discovery", "token", "GetFolder", "CreateItem", "total", "target", "met")))
    print(f"\ntarget met: {'yes' if met else 'NO'} "
          "(token 1 + mailbox 1 (+ send 1) + at most 1 discovery; +1 GetFolder per incoming account)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
