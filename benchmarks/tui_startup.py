"""Benchmark: time to the first screen of the `mailwizard` wizard, as a ratio to
a bare Textual app that shows one Input, measured in the same run.
Target: <= 1.3x.

Method: each program is started N times, interleaved, under a pseudo-terminal
of 80x24 (what a user's terminal gives it), and timed from the process start
to the moment its first screen has been painted: the harness reads the output
and stops the clock when a text of that screen appears ('Stage 1/6' for the
wizard, the Input's placeholder for the bare app). That covers the Python
start-up, the imports, building the first screen and the first paint. The
wizard paints a stage's header, explanation and keys first and its fields in
the next frame; the time until those are painted too ('Steps in the guide')
is shown as well, and so is the wizard started without the command line
(argparse and its config path look-up). The program is then ended and the
medians compared.

    .venv/bin/python benchmarks/tui_startup.py [--runs 9]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import ROOT, env, median, table
from _pty import PtyProgram

TARGET = 1.3
BARE = '''
from textual.app import App
from textual.widgets import Input

class Bare(App):
    def compose(self):
        yield Input(placeholder="bare-app-first-screen")

Bare().run()
'''
DIRECT = '''
import sys
from screens.app import make_app

make_app(sys.argv[1]).run()
'''


def first_screen(argv: list[str], markers: tuple[str, ...], tmp: Path) -> list[float]:
    """Seconds from the start until each marker is painted, in order."""
    prog = PtyProgram(argv, env=env(tmp), cwd=str(ROOT))
    try:
        times, since = [], 0
        for marker in markers:
            times.append(prog.wait_for(marker, since=since) - prog.started)
            since = prog.mark()
        return times
    finally:
        prog.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bare = tmp / "bare_app.py"
        bare.write_text(BARE)
        direct = tmp / "wizard_app.py"
        direct.write_text(DIRECT)
        cases = [
            ("bare Textual app, one Input", [sys.executable, str(bare)], ("bare-app-first-screen",)),
            ("mailwizard, as typed (new config)",          # the target: what a user types
             [sys.executable, "-m", "wizard"], ("Stage 1/6", "Steps in the guide")),
            ("mailwizard wizard --config PATH",
             [sys.executable, "-m", "wizard", "wizard", "--config", str(tmp / "new.toml")], ("Stage 1/6",)),
            ("wizard app without the CLI (make_app().run())",
             [sys.executable, str(direct), str(tmp / "new.toml")], ("Stage 1/6",)),
        ]
        try:
            for _, argv, marker in cases:          # warm the file cache
                first_screen(argv, marker, tmp)
            results: dict[str, list[float]] = {}
            for _ in range(a.runs):                # interleaved: load hits both alike
                for label, argv, markers in cases:
                    times = first_screen(argv, markers, tmp)
                    results.setdefault(label, []).append(times[0])
                    if len(times) > 1:
                        results.setdefault(label + ": fields painted too", []).append(times[1])
        except TimeoutError as exc:
            print(f"the measurement failed: {exc}")
            return 2
    base = median(results[cases[0][0]])
    rows = []
    for label in results:
        m = median(results[label])
        rows.append((label, f"{m * 1000:.0f}", f"{min(results[label]) * 1000:.0f}",
                     f"{max(results[label]) * 1000:.0f}", f"{m / base:.2f}x"))
    ratio = median(results[cases[1][0]]) / base
    print(__doc__.split("\n\n")[1].replace("\n", " ").strip())
    print()
    print(f"time to first screen under an 80x24 pseudo-terminal, {a.runs} interleaved runs\n")
    print(table(rows, ("program", "median ms", "min ms", "max ms", "ratio")))
    met = ratio <= TARGET
    print(f"\ntarget met: {'yes' if met else 'NO'} (wizard {ratio:.2f}x the bare app; target <= {TARGET}x)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
