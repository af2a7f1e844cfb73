"""Benchmark: peak memory (RSS) of the wizard through a whole demo run.
Target: under 150 MB.

Method: a child process runs what `mailwizard demo` runs (the sandbox tenant
and the wizard in one process) and drives the wizard with keys, headless at
80x24: stage 1 to 3, F2 fills the working client-secret sample, stage 4, the
connection test (waited for), stage 6 saves; on the way it opens the help,
the read-back view, the settings sheet and the runbook, then quits. The
parent reads the child's peak resident set size from
resource.getrusage(RUSAGE_CHILDREN) after it ended.

    .venv/bin/python benchmarks/tui_rss.py
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, env, table

TARGET_MB = 150.0
CHILD = '''
import asyncio, sys
from pathlib import Path
from wizard.sandbox import Sandbox
from screens.app import make_app

async def run(path):
    with Sandbox() as sb:
        app = make_app(path, demo=sb)
        async with app.run_test(size=(80, 24)) as pilot:
            async def keys(*names):
                await pilot.press(*names)
                await pilot.pause()
            await keys("ctrl+n")                 # registration
            await keys("ctrl+n")                 # ids
            await keys("f1", "escape")           # help
            await keys("f2")                     # demo: the first scenario works
            await keys("enter")
            await keys("f3", "n", "escape")      # read-back, spelled
            await keys("ctrl+n")                 # mail (asks about secrets in drafts)
            if "Keep secrets" in str(app.screen.query("#dialog-title").first().render()
                                     if app.screen.query("#dialog-title") else ""):
                await keys("n")
            await keys("ctrl+n")                 # the connection test
            await app.workers.wait_for_complete()
            await pilot.pause()
            ok = app.last_report is not None and app.last_report.ok
            await keys("ctrl+n")                 # save
            await keys("s")
            await keys("t", "escape", "r", "escape")   # settings sheet, runbook
            saved = path.exists()
            await keys("ctrl+q")
    print(f"test passed: {ok}; config saved: {saved}")

asyncio.run(run(Path(sys.argv[1])))
'''


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        child = tmp / "child.py"
        child.write_text(CHILD)
        proc = subprocess.run([sys.executable, str(child), str(tmp / "demo.toml")], env=env(tmp),
                              cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024   # Linux: KiB
    print(__doc__.split("\n\n")[1].replace("\n", " ").strip())
    print()
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:])
        print("the demo run failed")
        return 2
    print(proc.stdout.strip())
    print()
    print(table([("wizard + sandbox, whole demo run", f"{peak_mb:.1f}")], ("process", "peak RSS MB")))
    met = peak_mb < TARGET_MB
    print(f"\ntarget met: {'yes' if met else 'NO'} (peak {peak_mb:.1f} MB; target < {TARGET_MB:.0f} MB)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
