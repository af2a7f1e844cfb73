"""Benchmark: `mailwizard --help` (and `check --help`) wall time as a ratio to
`python -c pass`. Target: <= 4x. Median of N runs.

    .venv/bin/python benchmarks/help_startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _common import median, table, timed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    a = ap.parse_args()
    script = shutil.which("mailwizard", path=str(Path(sys.executable).parent))
    cases = [("python -c pass", [sys.executable, "-c", "pass"]),
             ("python -m wizard --help", [sys.executable, "-m", "wizard", "--help"]),
             ("python -m wizard check --help", [sys.executable, "-m", "wizard", "check", "--help"])]
    if script:
        cases.append(("mailwizard --help (console script)", [script, "--help"]))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for _, cmd in cases:            # warm the file cache
            timed(cmd, tmp)
        results = {}
        for _ in range(a.runs):         # interleaved, so drift hits every case alike
            for label, cmd in cases:
                results.setdefault(label, []).append(timed(cmd, tmp))
    base = median(results["python -c pass"])
    rows, met = [], True
    for label, _ in cases:
        m = median(results[label])
        ratio = m / base
        if label != "python -c pass":
            met &= ratio <= 4
        rows.append((label, f"{m * 1000:.1f}", f"{ratio:.2f}x"))
    print(f"start-up wall time, median of {a.runs} runs\n")
    print(table(rows, ("command", "ms", "ratio")))
    print(f"\ntarget met: {'yes' if met else 'NO'} (every --help <= 4x python -c pass)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
