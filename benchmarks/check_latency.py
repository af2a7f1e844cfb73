"""Benchmark: wall time of `mailwizard check` against the sandbox with a
latency injected into every response (default 100 ms), compared with the
latency of the round trips that cannot be avoided (discovery, token,
GetFolder: 3 x latency).

Target: wall time <= 1.5 x the unavoidable latency + process start-up, where
start-up is a process that imports what the check needs (wizard CLI, msal,
exchangelib) and exits. Median of N runs each.

    .venv/bin/python benchmarks/check_latency.py [--latency 0.1] [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import mailwizard, median, table, timed, write_config

from wizard.sandbox import Sandbox

STARTUP = [sys.executable, "-c", "import wizard.cli.main, wizard.cli.check, wizard.check.engine, wizard.identity.signin, "
           "wizard.runtime.ews_client, msal, exchangelib, requests"]
UNAVOIDABLE = 3     # discovery + token + GetFolder


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, Sandbox() as fast, Sandbox(latency=a.latency) as slow:
        tmp = Path(d)
        paths = {0.0: write_config(fast, tmp, name="fast.toml"), a.latency: write_config(slow, tmp, name="slow.toml")}
        starts, runs = [], {0.0: [], a.latency: []}
        for _ in range(a.runs):         # interleaved, so machine load hits every measure alike
            starts.append(timed(STARTUP, tmp))
            for latency, path in paths.items():
                wall, proc = mailwizard(["check", "--json", "--config", str(path)], tmp)
                if proc.returncode != 0:
                    print(proc.stdout, proc.stderr, file=sys.stderr)
                    return 2
                runs[latency].append(wall)
        startup = median(starts)
        walls = {k: median(v) for k, v in runs.items()}
    unavoidable = UNAVOIDABLE * a.latency
    wall = walls[a.latency]
    budget = 1.5 * unavoidable + startup
    ratio = (wall - startup) / unavoidable
    rows = [
        ("process start-up (imports msal, exchangelib)", f"{startup:.3f}"),
        ("check, no latency", f"{walls[0.0]:.3f}"),
        (f"check, {a.latency * 1000:.0f} ms per response", f"{wall:.3f}"),
        (f"unavoidable latency ({UNAVOIDABLE} round trips)", f"{unavoidable:.3f}"),
        ("latency added by the check (with - without)", f"{wall - walls[0.0]:.3f}"),
        ("ratio (wall - start-up) / unavoidable", f"{ratio:.2f}x"),
        ("budget 1.5 x unavoidable + start-up", f"{budget:.3f}"),
    ]
    print(f"`mailwizard check` wall time, median of {a.runs} runs (client secret, EWS, no incoming accounts)\n")
    print(table(rows, ("measure", "seconds")))
    met = wall <= budget
    print(f"\ntarget met: {'yes' if met else 'NO'} (wall {wall:.3f} s <= budget {budget:.3f} s)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
