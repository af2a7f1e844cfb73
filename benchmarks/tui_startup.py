"""Benchmark: time to the first screen of the `mailwizard` wizard, as a ratio to
a bare Textual app that shows one Input, measured in the same run.
Target: <= 1.3x.

Method: each program is started N times, interleaved, under a pseudo-terminal
of 80x24 (what a user's terminal gives it), and timed from the process start
to the moment its first screen has been painted: the harness reads the output
and stops the clock when the screen's texts have all appeared (for the wizard:
the stage title 'Stage 1/6', its explanation and the box 'Steps in the guide'
with the steps, which are painted in one frame; for the bare app: the Input's
placeholder). That covers the Python start-up, the imports, reading the config,
the guide and any draft, building the first stage and painting it. The
stage's choices lie below the fold at 80x24 and are mounted in the frame after.
Rows: the wizard as a user types it (the target), with a config path, without
the command line, on its very first start (no cached guide: the guide file is
parsed from TOML; later starts read it from the user cache dir), and with a
saved config to read (the returning user). The program is then ended and the
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


def first_screen(argv: list[str], markers: tuple[str, ...], tmp: Path, *, cold: bool = False) -> float:
    """Seconds from the start until every marker has been painted. cold: an empty
    user cache dir (as on the very first start)."""
    environ = env(tmp)
    if cold:
        cache = Path(tempfile.mkdtemp(dir=tmp))
        environ["XDG_CACHE_HOME"] = str(cache)
    prog = PtyProgram(argv, env=environ, cwd=str(ROOT))
    try:
        return max(prog.wait_for(marker) for marker in markers) - prog.started
    finally:
        prog.stop()


def saved_config(tmp: Path) -> Path:
    """A config as the wizard saves it (sample tenant values), for the returning user's start."""
    from wizard.config import files as config_io
    from wizard.config.schema import Config
    cfg = Config()
    cfg.auth.tenant_id = "contoso.onmicrosoft.com"
    cfg.auth.client_id = "11111111-2222-3333-4444-555555555555"
    cfg.auth.client_secret = "env:MAILWIZARD_BENCH_SECRET"
    cfg.outgoing.sender = cfg.outgoing.test_recipient = "erp@contoso.com"
    path = tmp / "saved.toml"
    config_io.save(cfg, path)
    return path


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
        stage = ("Stage 1/6", "Pick the system", "Steps in the guide", "Guide 002, Limitations, item 1")
        wizard = [sys.executable, "-m", "wizard"]
        cases = [
            ("bare Textual app, one Input", [sys.executable, str(bare)], ("bare-app-first-screen",), False),
            ("mailwizard, as typed (new config)", wizard, stage, False),   # the target: what a user types
            ("mailwizard wizard --config PATH", wizard + ["wizard", "--config", str(tmp / "new.toml")], stage, False),
            ("wizard app without the CLI (make_app().run())", [sys.executable, str(direct), str(tmp / "new.toml")],
             stage, False),
            ("mailwizard, very first start (guide not cached)", wizard, stage, True),
            ("mailwizard wizard --config SAVED (a config to read)",
             wizard + ["wizard", "--config", str(saved_config(tmp))], stage, False),
        ]
        try:
            for _, argv, markers, cold in cases:     # warm the file cache (and the guide cache)
                first_screen(argv, markers, tmp, cold=cold)
            results: dict[str, list[float]] = {}
            for _ in range(a.runs):                # interleaved: load hits both alike
                for label, argv, markers, cold in cases:
                    results.setdefault(label, []).append(first_screen(argv, markers, tmp, cold=cold))
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
